"""The OpenAI-compatible HTTP generator against a real local HTTP server with scripted answers."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import pytest
import yaml

from dp_synth.modalities.text.llm import GeneratorConfigError, Secret, build_generator
from dp_synth.modalities.text.llm_http import GenerationError, OpenAICompatibleGenerator
from tests.conftest import PROJECT_ROOT
from tests.fake_llm_server import FakeServer, Reply

KEY = "sk-test-SECRET-123"


@pytest.fixture
def server(llm_server: FakeServer) -> FakeServer:
    return llm_server


def make_generator(server: FakeServer, **settings: Any) -> OpenAICompatibleGenerator:
    defaults: dict[str, Any] = {
        "model": "test-model",
        "api_key": Secret(KEY),
        "max_concurrency": 4,
        "timeout_seconds": 2.0,
        "max_retries": 2,
        "backoff_seconds": 0.01,
    }
    return OpenAICompatibleGenerator(base_url=server.url, **{**defaults, **settings})


def generate(generator: OpenAICompatibleGenerator, prompts: list[str]) -> list[str]:
    return generator.generate(prompts, temperature=0.7, max_new_tokens=32, seed=11)


@pytest.mark.parametrize(("endpoint", "path"), [("chat", "/v1/chat/completions"), ("completions", "/v1/completions")])
def test_completions_come_back_in_order_with_bounded_concurrency(server, endpoint, path, caplog):
    caplog.set_level(logging.INFO)
    # Earlier prompts answer later, so requests finish out of order.
    prompts = [f"slow:{0.02 * (8 - i)}:prompt {i}" for i in range(8)]
    generator = make_generator(server, endpoint=endpoint, max_concurrency=3)

    completions = generate(generator, prompts)

    assert completions == [f"completion of {prompt}" for prompt in prompts]
    assert 2 <= server.max_in_flight <= 3
    assert {request.path for request in server.requests} == {path}
    for request in server.requests:
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.body["model"] == "test-model"
        assert request.body["temperature"] == 0.7
        assert request.body["max_tokens"] == 32
        assert request.body["n"] == 1
        assert isinstance(request.body["seed"], int)
    assert "Generated 8/8 completions" in caplog.text


def test_seeds_are_reproducible_and_differ_across_prompts(server):
    generator = make_generator(server, max_concurrency=1)
    generate(generator, ["same"] * 4)
    generate(generator, ["same"] * 4)
    seeds = [request.body["seed"] for request in server.requests]
    assert seeds[:4] == seeds[4:]
    assert len(set(seeds[:4])) == 4


def test_custom_key_header_extra_headers_and_query_string(server):
    generator = OpenAICompatibleGenerator(
        base_url=f"{server.url}/?api-version=2024-10-21",
        model="deployment",
        api_key=Secret(KEY),
        api_key_header="api-key",
        extra_headers={"X-Team": "dp"},
    )
    assert generate(generator, ["hi"]) == ["completion of hi"]
    (request,) = server.requests
    assert request.path == "/v1/chat/completions?api-version=2024-10-21"
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers
    assert request.headers["x-team"] == "dp"


def test_no_key_sends_no_auth_header_not_even_the_environment_key(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    assert generate(make_generator(server, api_key=None), ["hi"]) == ["completion of hi"]
    assert "authorization" not in server.requests[0].headers


def test_azure_endpoint_posts_to_the_deployment_with_the_api_version_and_key(server, caplog):
    caplog.set_level(logging.DEBUG)
    endpoint = server.url.removesuffix("/v1")
    generator = OpenAICompatibleGenerator(
        azure_endpoint=endpoint,
        api_version="2024-10-21",
        model="my-deployment",
        api_key=Secret(KEY),
        extra_headers={"X-Team": "dp"},
        max_retries=1,
        backoff_seconds=0.01,
    )
    assert generate(generator, ["hi"]) == ["completion of hi"]
    server.script = [Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})]
    with pytest.raises(GenerationError, match="credentials.yml") as rejected:
        generate(generator, ["hi"])

    first = server.requests[0]
    assert first.path == "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
    assert first.headers["api-key"] == KEY
    assert "authorization" not in first.headers
    assert first.headers["x-team"] == "dp"
    assert first.body["model"] == "my-deployment" and first.body["max_tokens"] == 32
    assert generator.url == f"{endpoint}{first.path}"
    assert "my-deployment" in generator.description and "Azure" in generator.description
    shown = [caplog.text, str(rejected.value), repr(generator), generator.description]
    assert all(KEY not in text for text in shown)


@pytest.mark.parametrize(
    "failure",
    [
        Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}),
        Reply(429, {"error": {"message": "slow down"}}, {"retry-after-ms": "5", "Retry-After": "60"}),
        Reply(503, {"error": "overloaded"}),
    ],
)
def test_transient_failure_is_retried(server, failure, caplog):
    server.script = [failure]
    # A long backoff proves that Retry-After: 0 (or OpenAI's retry-after-ms, which takes precedence)
    # replaces it; the 503 has no Retry-After.
    backoff = 30.0 if failure.headers else 0.01
    started = time.monotonic()
    assert generate(make_generator(server, backoff_seconds=backoff), ["hi"]) == ["completion of hi"]
    assert time.monotonic() - started < 2
    assert len(server.requests) == 2
    assert f"HTTP {failure.status}" in caplog.text
    assert "retry 1/2" in caplog.text


def test_retries_exhausted_raise_generation_error(server):
    server.script = [Reply(503, {"error": "overloaded"})] * 3
    with pytest.raises(GenerationError, match=r"HTTP 503 .*/v1/chat/completions.*3 attempts"):
        generate(make_generator(server, max_retries=2), ["hi"])
    assert len(server.requests) == 3


def test_timeout_is_retried_then_fails_clearly(server):
    server.script = [Reply(delay=0.6)] * 2
    started = time.monotonic()
    with pytest.raises(GenerationError, match=r"Timeout after 0.2 s from .*2 attempts"):
        generate(make_generator(server, timeout_seconds=0.2, max_retries=1), ["hi"])
    assert time.monotonic() - started < 1.5
    assert len(server.requests) == 2


def test_timeout_then_success_recovers(server):
    server.script = [Reply(delay=0.6)]
    assert generate(make_generator(server, timeout_seconds=0.2), ["hi"]) == ["completion of hi"]


def test_unreachable_server_fails_clearly():
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    generator = OpenAICompatibleGenerator(
        base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=1, backoff_seconds=0.01
    )
    with pytest.raises(GenerationError, match="Connection error"):
        generate(generator, ["hi"])


def test_rejected_key_raises_at_once(server):
    server.script = [Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})]
    with pytest.raises(GenerationError, match="credentials.yml") as raised:
        generate(make_generator(server), ["hi"])
    assert len(server.requests) == 1
    assert "rejected the API key" in str(raised.value)


def test_unknown_model_raises_at_once(server):
    server.script = [Reply(404, {"error": {"message": "no such model"}})]
    with pytest.raises(GenerationError, match=r"'test-model'.*not found") as raised:
        generate(make_generator(server), ["hi"])
    assert len(server.requests) == 1
    assert "no such model" in str(raised.value)


def test_other_client_error_raises_at_once_with_truncated_message(server):
    server.script = [Reply(400, {"object": "error", "message": "max_tokens too large " + "x" * 1000})]
    with pytest.raises(GenerationError, match=r"HTTP 400\): max_tokens too large x+\.\.\.$") as raised:
        generate(make_generator(server), ["hi"])
    assert len(server.requests) == 1
    assert len(str(raised.value)) < 500


def test_response_without_completion_raises(server):
    server.script = [Reply(200, {"choices": []})]
    with pytest.raises(GenerationError, match="without a completion"):
        generate(make_generator(server), ["hi"])


def test_a_refused_choice_is_an_empty_completion_not_a_failure(server, caplog):
    refusal = {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"}]
    }
    server.script = [Reply(200, refusal)]
    assert generate(make_generator(server, max_concurrency=1), ["hi", "there"]) == ["", "completion of there"]
    assert "content_filter" in caplog.text


def test_key_never_shows(server, caplog):
    caplog.set_level(logging.DEBUG)
    generator = make_generator(server)
    server.script = [Reply(429, {"error": {"message": f"bad key {KEY}"}}, {"Retry-After": "0"})]
    generate(generator, ["hi"])
    server.script = [Reply(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})]
    with pytest.raises(GenerationError) as rejected:
        generate(generator, ["hi"])
    server.script = [Reply(503)] * 3
    with pytest.raises(GenerationError) as exhausted:
        generate(generator, ["hi"])

    assert "retry 1/2" in caplog.text
    shown = [caplog.text, str(rejected.value), str(exhausted.value), repr(generator), str(generator)]
    shown.append(generator.description)
    assert all(KEY not in text for text in shown)
    assert generator.description == f"test-model at {server.url}"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"endpoint": "embeddings"}, "endpoint"),
        ({"base_url": ""}, "base_url"),
        ({"base_url": "127.0.0.1:8000/v1"}, "base_url"),
        ({"model": " "}, "model"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"max_retries": -1}, "max_retries"),
        ({"backoff_seconds": -0.1}, "backoff_seconds"),
        ({"api_key": Secret("")}, "api_key is empty"),
        ({"api_key_header": ""}, "api_key_header"),
        ({"api_version": "2024-10-21"}, "api_version is used only with azure_endpoint"),
        ({"azure_endpoint": "https://x.openai.azure.com", "api_key": Secret(KEY)}, "either base_url or azure_endpoint"),
        ({"base_url": None, "azure_endpoint": "x.openai.azure.com", "api_version": "v"}, "azure_endpoint must be"),
        ({"base_url": None, "azure_endpoint": "https://x.openai.azure.com", "api_key": Secret(KEY)}, "api_version"),
        ({"base_url": None, "azure_endpoint": "https://x.openai.azure.com", "api_version": "v"}, "credentials.yml"),
    ],
)
def test_bad_settings_raise_config_error(settings, message):
    with pytest.raises(GeneratorConfigError, match=message):
        OpenAICompatibleGenerator(**{"base_url": "http://127.0.0.1:8000/v1", "model": "m", **settings})


def test_plain_string_key_is_refused_without_showing_it():
    with pytest.raises(GeneratorConfigError, match="Secret") as raised:
        OpenAICompatibleGenerator(base_url="http://127.0.0.1:8000/v1", model="m", api_key=KEY)  # type: ignore[arg-type]
    assert KEY not in str(raised.value)


def test_the_shipped_settings_build_a_server_generator_and_an_azure_one():
    shipped = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_text.yml").read_text())["text"]["generator"]
    settings = dict(shipped["openai_compatible"])

    plain = {**settings, "base_url": "http://h:1/v1", "model": "m"}
    server = build_generator("openai_compatible", {"openai_compatible": plain}, None)
    assert server.url == "http://h:1/v1/chat/completions"

    azure = {**settings, "azure_endpoint": "https://x.openai.azure.com/", "api_version": "2024-10-21", "model": "dep"}
    generator = build_generator("openai_compatible", {"openai_compatible": azure}, Secret(KEY))
    assert generator.url == "https://x.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2024-10-21"


def test_a_missing_openai_client_is_named_with_the_install_command(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def without_openai(name, *args, **kwargs):
        if name == "openai" or name.startswith(("openai.", "dp_synth.modalities.text.llm_http")):
            raise ModuleNotFoundError("No module named 'openai'", name="openai")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_openai)
    settings = {"openai_compatible": {"base_url": "http://h:1/v1", "model": "m"}}
    with pytest.raises(
        GeneratorConfigError, match=r"openai_compatible backend needs the text extra \(openai is missing"
    ):
        build_generator("openai_compatible", settings, None)

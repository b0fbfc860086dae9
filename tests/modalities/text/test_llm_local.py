"""The local Hugging Face backend, run end to end on a tiny random GPT-2 loaded from a directory."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from transformers import AutoTokenizer

from dp_synth.modalities.text import llm_local
from dp_synth.modalities.text.llm import GeneratorConfigError, TextGenerator
from dp_synth.modalities.text.llm_local import HuggingFaceGenerator, plan_batches
from tests.tiny_models import build_tiny_causal_lm

PROMPTS = [
    "Write a short product review.",
    "Describe the weather at the beach on a sunny day in a few words, please.",
    "Hi",
    "Summarise the announcement that made the stock prices rise sharply on Monday morning.",
    "A patient note:",
]
NEAR_GREEDY = 1e-4  # a temperature at which sampling always picks the most likely token


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="module")
def tiny_chat_lm(tiny_lm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model again, its tokenizer given a chat template."""
    directory = tmp_path_factory.mktemp("tiny_chat_lm")
    shutil.copytree(tiny_lm, directory, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    tokenizer.chat_template = (
        "{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}Assistant:{% endif %}"
    )
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def generator(tiny_lm: Path) -> HuggingFaceGenerator:
    return HuggingFaceGenerator(tiny_lm, device="cpu", batch_size=4)


def _one_by_one(generator: HuggingFaceGenerator, prompts: list[str], **kwargs: object) -> list[str]:
    return [generator.generate([prompt], **kwargs)[0] for prompt in prompts]


def test_is_a_text_generator_described_by_model_and_device(generator: HuggingFaceGenerator, tiny_lm: Path) -> None:
    text_generator: TextGenerator = generator
    assert text_generator.description == f"{tiny_lm} (transformers, cpu)"


def test_one_completion_per_prompt_made_of_new_tokens_only(generator: HuggingFaceGenerator, tiny_lm: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm, local_files_only=True)
    longest_token = max(len(tokenizer.decode([token])) for token in range(len(tokenizer)))
    max_new_tokens = 3

    completions = generator.generate(PROMPTS, temperature=1.0, max_new_tokens=max_new_tokens, seed=0)

    assert len(completions) == len(PROMPTS)
    assert all(isinstance(completion, str) for completion in completions)
    assert any(completions)
    for prompt, completion in zip(PROMPTS, completions, strict=True):
        assert len(completion) <= max_new_tokens * longest_token
        assert not completion.startswith(prompt)


def test_completions_come_in_the_prompts_order(tiny_lm: Path) -> None:
    generator = HuggingFaceGenerator(tiny_lm, device="cpu", batch_size=1)
    settings = {"temperature": NEAR_GREEDY, "max_new_tokens": 6, "seed": 0}
    forward = generator.generate(PROMPTS[:3], **settings)
    backward = generator.generate(PROMPTS[:3][::-1], **settings)
    assert len(set(forward)) > 1
    assert backward == forward[::-1]


def test_same_seed_reproduces_and_another_seed_differs(generator: HuggingFaceGenerator) -> None:
    settings = {"temperature": 1.0, "max_new_tokens": 8}
    first = generator.generate(PROMPTS, seed=7, **settings)
    assert generator.generate(PROMPTS, seed=7, **settings) == first
    assert generator.generate(PROMPTS, seed=8, **settings) != first


def test_small_batches_of_prompts_of_different_lengths_match_one_by_one(tiny_lm: Path) -> None:
    """With left padding, a prompt completes the same in a batch of longer or shorter ones as alone."""
    batched = HuggingFaceGenerator(tiny_lm, device="cpu", batch_size=2)
    settings = {"temperature": NEAR_GREEDY, "max_new_tokens": 6, "seed": 0}
    completions = batched.generate(PROMPTS, **settings)
    assert len(completions) == len(PROMPTS)
    assert completions == _one_by_one(batched, PROMPTS, **settings)


def test_chat_template_is_used_when_the_tokenizer_has_one(tiny_chat_lm: Path) -> None:
    settings = {"temperature": NEAR_GREEDY, "max_new_tokens": 6, "seed": 0}
    with_template = HuggingFaceGenerator(tiny_chat_lm, device="cpu").generate(PROMPTS, **settings)
    raw = HuggingFaceGenerator(tiny_chat_lm, device="cpu", use_chat_template=False).generate(PROMPTS, **settings)
    assert len(with_template) == len(raw) == len(PROMPTS)
    assert with_template != raw


def test_asking_for_a_chat_template_the_tokenizer_lacks_is_a_config_error(tiny_lm: Path) -> None:
    generator = HuggingFaceGenerator(tiny_lm, device="cpu", use_chat_template=True)
    with pytest.raises(GeneratorConfigError, match="no chat template"):
        generator.generate(["Hi"], temperature=1.0, max_new_tokens=2, seed=0)


def test_a_missing_local_directory_fails_at_construction(tmp_path: Path) -> None:
    missing = tmp_path / "no_model_here"
    with pytest.raises(GeneratorConfigError, match="does not exist") as error:
        HuggingFaceGenerator(str(missing))
    assert str(missing) in str(error.value)
    assert "save_pretrained" in str(error.value)


def test_an_uncached_hub_id_fails_without_touching_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    connections: list[object] = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket.socket, "connect", lambda _socket, address: connections.append(address))

    generator = HuggingFaceGenerator("dp-synth-tests/no-such-model", device="cpu")
    assert generator.generate([], temperature=1.0, max_new_tokens=2, seed=0) == []
    with pytest.raises(GeneratorConfigError, match="allow_download") as error:
        generator.generate(["Hi"], temperature=1.0, max_new_tokens=2, seed=0)
    assert "local directory" in str(error.value)
    assert connections == []


@pytest.mark.parametrize(
    "setting",
    [{"batch_size": 0}, {"batch_size": 1.5}, {"dtype": "float8"}, {"device": "toaster"}, {"use_chat_template": "yes"}],
)
def test_bad_settings_are_config_errors(tiny_lm: Path, setting: dict[str, object]) -> None:
    with pytest.raises(GeneratorConfigError):
        HuggingFaceGenerator(tiny_lm, **setting)


@pytest.mark.parametrize("has_bfloat16", [True, False])
def test_auto_dtype_on_the_cpu_is_bfloat16_only_where_the_cpu_computes_in_it(
    tiny_lm: Path, monkeypatch: pytest.MonkeyPatch, has_bfloat16: bool
) -> None:
    monkeypatch.setattr(llm_local, "_cpu_has_bfloat16", lambda: has_bfloat16)
    assert HuggingFaceGenerator(tiny_lm, device="cpu").dtype == (torch.bfloat16 if has_bfloat16 else torch.float32)
    assert HuggingFaceGenerator(tiny_lm, device="cpu", dtype="float32").dtype == torch.float32


@pytest.mark.parametrize("call", [{"temperature": 0.0, "max_new_tokens": 2}, {"temperature": 1.0, "max_new_tokens": 0}])
def test_bad_sampling_arguments_are_rejected(generator: HuggingFaceGenerator, call: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        generator.generate(["Hi"], seed=0, **call)


def test_a_prompt_longer_than_the_context_is_refused_with_a_clear_message(generator):
    with pytest.raises(GeneratorConfigError, match="exceeds the model's context of 1024 tokens"):
        generator.generate(["word " * 1000], temperature=1.0, max_new_tokens=100, seed=0)


def test_repeated_prompts_share_batches_and_the_rest_are_batched_by_length() -> None:
    texts = ["same"] * 40 + ["a much longer prompt", "mid prompt", "x"] + ["twice"] * 2
    batches = plan_batches(texts, 16)
    assert sorted(position for batch in batches for position in batch) == list(range(len(texts)))
    assert batches[:2] == [list(range(16)), list(range(16, 32))]  # full batches of the one repeated prompt
    mixed = [position for batch in batches[2:] for position in batch]
    assert [len(texts[position]) for position in mixed] == sorted(len(texts[position]) for position in mixed)
    assert set(mixed) >= {32, 40, 41, 42, 43, 44}  # 8 copies left over and a pair: too few for a batch of their own


def test_a_repeated_prompt_read_once_completes_as_it_does_alone(tiny_lm: Path) -> None:
    """The shared key-value cache of a repeated prompt gives what reading the prompt in full gives."""
    generator = HuggingFaceGenerator(tiny_lm, device="cpu", batch_size=16)
    settings = {"temperature": NEAR_GREEDY, "max_new_tokens": 6, "seed": 0}
    shared = generator.generate([PROMPTS[0]] * 16, **settings)  # one batch of 16 copies: the shared path
    assert shared == [generator.generate([PROMPTS[0]], **settings)[0]] * 16

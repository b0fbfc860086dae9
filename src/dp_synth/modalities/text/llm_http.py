"""Text generation through any OpenAI-compatible HTTP server.

Works with OpenAI, Azure OpenAI, vLLM, Ollama and the llama.cpp server: each prompt is one
``POST {base_url}/chat/completions`` (the prompt as a single user message) or
``POST {base_url}/completions`` request, sent from a bounded thread pool. Transient failures
(HTTP 408, 409, 429 and 5xx, connection errors, timeouts) are retried with exponential backoff
and jitter, honouring the server's ``Retry-After``; failures that retrying cannot fix (a rejected
key, an unknown model, a malformed request) raise at once. The API key never appears in a log
line, an exception message, a repr or the ``description``.

Only the standard library is used.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from dp_synth.modalities.text.llm import GenerationProgress, GeneratorConfigError, Secret

logger = logging.getLogger(__name__)

Endpoint = Literal["chat", "completions"]

_ENDPOINT_PATHS: Mapping[str, str] = {"chat": "chat/completions", "completions": "completions"}
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
_MAX_WAIT_SECONDS = 120.0
_MAX_MESSAGE_CHARS = 300
_SEED_RANGE = 2**31


class GenerationError(RuntimeError):
    """A request to the text-generation server failed; the message says which URL and why."""


@dataclass(frozen=True)
class OpenAICompatibleGenerator:
    """A ``TextGenerator`` backed by an OpenAI-compatible HTTP server.

    Args:
        base_url: The API root, e.g. ``"http://127.0.0.1:8000/v1"`` (vLLM) or
            ``"https://api.openai.com/v1"``; a query string (Azure's ``?api-version=...``) is kept.
        model: The model (or Azure deployment) name sent in every request.
        api_key: The key, or ``None`` for servers that need none (a local vLLM or Ollama).
        endpoint: ``"chat"`` for ``/chat/completions`` or ``"completions"`` for ``/completions``.
        max_concurrency: Requests in flight at once (>= 1).
        timeout_seconds: Socket timeout of each request attempt (> 0).
        max_retries: Retries of a transiently failing request after its first attempt (>= 0).
        backoff_seconds: Wait before the first retry; doubles with each retry, with jitter,
            capped at two minutes. A ``Retry-After`` header replaces it (same cap).
        api_key_header: Header carrying the key: ``"Authorization"`` sends ``Bearer <key>``,
            any other name (Azure's ``"api-key"``) sends the bare key.
        extra_headers: More headers sent with every request.
    """

    base_url: str
    model: str
    api_key: Secret | None = None
    endpoint: Endpoint = "chat"
    max_concurrency: int = 4
    timeout_seconds: float = 60.0
    max_retries: int = 5
    backoff_seconds: float = 1.0
    api_key_header: str = "Authorization"
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._check_settings()
        object.__setattr__(self, "base_url", self.base_url.strip().rstrip("/"))
        object.__setattr__(self, "extra_headers", MappingProxyType(dict(self.extra_headers)))

    @property
    def description(self) -> str:
        """The model and server, safe to log."""
        return f"{self.model} at {self.base_url}"

    @property
    def url(self) -> str:
        """The URL every request is posted to."""
        parts = urllib.parse.urlsplit(self.base_url)
        path = f"{parts.path.rstrip('/')}/{_ENDPOINT_PATHS[self.endpoint]}"
        return urllib.parse.urlunsplit(parts._replace(path=path))

    def generate(self, prompts: Sequence[str], *, temperature: float, max_new_tokens: int, seed: int) -> list[str]:
        """One completion per prompt, in the prompts' order, at most ``max_concurrency`` at a time.

        Each request gets its own seed drawn from ``seed``, so a seeded run is reproducible on
        servers that honour seeds while identical prompts still get different completions.

        Raises:
            GenerationError: if a request fails for good; the requests not yet sent are cancelled.
        """
        progress = GenerationProgress(total=len(prompts), what="completions")
        seeds = _request_seeds(seed, len(prompts))
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="llm-http") as pool:
            futures = [
                pool.submit(self._complete, prompt, temperature=temperature, max_new_tokens=max_new_tokens, seed=s)
                for prompt, s in zip(prompts, seeds, strict=True)
            ]
            try:
                for future in as_completed(futures):
                    future.result()
                    progress.advance(1)
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        return [future.result() for future in futures]

    def _check_settings(self) -> None:
        """Raise ``GeneratorConfigError`` naming the first invalid setting and how to fix it."""
        base = urllib.parse.urlsplit(self.base_url.strip()) if isinstance(self.base_url, str) else None
        _require(
            base is not None and base.scheme in ("http", "https") and bool(base.netloc),
            f"base_url must be an http(s) URL such as 'http://127.0.0.1:8000/v1', got {self.base_url!r}",
        )
        _require(isinstance(self.model, str) and bool(self.model.strip()), "model must be a non-empty name")
        _require(
            self.api_key is None or isinstance(self.api_key, Secret),
            "api_key must be wrapped in dp_synth.modalities.text.llm.Secret (or be None) so it never shows in logs",
        )
        _require(
            self.api_key is None or bool(self.api_key.value),
            "api_key is empty: set it in conf/local/credentials.yml, or leave it out for servers that need none",
        )
        _require(self.endpoint in _ENDPOINT_PATHS, f"endpoint must be 'chat' or 'completions', got {self.endpoint!r}")
        _require(
            isinstance(self.max_concurrency, int) and self.max_concurrency >= 1,
            f"max_concurrency must be an integer >= 1, got {self.max_concurrency!r}",
        )
        _require(
            isinstance(self.timeout_seconds, (int, float)) and self.timeout_seconds > 0,
            f"timeout_seconds must be a number > 0, got {self.timeout_seconds!r}",
        )
        _require(
            isinstance(self.max_retries, int) and self.max_retries >= 0,
            f"max_retries must be an integer >= 0, got {self.max_retries!r}",
        )
        _require(
            isinstance(self.backoff_seconds, (int, float)) and self.backoff_seconds >= 0,
            f"backoff_seconds must be a number >= 0, got {self.backoff_seconds!r}",
        )
        _require(
            isinstance(self.api_key_header, str) and bool(self.api_key_header.strip()),
            "api_key_header must be a header name such as 'Authorization' or 'api-key'",
        )

    def _complete(self, prompt: str, *, temperature: float, max_new_tokens: int, seed: int) -> str:
        """The completion of one prompt, retrying transient failures."""
        content: dict[str, Any] = (
            {"messages": [{"role": "user", "content": prompt}]} if self.endpoint == "chat" else {"prompt": prompt}
        )
        body = {
            "model": self.model,
            **content,
            "temperature": temperature,
            "max_tokens": max_new_tokens,
            "seed": seed,
            "n": 1,
        }
        data = json.dumps(body).encode("utf-8")
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=self._headers(), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                    return self._completion_text(response.read())
            except urllib.error.HTTPError as error:
                failure, retry_after = self._retryable_http_failure(error)
            except (OSError, http.client.HTTPException) as error:
                failure, retry_after = self._transport_failure(error), None
            if attempt == self.max_retries:
                break
            delay = _backoff(self.backoff_seconds, attempt) if retry_after is None else retry_after
            logger.warning(
                "%s from %s; retry %d/%d in %.2f s", failure, self.url, attempt + 1, self.max_retries, delay
            )
            time.sleep(delay)
        raise GenerationError(f"{failure} from {self.url}, still failing after {self.max_retries + 1} attempts")

    def _headers(self) -> dict[str, str]:
        """The request headers, with the key in ``api_key_header`` when there is one."""
        headers = {"Content-Type": "application/json", "Accept": "application/json", **self.extra_headers}
        if self.api_key is not None:
            scheme = "Bearer " if self.api_key_header.lower() == "authorization" else ""
            headers[self.api_key_header] = scheme + self.api_key.value
        return headers

    def _completion_text(self, raw: bytes) -> str:
        """The completion in a successful response body.

        A choice whose content is null (a refusal or a content filter) gives an empty completion,
        which the modality treats as no rewrite, so one refusal does not stop a long run.

        Raises:
            GenerationError: if the body holds no choice at all (a server or proxy fault).
        """
        try:
            choice = json.loads(raw)["choices"][0]
            text = choice["message"]["content"] if self.endpoint == "chat" else choice["text"]
        except (ValueError, KeyError, IndexError, TypeError):
            body = self._safe_message(raw.decode("utf-8", "replace"))
            raise GenerationError(f"{self.url} answered without a completion: {body}") from None
        if text is None:
            logger.warning("%s returned an empty choice (finish reason %r)", self.url, choice.get("finish_reason"))
            return ""
        return str(text)

    def _retryable_http_failure(self, error: urllib.error.HTTPError) -> tuple[str, float | None]:
        """Describe an HTTP error worth retrying and its ``Retry-After`` seconds, or raise one that is not.

        Raises:
            GenerationError: on 401/403 (the key), 404 (model or URL) and any other non-retryable status.
        """
        status = error.code
        message = self._safe_message(_server_message(_error_body(error)))
        if status in (401, 403):
            problem = "rejected the API key" if self.api_key is not None else "requires an API key and none is set"
            raise GenerationError(
                f"{self.url} {problem} (HTTP {status}): check the key in conf/local/credentials.yml. "
                f"Server said: {message}"
            )
        if status == 404:
            raise GenerationError(
                f"Model {self.model!r} or URL {self.url} not found (HTTP 404): check model and base_url. "
                f"Server said: {message}"
            )
        if status not in _RETRYABLE_STATUSES and status < 500:
            raise GenerationError(f"{self.url} refused the request (HTTP {status}): {message}")
        return f"HTTP {status}", _retry_after_seconds(error.headers.get("Retry-After"))

    def _transport_failure(self, error: OSError | http.client.HTTPException) -> str:
        """Describe a timeout or connection failure."""
        cause = error.reason if isinstance(error, urllib.error.URLError) else error
        if isinstance(cause, TimeoutError):
            return f"Timeout after {self.timeout_seconds} s"
        return f"Connection error ({type(cause).__name__}: {cause})"

    def _safe_message(self, text: str) -> str:
        """``text`` truncated, with any echo of the key masked."""
        if self.api_key is not None:
            text = text.replace(self.api_key.value, "****")
        return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."


def _require(condition: bool, message: str) -> None:
    """Raise ``GeneratorConfigError(message)`` unless ``condition`` holds."""
    if not condition:
        raise GeneratorConfigError(message)


def _request_seeds(seed: int, count: int) -> list[int]:
    """``count`` per-request seeds drawn reproducibly from ``seed``, within a signed 32-bit range."""
    rng = random.Random(seed)
    return [rng.randrange(_SEED_RANGE) for _ in range(count)]


def _backoff(initial_seconds: float, attempt: int) -> float:
    """Exponential backoff with jitter: ``initial * 2**attempt`` times 0.5 to 1.5, capped."""
    return min(initial_seconds * 2**attempt * random.uniform(0.5, 1.5), _MAX_WAIT_SECONDS)


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), capped.

    ``None`` when the header is absent or unreadable.
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), _MAX_WAIT_SECONDS)


def _error_body(error: urllib.error.HTTPError) -> str:
    """The body of an HTTP error response, or its reason phrase if the body cannot be read."""
    try:
        return error.read().decode("utf-8", "replace")
    except (OSError, http.client.HTTPException):
        return str(error.reason)
    finally:
        error.close()


def _server_message(body: str) -> str:
    """The message in an error body (OpenAI, vLLM, Ollama and llama.cpp shapes), else the body itself."""
    try:
        payload = json.loads(body)
    except ValueError:
        return body
    error = payload.get("error", payload) if isinstance(payload, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return message if isinstance(message, str) and message else body

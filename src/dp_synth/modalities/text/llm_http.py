"""Text generation through any OpenAI-compatible server, on the official ``openai`` client.

Works with OpenAI, vLLM, Ollama and the llama.cpp server (``base_url``) and with Azure OpenAI
(``azure_endpoint`` and ``api_version``, the deployment as ``model``): each prompt is one chat
completion (the prompt as a single user message) or one legacy completion, sent from a bounded
thread pool. Transient failures (HTTP 408, 409, 429 and 5xx, connection errors, timeouts) are
retried with exponential backoff and jitter, honouring the server's ``Retry-After``; failures that
retrying cannot fix (a rejected key, an unknown model, a malformed request) raise at once. The API
key never appears in a log line, an exception message, a repr or the ``description``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import openai

from dp_synth.modalities.text.llm import GenerationProgress, GeneratorConfigError, Secret

logger = logging.getLogger(__name__)

Endpoint = Literal["chat", "completions"]

_ENDPOINT_PATHS: Mapping[str, str] = {"chat": "chat/completions", "completions": "completions"}
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
_MAX_WAIT_SECONDS = 120.0
_MAX_MESSAGE_CHARS = 300
_SEED_RANGE = 2**31
# The client insists on an API key; with the Authorization header omitted from every request
# (no key, or the key in another header), this placeholder is never sent.
_UNSENT_KEY = "unused"


class GenerationError(RuntimeError):
    """A request to the text-generation server failed; the message says which URL and why."""


@dataclass(frozen=True, kw_only=True)
class OpenAICompatibleGenerator:
    """A ``TextGenerator`` backed by an OpenAI-compatible server or Azure OpenAI.

    Args:
        base_url: The API root, e.g. ``"http://127.0.0.1:8000/v1"`` (vLLM) or
            ``"https://api.openai.com/v1"``; a query string (``?api-version=...``) is sent with
            every request. Leave it out for Azure OpenAI through ``azure_endpoint``.
        model: The model name sent in every request; for ``azure_endpoint``, the deployment name.
        api_key: The key, or ``None`` for servers that need none (a local vLLM or Ollama).
        azure_endpoint: An Azure OpenAI resource, e.g. ``"https://NAME.openai.azure.com"``, used
            instead of ``base_url``; the key is then required and sent as ``api-key``.
        api_version: The Azure OpenAI API version, e.g. ``"2024-10-21"`` (with ``azure_endpoint`` only).
        endpoint: ``"chat"`` for ``/chat/completions`` or ``"completions"`` for ``/completions``.
        max_concurrency: Requests in flight at once (>= 1).
        timeout_seconds: Timeout of each request attempt (> 0).
        max_retries: Retries of a transiently failing request after its first attempt (>= 0).
        backoff_seconds: Wait before the first retry; doubles with each retry, with jitter,
            capped at two minutes. A ``Retry-After`` header replaces it (same cap).
        api_key_header: Header carrying the key with ``base_url``: ``"Authorization"`` sends
            ``Bearer <key>``, any other name sends the bare key (not used with ``azure_endpoint``).
        extra_headers: More headers sent with every request.
        top_logprobs: Top log-probabilities asked of each next token (the DP few-shot job's
            candidates, ``next_token_logprobs``): OpenAI's legacy completions give at most 5,
            vLLM 20 by default.
    """

    base_url: str | None = None
    model: str
    api_key: Secret | None = None
    azure_endpoint: str | None = None
    api_version: str | None = None
    endpoint: Endpoint = "chat"
    max_concurrency: int = 4
    timeout_seconds: float = 60.0
    max_retries: int = 5
    backoff_seconds: float = 1.0
    api_key_header: str = "Authorization"
    extra_headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    top_logprobs: int = 20
    _client: openai.OpenAI = field(init=False, repr=False, compare=False)
    _vocabulary: TokenVocabulary = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_settings()
        for name in ("base_url", "azure_endpoint"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, getattr(self, name).strip().rstrip("/"))
        object.__setattr__(self, "extra_headers", MappingProxyType(dict(self.extra_headers)))
        object.__setattr__(self, "_client", self._make_client())
        object.__setattr__(self, "_vocabulary", TokenVocabulary())

    @property
    def description(self) -> str:
        """The model and server, safe to log."""
        if self.azure_endpoint is not None:
            return f"deployment {self.model} at {self.azure_endpoint} (Azure OpenAI {self.api_version})"
        return f"{self.model} at {self.base_url}"

    @property
    def url(self) -> str:
        """The URL every request is posted to."""
        if self.azure_endpoint is not None:
            root = f"{self.azure_endpoint}/openai/deployments/{self.model}"
            query = urllib.parse.urlencode({"api-version": self.api_version})
        else:
            root, query = self._root_and_query()
        path = f"{root}/{_ENDPOINT_PATHS[self.endpoint]}"
        return f"{path}?{query}" if query else path

    def generate(self, prompts: Sequence[str], *, temperature: float, max_new_tokens: int, seed: int) -> list[str]:
        """One completion per prompt, in the prompts' order, at most ``max_concurrency`` at a time.

        Each request gets its own seed drawn from ``seed``, so a seeded run is reproducible on
        servers that honour seeds while identical prompts still get different completions.

        Raises:
            GenerationError: if a request fails for good; the requests not yet sent are cancelled.
        """
        seeds = _request_seeds(seed, len(prompts))
        with (
            GenerationProgress(total=len(prompts)) as progress,
            ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="llm-http") as pool,
        ):
            futures = [
                pool.submit(self._complete, prompt, temperature=temperature, max_new_tokens=max_new_tokens, seed=s)
                for prompt, s in zip(prompts, seeds, strict=True)
            ]
            try:
                for future in as_completed(futures):
                    progress.advance(1, future.result()[1])
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        return [future.result()[0] for future in futures]

    def _check_settings(self) -> None:
        """Raise ``GeneratorConfigError`` naming the first invalid setting and how to fix it."""
        if self.azure_endpoint is None:
            _require(
                _is_http_url(self.base_url),
                f"base_url must be an http(s) URL such as 'http://127.0.0.1:8000/v1', got {self.base_url!r} "
                "(for Azure OpenAI, set azure_endpoint and api_version instead)",
            )
            _require(self.api_version is None, "api_version is used only with azure_endpoint (Azure OpenAI)")
        else:
            _require(self.base_url is None, "set either base_url or azure_endpoint (Azure OpenAI), not both")
            _require(
                _is_http_url(self.azure_endpoint),
                f"azure_endpoint must be an http(s) URL such as 'https://NAME.openai.azure.com', "
                f"got {self.azure_endpoint!r}",
            )
            _require(
                isinstance(self.api_version, str) and bool(self.api_version.strip()),
                f"azure_endpoint needs api_version, a string such as '2024-10-21' (quoted in YAML), "
                f"got {self.api_version!r}",
            )
            _require(
                self.api_key is not None,
                "Azure OpenAI needs an API key: set text_llm.api_key in conf/local/credentials.yml",
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
            isinstance(self.top_logprobs, int) and self.top_logprobs >= 1,
            f"top_logprobs must be an integer >= 1, got {self.top_logprobs!r}",
        )
        _require(
            isinstance(self.api_key_header, str) and bool(self.api_key_header.strip()),
            "api_key_header must be a header name such as 'Authorization' or 'api-key'",
        )

    def _root_and_query(self) -> tuple[str, str]:
        """``base_url`` without its query string, and the query string."""
        parts = urllib.parse.urlsplit(self.base_url)
        return urllib.parse.urlunsplit(parts._replace(query="")), parts.query

    @property
    def _sends_bearer_key(self) -> bool:
        """Whether the client's own ``Authorization: Bearer <key>`` carries the key.

        When it does not (no key, the key in another header, or Azure's ``api-key``), every
        request omits ``Authorization``, which older clients would otherwise fill in.
        """
        bearer_header = self.api_key_header.lower() == "authorization"
        return self.azure_endpoint is None and self.api_key is not None and bearer_header

    def _make_client(self) -> openai.OpenAI:
        """The client: ``AzureOpenAI`` for ``azure_endpoint``, else ``OpenAI`` on ``base_url``.

        ``max_retries=0``: retries are this class's own loop (``_complete``), because the client's
        cannot honour the settings and behaviour the backend promises: its backoff is fixed
        (0.5 s doubling to at most 8 s, not ``backoff_seconds``), it ignores a ``Retry-After`` of
        0 (and, depending on its version, long ones), and it neither logs each failure with the
        retry count nor says in its final error how many attempts were made.
        """
        common: dict[str, Any] = {"timeout": float(self.timeout_seconds), "max_retries": 0}
        if self.azure_endpoint is not None:
            return openai.AzureOpenAI(
                azure_endpoint=self.azure_endpoint,
                azure_deployment=self.model,
                api_version=self.api_version,
                api_key=self.api_key.value,
                default_headers=dict(self.extra_headers),
                **common,
            )
        root, query = self._root_and_query()
        headers = dict(self.extra_headers)
        if self.api_key is not None and not self._sends_bearer_key:
            headers[self.api_key_header] = self.api_key.value
        return openai.OpenAI(
            base_url=root,
            api_key=self.api_key.value if self._sends_bearer_key else _UNSENT_KEY,
            default_headers=headers,
            default_query=dict(urllib.parse.parse_qsl(query, keep_blank_values=True)),
            **common,
        )

    def _complete(self, prompt: str, *, temperature: float, max_new_tokens: int, seed: int) -> tuple[str, int]:
        """The completion of one prompt and its new tokens as the server counted them (0 when it
        does not say), retrying transient failures."""
        response = self._respond(prompt, temperature=temperature, max_new_tokens=max_new_tokens, seed=seed)
        return self._completion_text(response), _completion_tokens(response)

    def _respond(self, prompt: str, **request: Any) -> Any:
        """The response to one request (``_request``'s arguments), retrying transient failures."""
        for attempt in range(self.max_retries + 1):
            try:
                return self._request(prompt, **request)
            except openai.APIStatusError as error:
                failure, retry_after = self._retryable_status_failure(error)
            except openai.APIConnectionError as error:
                failure, retry_after = self._transport_failure(error), None
            if attempt == self.max_retries:
                break
            delay = _backoff(self.backoff_seconds, attempt) if retry_after is None else retry_after
            logger.warning("%s from %s; retry %d/%d in %.2f s", failure, self.url, attempt + 1, self.max_retries, delay)
            time.sleep(delay)
        raise GenerationError(f"{failure} from {self.url}, still failing after {self.max_retries + 1} attempts")

    def _request(
        self,
        prompt: str,
        *,
        temperature: float,
        max_new_tokens: int,
        seed: int,
        logprobs: int | None = None,
        echo: bool = False,
    ) -> Any:
        """One attempt: the parsed response, or whatever the client made of a body that is not one.
        ``logprobs``: ask for that many top log-probabilities of each token, and ``echo`` for the
        prompt's own tokens too (completions only)."""
        options: dict[str, Any] = {
            "model": self.model,
            "temperature": temperature,
            "max_tokens": max_new_tokens,
            "seed": seed,
            "n": 1,
        }
        if not self._sends_bearer_key:
            options["extra_headers"] = {"Authorization": openai.Omit()}
        if self.endpoint == "chat":
            return self._client.chat.completions.create(messages=[{"role": "user", "content": prompt}], **options)
        if logprobs is not None:
            options["logprobs"] = logprobs
        if echo:
            options["echo"] = True
        return self._client.completions.create(prompt=prompt, **options)

    def check_token_logprobs(self, full_vocabulary: bool) -> None:
        """Refuse what a server cannot give (``llm.TokenLogprobModel``).

        Raises:
            GeneratorConfigError: unless ``endpoint`` is ``completions`` (a chat answer cannot
                continue a text token by token), or for the whole vocabulary (a server names its
                top tokens only).
        """
        if self.endpoint != "completions":
            raise GeneratorConfigError(
                "next-token log-probabilities need text.generator.openai_compatible.endpoint: completions (a prompt "
                f"continued as raw text), not {self.endpoint!r}"
            )
        if full_vocabulary:
            raise GeneratorConfigError(
                "a server gives its top log-probabilities only: choose among public top-k candidates "
                "(fewshot.vocabulary: public_top_k)"
            )

    def start_decoding(self, prompts: Sequence[str], max_new_tokens: int) -> CompletionDecoding:
        """Decode ``prompts`` as raw text through the completions endpoint, each step asking the
        server for the next token's ``top_logprobs`` most likely tokens (``llm.TokenLogprobModel``).

        Raises:
            GeneratorConfigError: as ``check_token_logprobs``.
        """
        del max_new_tokens  # the server checks its own context
        self.check_token_logprobs(full_vocabulary=False)
        return CompletionDecoding(self, prompts)

    def decode_tokens(self, tokens: Sequence[int]) -> str:
        """The text of token ids this backend handed out (``token_ids``)."""
        return "".join(self._vocabulary.pieces[token] for token in tokens)

    def ends_line(self, token: int) -> bool:
        """Whether a token ends a line: its text holds a line break, is empty (a server's written
        end of text) or is a special token written as ``<|...|>`` or ``</s>``."""
        piece = self._vocabulary.pieces[token]
        return "\n" in piece or not piece or (piece.startswith("<|") and piece.endswith("|>")) or piece == "</s>"

    def continuation_logprobs(self, prefix: str, texts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        """The log-probability of each continuation after ``prefix + text``: one completions
        request a pair, which echoes the prompt's tokens with their log-probabilities (vLLM,
        llama.cpp server); the continuation's are those of the tokens that start inside it.

        Raises:
            GenerationError: for a request that fails for good, or an answer without them.
        """
        self.check_token_logprobs(full_vocabulary=False)
        pairs = [(prefix + text, continuation) for text in texts for continuation in continuations]
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="llm-http") as pool:
            scores = list(pool.map(lambda pair: self._echoed_logprob(*pair), pairs))
        return np.asarray(scores, dtype=np.float64).reshape(len(texts), len(continuations))

    def _echoed_logprob(self, context: str, continuation: str) -> float:
        """The summed log-probability of the tokens of ``context + continuation`` that start at or
        after the end of ``context``, as the server echoes them."""
        response = self._respond(
            context + continuation, temperature=1.0, max_new_tokens=1, seed=0, logprobs=0, echo=True
        )
        try:
            logprobs = response.choices[0].logprobs
            pairs = zip(logprobs.text_offset, logprobs.token_logprobs, strict=True)
            inside = [logprob for offset, logprob in pairs if len(context) <= offset < len(context + continuation)]
        except (AttributeError, IndexError, TypeError, ValueError):
            inside = []
        if not inside or any(logprob is None for logprob in inside):
            raise GenerationError(
                f"{self.url} did not echo the prompt's log-probabilities: scoring needs a server that does "
                "(vLLM, llama.cpp server)"
            )
        return float(sum(inside))

    def next_token_logprobs(self, prompts: Sequence[str]) -> list[dict[int, float]]:
        """The top log-probabilities of each prompt's next token, by token id (``token_ids``),
        ``max_concurrency`` requests at a time.

        Raises:
            GenerationError: for a request that fails for good, or an answer without log-probabilities.
        """
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="llm-http") as pool:
            answers = list(pool.map(self._top_logprobs, prompts))
        return [self._vocabulary.ids_of(answer) for answer in answers]

    def _top_logprobs(self, prompt: str) -> dict[str, float]:
        """One request for the next token's top log-probabilities, by token text."""
        response = self._respond(prompt, temperature=1.0, max_new_tokens=1, seed=0, logprobs=self.top_logprobs)
        try:
            top = response.choices[0].logprobs.top_logprobs[0]
        except (AttributeError, IndexError, TypeError):
            raise GenerationError(
                f"{self.url} answered without top log-probabilities: the DP few-shot job needs a server that "
                "returns them (vLLM, llama.cpp server, OpenAI's legacy completions)"
            ) from None
        return {str(piece): float(logprob) for piece, logprob in dict(top).items()}

    def _completion_text(self, response: Any) -> str:
        """The completion in a successful response.

        A choice whose content is null (a refusal or a content filter) gives an empty completion,
        which the modality treats as no rewrite, so one refusal does not stop a long run.

        Raises:
            GenerationError: if the response holds no choice at all (a server or proxy fault).
        """
        try:
            choice = response.choices[0]
            text = choice.message.content if self.endpoint == "chat" else choice.text
        except (AttributeError, IndexError, TypeError):
            body = response.to_json(indent=None) if isinstance(response, openai.BaseModel) else str(response)
            raise GenerationError(f"{self.url} answered without a completion: {self._safe_message(body)}") from None
        if text is None:
            logger.warning("%s returned an empty choice (finish reason %r)", self.url, choice.finish_reason)
            return ""
        return str(text)

    def _retryable_status_failure(self, error: openai.APIStatusError) -> tuple[str, float | None]:
        """Describe an HTTP error worth retrying and its ``Retry-After`` seconds, or raise one that is not.

        Raises:
            GenerationError: on 401/403 (the key), 404 (model or URL) and any other non-retryable status.
        """
        status = error.status_code
        message = self._safe_message(_server_message(error.body) or error.message)
        # ``from None`` everywhere: the client's own exception text may echo the key.
        if status in (401, 403):
            problem = "rejected the API key" if self.api_key is not None else "requires an API key and none is set"
            raise GenerationError(
                f"{self.url} {problem} (HTTP {status}): check the key in conf/local/credentials.yml. "
                f"Server said: {message}"
            ) from None
        if status == 404:
            raise GenerationError(
                f"Model {self.model!r} or URL {self.url} not found (HTTP 404): check model and "
                f"{'azure_endpoint' if self.azure_endpoint is not None else 'base_url'}. Server said: {message}"
            ) from None
        if status not in _RETRYABLE_STATUSES and status < 500:
            raise GenerationError(f"{self.url} refused the request (HTTP {status}): {message}") from None
        return f"HTTP {status}", _retry_after_seconds(error.response.headers)

    def _transport_failure(self, error: openai.APIConnectionError) -> str:
        """Describe a timeout or connection failure."""
        if isinstance(error, openai.APITimeoutError):
            return f"Timeout after {self.timeout_seconds} s"
        cause = error.__cause__ or error
        return f"Connection error ({type(cause).__name__}: {cause})"

    def _safe_message(self, text: str) -> str:
        """``text`` truncated, with any echo of the key masked."""
        if self.api_key is not None:
            text = text.replace(self.api_key.value, "****")
        return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."


@dataclass
class TokenVocabulary:
    """Ids for the token texts a server answers with, handed out in the order first seen (a
    server names tokens by their text, the vote needs ids)."""

    pieces: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)

    def ids_of(self, logprobs: Mapping[str, float]) -> dict[int, float]:
        """``logprobs`` keyed by id, new texts given new ids."""
        for piece in logprobs:
            if piece not in self.ids:
                self.ids[piece] = len(self.pieces)
                self.pieces.append(piece)
        return {self.ids[piece]: logprob for piece, logprob in logprobs.items()}


class CompletionDecoding:
    """``llm.TokenDecoding`` through a completions endpoint: each step asks for every row's next
    token's top log-probabilities (the server reads the whole text again: it keeps no cache);
    the tokens it did not name get probability 0 (log-probability minus infinity)."""

    def __init__(self, generator: OpenAICompatibleGenerator, prompts: Sequence[str]) -> None:
        self._generator = generator
        self._texts = list(prompts)
        self._answers = generator.next_token_logprobs(self._texts)

    def logprobs(self) -> np.ndarray:
        """Shape (rows, tokens seen so far): each row's top log-probabilities, minus infinity elsewhere."""
        table = np.full((len(self._texts), len(self._generator._vocabulary.pieces)), -np.inf)
        for row, answer in enumerate(self._answers):
            table[row, list(answer)] = list(answer.values())
        return table

    def extend(self, tokens: np.ndarray) -> None:
        """Append each row's token text and ask for the next token."""
        pieces = self._generator._vocabulary.pieces
        self._texts = [text + pieces[int(token)] for text, token in zip(self._texts, tokens, strict=True)]
        self._answers = self._generator.next_token_logprobs(self._texts)


def _completion_tokens(response: Any) -> int:
    """The new tokens a response reports in its ``usage``; 0 when it reports none."""
    tokens = getattr(getattr(response, "usage", None), "completion_tokens", None)
    return tokens if isinstance(tokens, int) else 0


def _require(condition: bool, message: str) -> None:
    """Raise ``GeneratorConfigError(message)`` unless ``condition`` holds."""
    if not condition:
        raise GeneratorConfigError(message)


def _is_http_url(value: object) -> bool:
    """Whether ``value`` is an http(s) URL with a host."""
    if not isinstance(value, str):
        return False
    parts = urllib.parse.urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _request_seeds(seed: int, count: int) -> list[int]:
    """``count`` per-request seeds drawn reproducibly from ``seed``, within a signed 32-bit range."""
    rng = random.Random(seed)
    return [rng.randrange(_SEED_RANGE) for _ in range(count)]


def _backoff(initial_seconds: float, attempt: int) -> float:
    """Exponential backoff with jitter: ``initial * 2**attempt`` times 0.5 to 1.5, capped."""
    return min(initial_seconds * 2**attempt * random.uniform(0.5, 1.5), _MAX_WAIT_SECONDS)


def _retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI's) or ``Retry-After`` (delta-seconds or
    HTTP date), capped.

    ``None`` when both headers are absent or unreadable.
    """
    try:
        seconds = float(headers["retry-after-ms"]) / 1000
    except (KeyError, ValueError):
        seconds = _delay_seconds(headers.get("retry-after"))
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), _MAX_WAIT_SECONDS)


def _delay_seconds(value: str | None) -> float | None:
    """The seconds a ``Retry-After`` value asks for: a number, or the time until an HTTP date."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        try:
            return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None


def _server_message(body: object) -> str:
    """The message in an error body as the client decoded it (the ``error`` member, or the whole
    body: OpenAI, vLLM, Ollama and llama.cpp shapes), else the body itself."""
    if isinstance(body, Mapping):
        message = body.get("message")
        return message if isinstance(message, str) and message else json.dumps(body)
    return "" if body is None else str(body)

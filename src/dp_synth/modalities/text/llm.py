"""The language-model interface behind the text modality's random and variation APIs.

A backend turns prompts into completions; the text modality builds the prompts (from public
knowledge for the random API, from a selected synthetic sample for the variation API). Two
backends implement it: a local Hugging Face causal LM (``dp_synth.modalities.text.llm_local``) and any
OpenAI-compatible HTTP endpoint (``dp_synth.modalities.text.llm_http``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm import tqdm

logger = logging.getLogger(__name__)


class GeneratorConfigError(ValueError):
    """The text generator is missing or misconfigured; the message says how to fix it."""


class TextGenerator(Protocol):
    """A language model that completes prompts.

    Attributes:
        description: What the model is, safe to log (a model path or a URL, never a key).
    """

    description: str

    def generate(self, prompts: Sequence[str], *, temperature: float, max_new_tokens: int, seed: int) -> list[str]:
        """One completion per prompt, in the prompts' order, without the prompt itself.

        Args:
            prompts: The prompts.
            temperature: Sampling temperature (> 0).
            max_new_tokens: Upper bound on each completion's length in tokens.
            seed: Seed of the sampling, so a seeded run can be reproduced where the backend allows.
        """
        ...


class TokenDecoding(Protocol):
    """Many prompts decoded together, one token at a time, each extended by a token the caller
    chooses (``TokenLogprobModel.start_decoding``); each prompt is read once."""

    def logprobs(self) -> np.ndarray:
        """Natural-log probabilities of the next token of every row, shape (rows, vocabulary)."""
        ...

    def extend(self, tokens: np.ndarray) -> None:
        """Append one token id to each row (shape (rows,))."""
        ...


@runtime_checkable
class TokenLogprobModel(Protocol):
    """A language model that exposes its next-token log-probabilities, read as raw text (no chat
    template: few-shot prompts are completions). The DP few-shot job needs one
    (``dp_synth.modalities.text.fewshot``)."""

    description: str

    def check_token_logprobs(self, full_vocabulary: bool) -> None:
        """Raise ``GeneratorConfigError`` if the model cannot give next-token log-probabilities,
        or (``full_vocabulary``) cannot give them for every token."""
        ...

    def start_decoding(self, prompts: Sequence[str], max_new_tokens: int) -> TokenDecoding:
        """Read ``prompts`` for a decoding of at most ``max_new_tokens`` tokens."""
        ...

    def decode_tokens(self, tokens: Sequence[int]) -> str:
        """The text of token ids (special tokens left out)."""
        ...

    def ends_line(self, token: int) -> bool:
        """Whether a token ends a line of text: an end of text, or a token holding a line break."""
        ...

    def continuation_logprobs(self, prefix: str, texts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        """The log-probability of each continuation after ``prefix + text``, shape (texts, continuations)."""
        ...


def require_token_logprobs(generator: TextGenerator) -> TokenLogprobModel:
    """``generator`` if it exposes next-token log-probabilities.

    Raises:
        GeneratorConfigError: naming the backend that does.
    """
    if not isinstance(generator, TokenLogprobModel):
        raise GeneratorConfigError(
            f"{generator.description} does not expose next-token log-probabilities, which DP few-shot generation "
            "votes on: use the huggingface backend (a local causal LM), or openai_compatible with endpoint: "
            "completions"
        )
    return generator


@dataclass(frozen=True)
class Secret:
    """A credential that never shows itself in a repr, a log line or an exception message."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret(****)"

    __str__ = __repr__


def progress_bar(total: int, description: str, unit: str) -> tqdm:
    """A tqdm bar on stderr, only on a terminal and only once the work has lasted two seconds
    (CI, tests and tiny runs stay quiet), cleared when done."""
    return tqdm(total=total, desc=description, unit=unit, file=sys.stderr, disable=None, delay=2.0, leave=False)


class GenerationProgress:
    """A tqdm progress bar over generated completions, with new tokens per second, that logs one
    summary line at the end.

    The bar goes to stderr, only on a terminal and only once the work has lasted two seconds, so
    CI, tests and tiny runs stay quiet; it is cleared when done. The summary line always logs.
    Use it as a context manager; ``advance`` records finished completions and their tokens.

    Args:
        total: Completions requested.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.tokens = 0
        # On stderr; disable=None: only on a terminal; delay: only once it has run two seconds.
        self._bar = progress_bar(total, "Generating", "text")
        self._started = time.monotonic()

    def __enter__(self) -> GenerationProgress:
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        self._bar.close()
        if error_type is None:
            elapsed = max(time.monotonic() - self._started, 1e-9)
            logger.info(
                "Generated %d/%d completions, %d new tokens (%.1f completions and %.0f new tokens per second, "
                "%.0f s elapsed)",
                self.done,
                self.total,
                self.tokens,
                self.done / elapsed,
                self.tokens / elapsed,
                elapsed,
            )

    def advance(self, count: int, tokens: int) -> None:
        """Record ``count`` more finished completions, holding ``tokens`` new tokens together."""
        self.done += count
        self.tokens += tokens
        elapsed = max(time.monotonic() - self._started, 1e-9)
        self._bar.set_postfix_str(f"{self.tokens / elapsed:.0f} tokens/s", refresh=False)
        self._bar.update(count)


BACKENDS = ("huggingface", "openai_compatible")
_HOW_TO_CONFIGURE = (
    "set text.generator.backend to 'huggingface' with text.generator.huggingface.model pointing at a "
    "local model directory, or to 'openai_compatible' with text.generator.openai_compatible.base_url "
    "(or .azure_endpoint and .api_version for Azure OpenAI) and .model (the key, if the server needs one, "
    "goes in conf/local/credentials.yml under text_llm.api_key); see the README's text section"
)


def build_generator(
    backend: str | None, settings: Mapping[str, Mapping[str, Any]], api_key: Secret | None
) -> TextGenerator:
    """Build the configured backend.

    Args:
        backend: ``"huggingface"``, ``"openai_compatible"``, or ``None`` (not configured).
        settings: Each backend's constructor settings, under its name.
        api_key: The HTTP backend's key from the credentials, if any.

    Raises:
        GeneratorConfigError: for no backend, an unknown one, or settings it does not take.
    """
    if backend is None:
        raise GeneratorConfigError(f"no text generator is configured: {_HOW_TO_CONFIGURE}")
    if backend not in BACKENDS:
        raise GeneratorConfigError(f"unknown text.generator.backend {backend!r}; choose one of {list(BACKENDS)}")
    options = dict(settings.get(backend) or {})
    if backend == "huggingface":
        try:
            from dp_synth.modalities.text.llm_local import HuggingFaceGenerator as backend_class
        except ImportError as error:
            raise GeneratorConfigError(
                f"the huggingface backend needs the text extra ({error.name} is missing): "
                "pip install -e '.[text]', or make install-all"
            ) from None
    else:
        try:
            from dp_synth.modalities.text.llm_http import OpenAICompatibleGenerator as backend_class
        except ImportError as error:
            raise GeneratorConfigError(
                f"the openai_compatible backend needs the text extra ({error.name} is missing): "
                "pip install -e '.[text]', or make install-all"
            ) from None
        options["api_key"] = api_key
    if not options.get("model"):
        raise GeneratorConfigError(f"text.generator.{backend}.model is not set: {_HOW_TO_CONFIGURE}")
    try:
        return backend_class(**options)
    except TypeError as error:
        raise GeneratorConfigError(f"text.generator.{backend}: {error}") from None

"""A local Hugging Face causal language model as a ``TextGenerator``.

The model is loaded lazily, on the first ``generate`` call, so building the generator is cheap;
a local directory that does not exist is reported at construction. Nothing is downloaded unless
``allow_download`` is set.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from dp_synth.modalities.text.llm import GenerationProgress, GeneratorConfigError, progress_bar

logger = logging.getLogger(__name__)

DtypeName = Literal["auto", "float32", "bfloat16", "float16"]
ChatTemplateChoice = Literal["auto"] | bool

_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class HuggingFaceGenerator:
    """Completes prompts by sampling from a causal LM run locally by ``transformers``, in batches.

    Args:
        model: A local directory holding the model and its tokenizer (as saved by
            ``save_pretrained``), or a Hugging Face hub id such as ``"Qwen/Qwen2.5-0.5B-Instruct"``.
            A string is taken as a directory when it starts with ``.``, ``/`` or ``~``, has more
            than one ``/``, or names an existing directory.
        allow_download: Whether a hub id missing from the local cache may be downloaded; when
            False only local files are read.
        device: A torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...), or ``"auto"`` for CUDA
            when available, else the CPU.
        dtype: The weights' dtype; ``"auto"`` keeps the checkpoint's dtype on an accelerator and
            uses bfloat16 on a CPU with bfloat16 instructions, float32 on other CPUs.
        batch_size: Prompts per forward pass (>= 1).
        use_chat_template: Whether to send each prompt as a user message through the tokenizer's
            chat template; ``"auto"`` does so when the tokenizer has one.

    Completions depend on ``seed`` and on ``batch_size`` (which prompts share a batch, and its
    padding); with both fixed, a run on the same device, dtype and software reproduces.

    Raises:
        GeneratorConfigError: On a bad setting or a local model directory that does not exist.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        allow_download: bool = False,
        device: str = "auto",
        dtype: DtypeName = "auto",
        batch_size: int = 64,
        use_chat_template: ChatTemplateChoice = "auto",
    ) -> None:
        self.model = _resolve_model(model)
        self.allow_download = allow_download
        self.device = _resolve_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise GeneratorConfigError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        self.batch_size = batch_size
        if use_chat_template not in ("auto", True, False):
            raise GeneratorConfigError(f"use_chat_template must be 'auto', true or false, got {use_chat_template!r}")
        self.use_chat_template = use_chat_template
        self.description = f"{self.model} (transformers, {self.device})"
        self._loaded: tuple[PreTrainedModel, PreTrainedTokenizerBase, bool] | None = None

    def generate(self, prompts: Sequence[str], *, temperature: float, max_new_tokens: int, seed: int) -> list[str]:
        """One sampled completion per prompt, in the prompts' order, without the prompt itself.

        Args:
            prompts: The prompts.
            temperature: Sampling temperature (> 0).
            max_new_tokens: Upper bound on each completion's length in tokens (>= 1).
            seed: Seed of the sampling; batch ``i`` samples under a seed derived from it and ``i``.

        Raises:
            GeneratorConfigError: When the model or its tokenizer cannot be loaded.
            ValueError: On a non-positive ``temperature`` or ``max_new_tokens``.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if not prompts:
            return []
        model, tokenizer, chat = self._load()
        # A chat template already writes the special tokens (such as a beginning of text) it needs.
        texts = [_chat_prompt(tokenizer, prompt) for prompt in prompts] if chat else list(prompts)
        completions = [""] * len(texts)
        with GenerationProgress(total=len(texts)) as progress:
            for index, positions in enumerate(plan_batches(texts, self.batch_size)):
                torch.manual_seed(_batch_seed(seed, index))
                batch = [texts[position] for position in positions]
                sample = _sample_from_shared_prompt if len(set(batch)) == 1 and len(batch) > 1 else _sample
                done, tokens = sample(
                    model,
                    tokenizer,
                    batch,
                    add_special_tokens=not chat,
                    temperature=temperature,
                    max_new_tokens=max_new_tokens,
                )
                for position, completion in zip(positions, done, strict=True):
                    completions[position] = completion
                progress.advance(len(batch), tokens)
        return completions

    def start_decoding(self, prompts: Sequence[str], max_new_tokens: int) -> PromptDecoding:
        """Read ``prompts`` (raw text, no chat template) for a decoding of at most
        ``max_new_tokens`` tokens chosen by the caller (``llm.TokenLogprobModel``).

        Raises:
            GeneratorConfigError: when the model cannot be loaded, or a prompt plus
                ``max_new_tokens`` exceeds its context.
        """
        model, tokenizer, _ = self._load()
        return PromptDecoding(model, tokenizer, prompts, max_new_tokens, self.batch_size)

    def decode_tokens(self, tokens: Sequence[int]) -> str:
        """The text of token ids, special tokens left out."""
        return self._load()[1].decode(list(tokens), skip_special_tokens=True)

    def check_token_logprobs(self, full_vocabulary: bool) -> None:
        """Nothing to refuse: the model gives every token's log-probability."""

    def ends_line(self, token: int) -> bool:
        """Whether ``token`` is the end-of-text token or its text holds a line break."""
        return token in self._stop_tokens

    @cached_property
    def _stop_tokens(self) -> frozenset[int]:
        tokenizer = self._load()[1]
        pieces = tokenizer.batch_decode([[token] for token in range(len(tokenizer))])
        stops = {token for token, piece in enumerate(pieces) if "\n" in piece}
        return frozenset(stops | {tokenizer.eos_token_id} - {None})

    def continuation_logprobs(self, prefix: str, texts: Sequence[str], continuations: Sequence[str]) -> np.ndarray:
        """The log-probability of each continuation after ``prefix + text``, for every text, as
        raw text (no chat template), in batches of ``batch_size`` texts.

        The prefix is read once, each text once after it, and each continuation after its text
        (key-value caches). Each piece is tokenized on its own, so a piece should start at a
        token boundary (a continuation such as ``" Sports"`` after ``"Topic:"``).

        Returns:
            Shape (texts, continuations): the sum of the log-probabilities of each
            continuation's tokens.

        Raises:
            ValueError: for an empty continuation.
        """
        model, tokenizer, _ = self._load()
        pieces = [tokenizer(piece, add_special_tokens=False)["input_ids"] for piece in continuations]
        if not all(pieces):
            raise ValueError("every continuation must hold at least one token")
        prefix_ids = tokenizer(prefix)["input_ids"]
        prefix_cache = DynamicCache(config=model.config)
        if prefix_ids:
            _forward(
                model,
                torch.tensor([prefix_ids], device=model.device),
                torch.ones(1, len(prefix_ids), dtype=torch.long),
                prefix_cache,
            )
        scores = np.empty((len(texts), len(continuations)))
        with progress_bar(len(texts), "Scoring", "text") as bar:
            for start in range(0, len(texts), self.batch_size):
                batch = [
                    tokenizer(text, add_special_tokens=False)["input_ids"]
                    for text in texts[start : start + self.batch_size]
                ]
                _check_context(model, len(prefix_ids) + max(map(len, batch)), max(map(len, pieces)))
                scores[start : start + len(batch)] = _score_batch(model, prefix_cache, len(prefix_ids), batch, pieces)
                bar.update(len(batch))
        return scores

    def _load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, bool]:
        """The model, its tokenizer and whether to use the chat template; loaded on first use."""
        if self._loaded is None:
            logger.info("Loading %s", self.description)
            tokenizer = _load_tokenizer(self.model, self.allow_download)
            chat = _wants_chat_template(self.use_chat_template, tokenizer, self.model)
            model = _load_model(self.model, self.dtype, self.allow_download)
            self._loaded = (model.to(self.device).eval(), tokenizer, chat)
        return self._loaded


def _looks_like_directory(model: str) -> bool:
    """Whether ``model`` names a local directory rather than a hub id (``org/name``)."""
    return (
        model.startswith((".", "/", "~"))
        or model.count("/") > 1
        or (os.sep != "/" and os.sep in model)
        or Path(model).is_dir()
    )


def _resolve_model(model: str | os.PathLike[str]) -> str:
    """The hub id, or the local directory with ``~`` expanded, which must exist."""
    name = os.fspath(model)
    if not isinstance(model, os.PathLike) and not _looks_like_directory(name):
        return name
    directory = Path(name).expanduser()
    if not directory.is_dir():
        raise GeneratorConfigError(
            f"The local model directory {directory} does not exist. Point the model setting at a "
            "directory saved by `save_pretrained` (config.json, weights and tokenizer files), or at a "
            "Hugging Face hub id such as 'Qwen/Qwen2.5-0.5B-Instruct'."
        )
    return str(directory)


def _resolve_device(device: str) -> str:
    """``device`` as a torch device string, ``"auto"`` resolved to CUDA when available, else CPU."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        return str(torch.device(device))
    except (RuntimeError, TypeError) as error:
        raise GeneratorConfigError(
            f"device must be 'auto' or a torch device such as 'cpu' or 'cuda', got {device!r}"
        ) from error


def _resolve_dtype(dtype: str, device: str) -> torch.dtype | Literal["auto"]:
    """The dtype for ``from_pretrained``: ``"auto"`` is the checkpoint's own on an accelerator;
    on the CPU, bfloat16 where the CPU has bfloat16 instructions (AVX512-BF16: prompts of a
    135M model read about twice as fast as in float32, docs/benchmarks.md), else float32 (a
    half-precision checkpoint emulated without them is slower than float32)."""
    if dtype == "auto":
        if device != "cpu":
            return "auto"
        return torch.bfloat16 if _cpu_has_bfloat16() else torch.float32
    if dtype not in _DTYPES:
        raise GeneratorConfigError(f"dtype must be 'auto' or one of {sorted(_DTYPES)}, got {dtype!r}")
    return _DTYPES[dtype]


def _not_found(model: str, allow_download: bool, error: Exception) -> GeneratorConfigError:
    """The error for a model or tokenizer that could not be loaded, saying how to fix it."""
    remedy = (
        "Check the hub id and the network."
        if allow_download
        else "Point the model setting at a local directory saved by `save_pretrained`, or set "
        "allow_download to true to fetch a hub id into the Hugging Face cache."
    )
    return GeneratorConfigError(f"Could not load the language model {model!r}: {error}. {remedy}")


def _load_tokenizer(model: str, allow_download: bool) -> PreTrainedTokenizerBase:
    """The model's tokenizer, padding on the left (as generation needs), with a padding token."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=not allow_download)
    except (OSError, ValueError) as error:
        raise _not_found(model, allow_download, error) from error
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise GeneratorConfigError(f"The tokenizer of {model!r} has neither a padding nor an end-of-text token.")
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _cpu_has_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (torch's own probe; private, hence guarded)."""
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(probe is not None and probe())


def _load_model(model: str, dtype: torch.dtype | Literal["auto"], allow_download: bool) -> PreTrainedModel:
    """The causal LM, its weights in ``dtype``."""
    try:
        return AutoModelForCausalLM.from_pretrained(model, dtype=dtype, local_files_only=not allow_download)
    except (OSError, ValueError) as error:
        raise _not_found(model, allow_download, error) from error


def _wants_chat_template(choice: ChatTemplateChoice, tokenizer: PreTrainedTokenizerBase, model: str) -> bool:
    """Whether prompts go through the chat template: ``choice``, or for ``"auto"`` whether there is one."""
    has_template = tokenizer.chat_template is not None
    if choice is True and not has_template:
        raise GeneratorConfigError(
            f"use_chat_template is true but the tokenizer of {model!r} has no chat template; set it to 'auto' or false."
        )
    return has_template if choice == "auto" else bool(choice)


def _chat_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """``prompt`` as a user message in the chat template, ready for the assistant's answer."""
    messages = [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


SHARED_PROMPT_MIN_BATCH = 16
"""Fewest copies of one prompt sampled as a batch of their own (fewer join the mixed batches:
a batch of a few rows costs nearly as much per decoding step as a full one)."""


def plan_batches(texts: Sequence[str], size: int) -> list[list[int]]:
    """Positions of ``texts`` grouped into batches of at most ``size``, for throughput.

    Identical texts (the random API asks the same question many times) fill batches of their own,
    which sample from one shared prompt (``_sample_from_shared_prompt``: the prompt is read once),
    when there are at least ``SHARED_PROMPT_MIN_BATCH`` of them (or a full batch); the others are
    ordered by length, so that a batch pads little. The plan depends on the texts only, so a
    seeded call reproduces.
    """
    positions_of: dict[str, list[int]] = {}
    for position, text in enumerate(texts):
        positions_of.setdefault(text, []).append(position)
    batches: list[list[int]] = []
    mixed: list[int] = []
    for positions in positions_of.values():
        for start in range(0, len(positions), size):
            chunk = positions[start : start + size]
            if len(chunk) >= min(size, SHARED_PROMPT_MIN_BATCH) and len(chunk) > 1:
                batches.append(chunk)
            else:
                mixed += chunk
    mixed.sort(key=lambda position: (len(texts[position]), position))
    batches += [mixed[start : start + size] for start in range(0, len(mixed), size)]
    return batches


def _batch_seed(seed: int, index: int) -> int:
    """A seed for batch ``index`` derived from the run's ``seed``, unrelated across both."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _check_context(model: PreTrainedModel, prompt_tokens: int, max_new_tokens: int) -> None:
    """Raise ``GeneratorConfigError`` when ``prompt_tokens`` plus ``max_new_tokens`` exceed the model's context."""
    context = getattr(model.config, "max_position_embeddings", None)
    if context is not None and prompt_tokens + max_new_tokens > context:
        raise GeneratorConfigError(
            f"a prompt of {prompt_tokens} tokens plus max_new_tokens={max_new_tokens} exceeds the "
            f"model's context of {context} tokens; shorten the prompt templates, lower text.generator.max_new_tokens "
            "or use a model with a longer context"
        )


def _decoded(tokenizer: PreTrainedTokenizerBase, new_tokens: torch.Tensor) -> tuple[list[str], int]:
    """The completions in ``new_tokens`` (decoded without special tokens, stripped) and how many
    tokens they hold: each up to its first end-of-text token, included (the rest is padding)."""
    ends = new_tokens == tokenizer.pad_token_id
    if tokenizer.eos_token_id is not None:
        ends |= new_tokens == tokenizer.eos_token_id
    lengths = torch.where(ends.any(dim=1), ends.int().argmax(dim=1) + 1, new_tokens.shape[1])
    texts = [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]
    return texts, int(lengths.sum())


def _sample(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    add_special_tokens: bool,
    temperature: float,
    max_new_tokens: int,
) -> tuple[list[str], int]:
    """One sampled completion per text (only the new tokens, decoded without special tokens,
    stripped) and the number of tokens generated.

    Raises:
        GeneratorConfigError: when a prompt plus ``max_new_tokens`` exceeds the model's context.
    """
    inputs = tokenizer(texts, padding=True, return_tensors="pt", add_special_tokens=add_special_tokens).to(model.device)
    _check_context(model, inputs["input_ids"].shape[1], max_new_tokens)
    return _generate(model, tokenizer, dict(inputs), temperature=temperature, max_new_tokens=max_new_tokens)


def _sample_from_shared_prompt(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    add_special_tokens: bool,
    temperature: float,
    max_new_tokens: int,
) -> tuple[list[str], int]:
    """``_sample`` for a batch of one repeated prompt: the prompt is read once (its key-value cache
    copied to every row) instead of once per row, which on a CPU is about as long as generating
    the completions themselves."""
    prompt = tokenizer(texts[0], return_tensors="pt", add_special_tokens=add_special_tokens)["input_ids"]
    prompt = prompt.to(model.device)
    _check_context(model, prompt.shape[1], max_new_tokens)
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        model(input_ids=prompt[:, :-1], cache=cache)
        cache.batch_repeat_interleave(len(texts))
    rows = prompt.repeat(len(texts), 1)
    inputs = {"input_ids": rows, "attention_mask": torch.ones_like(rows), "cache": cache}
    return _generate(model, tokenizer, inputs, temperature=temperature, max_new_tokens=max_new_tokens)


def _generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    inputs: dict[str, Any],
    *,
    temperature: float,
    max_new_tokens: int,
) -> tuple[list[str], int]:
    """Sample from ``inputs`` (``input_ids``, ``attention_mask``, and a prompt cache if any),
    checked against the model's context by the caller: the decoded new tokens of each row and
    their count (``_decoded``)."""
    prompt_tokens = inputs["input_ids"].shape[1]
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            do_sample=True,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
    return _decoded(tokenizer, output[:, prompt_tokens:])


def _padded(rows: Sequence[Sequence[int]], pad: int, *, left: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows padded to one length (on the left or the right) and their attention mask."""
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        columns = slice(width - len(row), width) if left else slice(0, len(row))
        ids[index, columns] = torch.tensor(row, dtype=torch.long)
        mask[index, columns] = 1
    return ids, mask


def _forward(
    model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor, cache: DynamicCache, last_only: bool = True
) -> torch.Tensor:
    """Read ``ids`` after what ``cache`` holds (``mask`` covers both): the next-token
    log-probabilities after the last token (rows, vocabulary), or after every token of ``ids``
    (rows, tokens, vocabulary), as float32."""
    mask = mask.to(model.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, -ids.shape[1] :]
    with torch.inference_mode():
        logits = model(
            input_ids=ids.to(model.device),
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1 if last_only else 0,
        ).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    return logprobs[:, -1] if last_only else logprobs


def _score_batch(
    model: PreTrainedModel,
    prefix_cache: DynamicCache,
    prefix_tokens: int,
    texts: list[list[int]],
    continuations: list[list[int]],
) -> np.ndarray:
    """``HuggingFaceGenerator.continuation_logprobs`` of one batch of tokenized texts."""
    cache = copy.deepcopy(prefix_cache)
    if prefix_tokens:
        cache.batch_repeat_interleave(len(texts))
    ids, text_mask = _padded(texts, 0, left=True)
    mask = torch.cat([torch.ones(len(texts), prefix_tokens, dtype=torch.long), text_mask], dim=1)
    first = _forward(model, ids, mask, cache).cpu().numpy()
    scores = first[:, [piece[0] for piece in continuations]]
    rest = [piece[:-1] for piece in continuations]  # each token but the last predicts the next
    if max(map(len, continuations)) == 1:
        return scores
    count = len(continuations)
    cache.batch_repeat_interleave(count)
    ids, piece_mask = _padded([rest[j] for _ in texts for j in range(count)], 0, left=False)
    mask = torch.cat([mask.repeat_interleave(count, dim=0), piece_mask], dim=1)
    following = _forward(model, ids, mask, cache, last_only=False).cpu().numpy()
    for row in range(len(texts)):
        for j, piece in enumerate(continuations):
            steps = following[row * count + j]
            scores[row, j] += sum(float(steps[k, token]) for k, token in enumerate(piece[1:]))
    return scores


class PromptDecoding:
    """``llm.TokenDecoding`` on a local causal LM: the prompts are read once, in chunks of
    ``batch_size`` rows each holding its own key-value cache, then every ``extend`` reads one
    token a row.

    Args:
        model: The causal LM.
        tokenizer: Its tokenizer (padding on the left).
        prompts: The prompts, as raw text.
        max_new_tokens: The most tokens that will be appended (checked against the context).
        batch_size: Rows per chunk.

    Raises:
        GeneratorConfigError: when a prompt plus ``max_new_tokens`` exceeds the model's context.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        prompts: Sequence[str],
        max_new_tokens: int,
        batch_size: int,
    ) -> None:
        rows = [tokenizer(prompt)["input_ids"] for prompt in prompts]
        _check_context(model, max(map(len, rows), default=0), max_new_tokens)
        self._model = model
        self._chunks: list[tuple[DynamicCache, torch.Tensor]] = []
        self._last: list[torch.Tensor] = []
        with progress_bar(len(rows), "Reading prompts", "prompt") as bar:
            for start in range(0, len(rows), batch_size):
                ids, mask = _padded(rows[start : start + batch_size], tokenizer.pad_token_id, left=True)
                cache = DynamicCache(config=model.config)
                self._last.append(_forward(model, ids, mask, cache))
                self._chunks.append((cache, mask))
                bar.update(ids.shape[0])

    def logprobs(self) -> np.ndarray:
        """Natural-log probabilities of every row's next token, shape (rows, vocabulary)."""
        return torch.cat(self._last).cpu().numpy()

    def extend(self, tokens: np.ndarray) -> None:
        """Append one token id to each row and read it."""
        tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        start = 0
        for index, (cache, mask) in enumerate(self._chunks):
            rows = mask.shape[0]
            mask = torch.cat([mask, torch.ones(rows, 1, dtype=torch.long)], dim=1)
            self._last[index] = _forward(self._model, tokens[start : start + rows, None], mask, cache)
            self._chunks[index] = (cache, mask)
            start += rows

"""DP few-shot demonstrations for in-context learning (Tang et al., "Privacy-Preserving In-Context
Learning with Differentially Private Few-Shot Generation", ICLR 2024), framework-free.

Each demonstration to release (a class and an index) gets its own disjoint groups of private
examples of that class; each group writes one prompt (its examples as shots, then an open
example of the class). The demonstration is written token by token: the groups' next-token
distributions are summed (over the public candidates of a zero-shot prompt, or the whole
vocabulary), Gaussian noise is added to the sums of every demonstration at once (one release
per token), and the noisy argmax is appended to every prompt of that demonstration. The
released demonstrations then serve any number of classification queries at no further cost.
docs/algorithm.md ("DP few-shot demonstrations") states the sensitivity and the accounting.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dp_synth.modalities.text.llm import TokenLogprobModel, progress_bar
from dp_synth.modalities.text.modality import LABEL, TEXT, CorpusSchema
from dp_synth.pe.noise import NoiseSource

HEADER = "Some {domain}s and their topics ({classes}).\n\n"
GENERATION_SHOT = "Topic: {label}\nText: {text}\n\n"
GENERATION_OPEN = "Topic: {label}\nText:"
CLASSIFICATION_SHOT = "Text: {text}\nTopic: {label}\n\n"
CLASSIFICATION_OPEN = "Text: {text}\nTopic:"
_FIELDS = {
    "header": {"domain", "classes"},
    "generation_shot": {"label", "text"},
    "generation_open": {"label"},
    "classification_shot": {"label", "text"},
    "classification_open": {"text"},
}


def one_line(text: str) -> str:
    """``text`` on one line (a line break ends a generated demonstration)."""
    return " ".join(str(text).split())


@dataclass(frozen=True)
class FewShotPrompts:
    """``str.format`` templates of the prompts, public: the header (fields ``{domain}``,
    ``{classes}``), a shot and the open example of a generation prompt (``{label}``, ``{text}``),
    and a shot and the query of a classification prompt. A class is scored as the continuation
    ``" " + label`` of a classification prompt.

    Raises:
        ValueError: for a template with a field it may not use.
    """

    header: str = HEADER
    generation_shot: str = GENERATION_SHOT
    generation_open: str = GENERATION_OPEN
    classification_shot: str = CLASSIFICATION_SHOT
    classification_open: str = CLASSIFICATION_OPEN

    def __post_init__(self) -> None:
        for name, allowed in _FIELDS.items():
            used = {field for _, field, _, _ in string.Formatter().parse(getattr(self, name)) if field is not None}
            if not used <= allowed:
                raise ValueError(f"prompt {name!r} may use only {sorted(allowed)}, got {sorted(used - allowed)}")

    def _header(self, schema: CorpusSchema) -> str:
        return self.header.format(domain=schema.domain, classes=", ".join(schema.classes))

    def generation(self, schema: CorpusSchema, label: str, shots: Sequence[str]) -> str:
        """The prompt of one group: its examples of ``label`` as shots, then an open example."""
        written = "".join(self.generation_shot.format(label=label, text=one_line(text)) for text in shots)
        return self._header(schema) + written + self.generation_open.format(label=label)

    def classification_prefix(self, schema: CorpusSchema, demonstrations: pd.DataFrame) -> str:
        """The header and the demonstrations (``label``/``text`` rows), in their order."""
        shots = (
            self.classification_shot.format(label=label, text=one_line(text))
            for label, text in zip(demonstrations[LABEL], demonstrations[TEXT], strict=True)
        )
        return self._header(schema) + "".join(shots)

    def query(self, text: str) -> str:
        """The classification query of one text."""
        return self.classification_open.format(text=one_line(text))


@dataclass(frozen=True)
class Slot:
    """One demonstration to write: its class and its index among the class's demonstrations."""

    label: str
    index: int


@dataclass(frozen=True)
class Groups:
    """Private: the shots of every group of every demonstration (in memory only, never saved).

    Attributes:
        slots: The demonstrations to write.
        shots: For each slot, for each of its groups, the texts of its shots (at most the
            setting's number; fewer when fewer examples fell into the group).
    """

    slots: tuple[Slot, ...]
    shots: tuple[tuple[tuple[str, ...], ...], ...]


def partition(
    table: pd.DataFrame,
    classes: Sequence[str],
    demonstrations_per_class: int,
    groups: int,
    shots: int,
    rng: np.random.Generator,
) -> Groups:
    """Draw every private example into one group, independently of the others.

    Each example of class c falls into one of the ``demonstrations_per_class x groups`` groups
    of c, uniformly at random, and gets a random priority; a group's prompt takes its
    ``shots`` examples of highest priority. Adding or removing an example therefore changes
    the prompt of its own group only (every other example keeps its group and priority):
    that is what bounds the vote's sensitivity (``accounting.vote_sensitivity``).

    Args:
        table: The private examples (``label``, ``text``).
        classes: The declared classes (public), in order.
        demonstrations_per_class: Demonstrations written per class.
        groups: Groups per demonstration.
        shots: Most examples in a group's prompt.
        rng: The draws.
    """
    per_class = demonstrations_per_class * groups
    draws = rng.random((len(table), 2))  # a row's two draws, whatever the rows after it
    drawn = pd.DataFrame(
        {
            LABEL: table[LABEL].to_numpy(),
            TEXT: table[TEXT].to_numpy(),
            "group": np.minimum((draws[:, 0] * per_class).astype(np.int64), per_class - 1),
            "priority": draws[:, 1],
        }
    )
    kept = drawn.sort_values("priority", kind="stable").groupby([LABEL, "group"], sort=False).head(shots)
    members: dict[tuple[str, int], tuple[str, ...]] = {
        (str(label), int(group)): tuple(texts)
        for (label, group), texts in kept.groupby([LABEL, "group"], sort=False)[TEXT]
    }
    slots = tuple(Slot(label, index) for label in classes for index in range(demonstrations_per_class))
    return Groups(
        slots=slots,
        shots=tuple(
            tuple(members.get((slot.label, slot.index * groups + group), ()) for group in range(groups))
            for slot in slots
        ),
    )


@dataclass(frozen=True)
class VoteSettings:
    """How the groups vote on each token.

    Attributes:
        max_new_tokens: Tokens of a demonstration at most (every one is charged: the stop is
            data-dependent).
        top_k: Candidates per token: the public top-k of a zero-shot prompt (no private example)
            continued by the demonstration so far; ``None``: the whole vocabulary.
        sigma: Standard deviation of the noise on each vote count.
        sensitivity: L2 sensitivity of one token's votes, all demonstrations together.
    """

    max_new_tokens: int
    top_k: int | None
    sigma: float
    sensitivity: float


def _slot_matrix(row_slot: np.ndarray, slots: int) -> np.ndarray:
    """(slots, rows) 0/1 matrix summing each slot's rows."""
    matrix = np.zeros((slots, len(row_slot)), dtype=np.float64)
    matrix[row_slot, np.arange(len(row_slot))] = 1.0
    return matrix


def token_votes(group_logprobs: np.ndarray, row_slot: np.ndarray, candidates: np.ndarray | None) -> np.ndarray:
    """The exact votes of one token: for each slot, the sum of its groups' next-token
    probabilities, over its candidates (shape (slots, k)) or the whole vocabulary (None:
    (slots, vocabulary)). Each group adds a non-negative vector of total mass at most 1."""
    slots = int(row_slot.max()) + 1
    probabilities = np.exp(group_logprobs.astype(np.float64))
    if candidates is not None:
        probabilities = np.take_along_axis(probabilities, candidates[row_slot], axis=1)
    return _slot_matrix(row_slot, slots) @ probabilities


def generate_demonstrations(
    model: TokenLogprobModel,
    groups: Groups,
    prompts: FewShotPrompts,
    schema: CorpusSchema,
    vote: VoteSettings,
    noise: Callable[[int], NoiseSource],
) -> pd.DataFrame:
    """Write one demonstration per slot, token by token, each token the noisy argmax of its
    groups' votes (``token_votes``); a demonstration ends at a line break or the end of text.

    Args:
        model: The language model, read through its next-token log-probabilities.
        groups: The private groups (``partition``).
        prompts: The prompt templates.
        schema: The public corpus schema (class names, domain).
        vote: Token budget, candidates, noise and sensitivity.
        noise: ``t -> the noise source of token t`` (t from 1): every token's votes, all
            slots together, are one Gaussian release, which the caller has recorded.

    Returns:
        The demonstrations, ``label``/``text`` rows in slot order: a DP release.
    """
    slots = groups.slots
    texts = [
        prompts.generation(schema, slot.label, shots)
        for slot, shot_groups in zip(slots, groups.shots, strict=True)
        for shots in shot_groups
    ]
    row_slot = np.repeat(np.arange(len(slots)), [len(shot_groups) for shot_groups in groups.shots])
    public = [prompts.generation(schema, slot.label, ()) for slot in slots] if vote.top_k is not None else []
    decoding = model.start_decoding(texts + public, vote.max_new_tokens)
    written: list[list[int]] = [[] for _ in slots]
    done = np.zeros(len(slots), dtype=bool)
    with progress_bar(vote.max_new_tokens, "DP token votes", "token") as bar:
        for t in range(1, vote.max_new_tokens + 1):
            logprobs = decoding.logprobs()
            candidates = None
            if vote.top_k is not None:
                candidates = np.argsort(-logprobs[len(texts) :], axis=1, kind="stable")[:, : vote.top_k]
            votes = token_votes(logprobs[: len(texts)], row_slot, candidates)
            noisy = noise(t).add(votes, vote.sigma, vote.sensitivity)
            if candidates is not None:
                # A candidate the public prompt gave no probability (a server that named fewer
                # than top_k tokens) is no candidate: which ids fill its place depends on the groups.
                public_logprobs = np.take_along_axis(logprobs[len(texts) :], candidates, axis=1)
                noisy = np.where(np.isfinite(public_logprobs), noisy, -np.inf)
            chosen = noisy.argmax(axis=1)
            if candidates is not None:
                chosen = candidates[np.arange(len(slots)), chosen]
            for slot in np.flatnonzero(~done):
                if model.ends_line(int(chosen[slot])):
                    done[slot] = True
                else:
                    written[slot].append(int(chosen[slot]))
            bar.update(1)
            if done.all() or t == vote.max_new_tokens:
                break
            decoding.extend(np.concatenate([chosen[row_slot], chosen]) if public else chosen[row_slot])
    return pd.DataFrame(
        {LABEL: [slot.label for slot in slots], TEXT: [model.decode_tokens(tokens).strip() for tokens in written]}
    )


def real_demonstrations(
    table: pd.DataFrame, classes: Sequence[str], per_class: int, rng: np.random.Generator
) -> pd.DataFrame:
    """``per_class`` real examples of each class drawn at random: the non-private baseline
    (epsilon infinity), never a release."""
    chosen = [table[table[LABEL] == label].sample(n=per_class, random_state=rng) for label in classes]
    return pd.concat(chosen, ignore_index=True)[[LABEL, TEXT]]


def classify(
    model: TokenLogprobModel,
    prompts: FewShotPrompts,
    schema: CorpusSchema,
    demonstrations: pd.DataFrame,
    texts: Sequence[str],
) -> np.ndarray:
    """The class of each text whose name is the likeliest continuation of its classification
    prompt (``demonstrations`` first, none for zero-shot)."""
    scores = model.continuation_logprobs(
        prompts.classification_prefix(schema, demonstrations),
        [prompts.query(text) for text in texts],
        [f" {label}" for label in schema.classes],
    )
    return np.asarray(schema.classes, dtype=object)[scores.argmax(axis=1)]


def accuracy(
    model: TokenLogprobModel,
    prompts: FewShotPrompts,
    schema: CorpusSchema,
    demonstrations: pd.DataFrame,
    held_out: pd.DataFrame,
) -> float:
    """Share of ``held_out`` texts (``label``/``text``) that ``classify`` gets right."""
    predicted = classify(model, prompts, schema, demonstrations, held_out[TEXT].tolist())
    return float(np.mean(predicted == held_out[LABEL].to_numpy(dtype=object)))

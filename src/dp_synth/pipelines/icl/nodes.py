"""Node functions of DP few-shot demonstrations (``kedro run --pipeline=icl``): the task, the
privacy plan, the private groups, the token votes and the evaluation. The admission and the
privacy report are the PE jobs' (``pipelines.pe.nodes``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dp_synth.modalities.text import fewshot
from dp_synth.modalities.text.fewshot_settings import FewShotSettings
from dp_synth.modalities.text.llm import Secret, TokenLogprobModel, build_generator, require_token_logprobs
from dp_synth.modalities.text.modality import CorpusSchema, parse_corpus_schema
from dp_synth.modalities.text.settings import backend_options
from dp_synth.pe.accounting import GaussianPrivacyPlan, PrivacyConfigError, Stream, calibrate, vote_sensitivity
from dp_synth.pe.engine import OnInvalid
from dp_synth.pe.ledger import TOKEN_VOTE, Entry, LedgerRun, PrivacyLedger
from dp_synth.pipelines.pe.nodes import load_private_rows, log_privacy_guarantee, resolve_delta
from dp_synth.pipelines.text.nodes import corpus_row_check, held_out_sample

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FewShotTask:
    """Public: what the job writes and with which model.

    Attributes:
        schema: The corpus schema (classes, domain, public row count).
        model: The language model, with next-token log-probabilities.
        prompts: The prompt templates.
    """

    schema: CorpusSchema
    model: TokenLogprobModel
    prompts: fewshot.FewShotPrompts


def parse_settings(parameters: Mapping[str, Any] | None) -> FewShotSettings:
    """Validate ``params:icl`` into the job's settings.

    Raises:
        SettingsError: naming each bad key (``icl.<section>.<key>``).
    """
    return FewShotSettings.parse(parameters, "icl")


def build_task(schema_json: Mapping[str, Any], settings: FewShotSettings, api_key: Secret | None) -> FewShotTask:
    """The public task, before any data is read: a missing model, or one without next-token
    log-probabilities, stops the run at once saying how to configure one."""
    generator = settings.generator
    model = require_token_logprobs(build_generator(generator.backend, backend_options(generator), api_key))
    model.check_token_logprobs(full_vocabulary=settings.fewshot.vocabulary == "full")
    logger.info("DP few-shot model: %s", model.description)
    return FewShotTask(parse_corpus_schema(schema_json), model, fewshot.FewShotPrompts(**settings.prompts.model_dump()))


def plan_privacy(task: FewShotTask, settings: FewShotSettings) -> GaussianPrivacyPlan:
    """Calibrate the noise of every token vote before any private example is read.

    The run releases ``max_new_tokens`` votes (all demonstrations' together, each of L2
    sensitivity ``accounting.vote_sensitivity``), composed exactly in Gaussian DP; the stop is
    data-dependent, so every token up to the maximum is charged.

    Raises:
        PrivacyConfigError: for ``dp.delta: auto`` without a public row count, or groups that
            the public row count cannot fill (each class's share of it, if the rows were equally
            shared, must fill every group's shots).
    """
    dp, shots = settings.dp, settings.fewshot
    schema = task.schema
    needed = len(schema.classes) * shots.demonstrations_per_class * shots.groups * shots.shots
    if schema.public_row_count is not None and schema.public_row_count < needed:
        raise PrivacyConfigError(
            f"icl.fewshot asks for {needed} private examples ({len(schema.classes)} classes x "
            f"{shots.demonstrations_per_class} demonstrations x {shots.groups} groups x {shots.shots} shots) but the "
            f"schema declares {schema.public_row_count} rows: lower groups, shots or demonstrations_per_class"
        )
    rows_per_unit = dp.max_rows_per_unit if schema.privacy_unit else 1
    plan = calibrate(
        epsilon=dp.epsilon,
        delta=resolve_delta(dp, schema.public_row_count),
        iterations=shots.max_new_tokens,
        seed=dp.seed,
        neighbouring=dp.neighbouring,
        rows_per_unit=rows_per_unit,
        privacy_unit=schema.privacy_unit,
        release_sensitivity=vote_sensitivity(dp.neighbouring, rows_per_unit),
    )
    log_privacy_guarantee(plan, dp)
    logger.info(
        "Privacy plan: (epsilon=%.4g, delta=%.3g): %d token votes of L2 sensitivity %.4g with sigma=%.4g; noise %s",
        plan.epsilon,
        plan.delta,
        plan.releases,
        plan.count_sensitivity,
        plan.sigma,
        "seeded" if dp.seed is not None else "secure (OpenDP's discrete Gaussian)",
    )
    return plan


def load_private_examples(private_raw: Any, task: FewShotTask, on_invalid: OnInvalid) -> pd.DataFrame:
    """The private examples fitted to the public schema (the text job's check of a corpus)."""
    return load_private_rows(private_raw, corpus_row_check(task.schema), on_invalid)


def partition_groups(
    private_table: pd.DataFrame, task: FewShotTask, plan: GaussianPrivacyPlan, settings: FewShotSettings
) -> fewshot.Groups:
    """Draw every admitted private example into one group of its class (``fewshot.partition``).
    Private: kept in memory, never saved or logged."""
    shots = settings.fewshot
    return fewshot.partition(
        private_table,
        task.schema.classes,
        shots.demonstrations_per_class,
        shots.groups,
        shots.shots,
        plan.noise_generator(0, Stream.FEWSHOT_GROUPS),
    )


def generate_demonstrations(
    groups: fewshot.Groups,
    task: FewShotTask,
    plan: GaussianPrivacyPlan,
    ledger_run: LedgerRun,
    settings: FewShotSettings,
) -> pd.DataFrame:
    """Release the demonstrations (``fewshot.generate_demonstrations``).

    Every token vote the plan pays for is recorded in the privacy ledger, one release per token
    t (``TOKEN_VOTE`` at iteration t), in one transaction before the first noise is drawn: the
    stop is data-dependent, so all ``max_new_tokens`` are charged whether drawn or not.
    """
    PrivacyLedger(ledger_run.path).record(
        ledger_run, [Entry(TOKEN_VOTE, plan.count_sensitivity, plan.sigma, t) for t in range(1, plan.iterations + 1)]
    )
    shots = settings.fewshot
    vote = fewshot.VoteSettings(
        max_new_tokens=shots.max_new_tokens,
        top_k=shots.top_k if shots.vocabulary == "public_top_k" else None,
        sigma=plan.sigma,
        sensitivity=plan.count_sensitivity,
    )
    released = fewshot.generate_demonstrations(
        task.model, groups, task.prompts, task.schema, vote, lambda t: plan.noise_source(t, Stream.HISTOGRAM_NOISE)
    )
    logger.info("Released %d DP demonstrations:\n%s", len(released), released.to_string(index=False))
    return released


def load_reference_examples(reference_raw: pd.DataFrame, task: FewShotTask, settings: FewShotSettings) -> pd.DataFrame:
    """The held-out texts the evaluation classifies: the text job's ``held_out_sample`` of
    ``evaluation.reference_rows`` (null: all)."""
    evaluation = settings.evaluation
    return held_out_sample(
        reference_raw, task.schema, settings.dp.on_invalid, evaluation.reference_rows, evaluation.seed
    )


def evaluate_demonstrations(
    synthetic_data: pd.DataFrame, reference_table: pd.DataFrame, task: FewShotTask
) -> dict[str, Any]:
    """Accuracy of the model on the held-out texts with the released demonstrations in its
    prompt, and with none (zero-shot): a diagnostic, not a DP release."""
    with_demonstrations = fewshot.accuracy(task.model, task.prompts, task.schema, synthetic_data, reference_table)
    zero_shot = fewshot.accuracy(task.model, task.prompts, task.schema, synthetic_data.iloc[:0], reference_table)
    logger.info(
        "Accuracy on %d held-out texts: %.4f with the DP demonstrations, %.4f zero-shot",
        len(reference_table),
        with_demonstrations,
        zero_shot,
    )
    return {
        "rows": len(reference_table),
        "demonstrations": len(synthetic_data),
        "accuracy": with_demonstrations,
        "zero_shot_accuracy": zero_shot,
    }

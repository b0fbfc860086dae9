"""Node functions specific to tabular PE: the public schema, private data, evaluation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from dp_synth.evaluation.plots import plot_association_difference, plot_marginals
from dp_synth.evaluation.tabular import (
    MODELS,
    classifier_utility,
    distance_to_closest_record,
    marginal_tvd,
    wasserstein_kway,
)
from dp_synth.modalities.tabular.modality import TabularModality
from dp_synth.modalities.tabular.plan import GeneratorPlan
from dp_synth.modalities.tabular.relations import parse_relations
from dp_synth.modalities.tabular.schema import (
    TableSchema,
    conform,
    describe_problems,
    parse_schema,
    problem_counts,
    spark_columns,
)
from dp_synth.modalities.tabular.settings import EvaluationScope, TabularSettings, evaluation_scope
from dp_synth.modalities.tabular.statistics import TabularStatistics
from dp_synth.pe.engine import OnInvalid, PrivateRows, seeded_sample
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pe.selection import allocate_class_sizes
from dp_synth.pe.settings import SettingsError
from dp_synth.pipelines.pe.nodes import RowCheck, load_private_rows

logger = logging.getLogger(__name__)


def build_modality(schema_json: Mapping[str, Any], settings: TabularSettings) -> TabularModality:
    """Build the tabular modality from the declared public schema and the generator settings
    (``TabularGenerator``); the report's columns are checked here, before any data is read."""
    schema = parse_schema(schema_json)
    unknown = [name for name in settings.evaluation.plot_columns or () if name not in schema.names]
    if unknown:
        raise SettingsError(
            f"tabular.evaluation.plot_columns names columns the schema lacks: {unknown}; null: the first six"
        )
    generator = settings.generator
    return TabularModality(
        schema=schema,
        relations=parse_relations(schema_json.get("relations"), schema),
        schedule=VariationSchedule(**generator.variation.model_dump()),
        **generator.model_dump(exclude={"variation"}),
    )


def row_check(schema: TableSchema) -> RowCheck:
    """The tabular check of rows against the public schema (``schema.conform``)."""
    return RowCheck(
        problems=partial(problem_counts, schema=schema),
        describe=partial(describe_problems, schema=schema),
        conform=partial(conform, schema=schema),
        columns=spark_columns(schema),
    )


def load_private_data(private_raw: Any, modality: TabularModality, on_invalid: OnInvalid) -> pd.DataFrame | PrivateRows:
    """The private table fitted to the public schema with canonical dtypes, invalid values
    handled as ``on_invalid`` says (``pe_nodes.load_private_rows``: a frame, or on Spark rows
    left in the executors).

    Raises:
        SchemaError: for missing or extra columns; with ``stop``, for missing, non-numeric or
            fractional values, or values outside the declared domain (named by column, kind and
            count).
    """
    return load_private_rows(private_raw, row_check(modality.schema), on_invalid)


def load_reference_data(
    reference_raw: pd.DataFrame, modality: TabularModality, settings: TabularSettings
) -> pd.DataFrame:
    """The held-out evaluation table fitted to the public schema as the private one is
    (``dp.on_invalid``; its values are never shown either), without the privacy unit's column
    if it has one (the held-out rows are evaluated row by row)."""
    if modality.privacy_unit in reference_raw.columns:
        reference_raw = reference_raw.drop(columns=[modality.privacy_unit])
    return conform(reference_raw, modality.schema, on_invalid=settings.dp.on_invalid)


def _utility(
    train: pd.DataFrame, test: pd.DataFrame, schema: TableSchema, seed: int, models: tuple[str, ...] = MODELS
) -> dict[str, dict[str, float]]:
    return {model: classifier_utility(train, test, schema, model, seed) for model in models}


def _release_warnings(plan: GeneratorPlan, statistics: TabularStatistics | Mapping[str, Any]) -> list[str]:
    """What would make the release better, as the run logged it and tagged it in MLflow: the
    plan's weak releases (``plan_warnings``) and the declared bounds far wider than the located
    ones (``bounds_warnings``). Public: read from public quantities and DP releases only.

    Args:
        plan: The adaptive plan.
        statistics: The generator's DP statistics (``{}`` when the plan pays for none).
    """
    loose = statistics.warnings if isinstance(statistics, TabularStatistics) else ()
    return [*plan.warnings, *loose]


def evaluate_synthetic_data(
    synthetic_data: pd.DataFrame,
    private_table: pd.DataFrame | PrivateRows,
    reference_table: pd.DataFrame,
    modality: TabularModality,
    settings: TabularSettings,
    plan: GeneratorPlan,
    statistics: TabularStatistics | Mapping[str, Any],
) -> dict[str, Any]:
    """Fidelity, utility and privacy-sanity metrics of the released table, and what would make
    it better (``_release_warnings``).

    Diagnostics for the data owner, not DP releases: they read the private and the held-out
    table. Only aggregates are returned. Each of the three tables is read through a seeded
    sample of at most ``evaluation.sample_rows`` rows (the private one drawn where the engine
    holds it), so the cost does not grow with the tables; ``rows`` is the whole release's.
    ``evaluation.level`` bounds the rest (``evaluation_scope``): ``quick`` (the default) costs
    less than the synthesis, ``full`` measures every learner on every sampled row. The report's
    ``evaluation`` entry says which level ran, with which learners, on how many rows.

    - fidelity: k-way TVD (k = 1, 2, 3; numeric columns binned on public bounds) and k-way
      Wasserstein distance (exact transport on subsamples) against the private table;
    - utility: accuracy and macro-F1 on the held-out table of the learners (gradient boosting
      and logistic regression; at ``full`` a random forest too) trained on the synthetic table,
      on the private table (upper bound) and on uniformly random rows of the same size (lower
      bound), each beside the accuracy of always predicting its training table's majority class;
    - privacy: distance to the closest private record of synthetic rows (on a seeded subsample
      of ``dcr_rows``) against that of held-out real rows, and the share of exact copies;
    - warnings: ``_release_warnings``, public.
    """
    scope = evaluation_scope(settings.evaluation)
    with threadpool_limits(limits=scope.threads):
        report = _evaluate(synthetic_data, private_table, reference_table, modality, settings.evaluation.seed, scope)
    report["warnings"] = _release_warnings(plan, statistics)
    logger.info(
        "Evaluation (%s) of %d released rows: gradient boosting accuracy %.4f, macro-F1 %.4f (real %.4f, %.4f; "
        "random %.4f, %.4f; always the real majority class %.4f), TVD 1/2/3-way %.4f/%.4f/%.4f",
        scope.level,
        report["rows"],
        *(
            report["utility"][table]["gbm"][metric]
            for table in ("synthetic", "real_train", "uniform_random")
            for metric in ("accuracy", "macro_f1")
        ),
        report["utility"]["real_train"]["gbm"]["majority_accuracy"],
        *(report["fidelity"][f"tvd_{k}way"] for k in (1, 2, 3)),
    )
    if scope.level == "quick":
        logger.info("Quick evaluation: tabular.evaluation.level=full trains every learner on every sampled row")
    return report


def _evaluate(
    synthetic_data: pd.DataFrame,
    private_table: pd.DataFrame | PrivateRows,
    reference_table: pd.DataFrame,
    modality: TabularModality,
    seed: int,
    scope: EvaluationScope,
) -> dict[str, Any]:
    """``evaluate_synthetic_data``'s metrics within ``scope`` (the warnings aside)."""
    schema = modality.schema
    rng = np.random.default_rng(seed)
    released_rows = len(synthetic_data)
    synthetic_data, private_table, reference_table = (
        seeded_sample(table, scope.sample_rows, seed) for table in (synthetic_data, private_table, reference_table)
    )
    if scope.learner_rows is None:  # full: every sampled row (today's draws, so its figures stay the same)
        train_rows = len(synthetic_data)
        synthetic_train, private_train, test = synthetic_data, private_table, reference_table
    else:
        train_rows = min(scope.learner_rows, len(synthetic_data))
        synthetic_train, private_train, test = (
            seeded_sample(table, scope.learner_rows, seed + 1)
            for table in (synthetic_data, private_table, reference_table)
        )
    uniform_rows = modality.random_population(allocate_class_sizes(train_rows, dict.fromkeys(schema.classes, 1.0)), rng)
    dcr_synthetic, dcr_reference = (
        _subsample(table, scope.dcr_rows, rng) for table in (synthetic_data, reference_table)
    )
    return {
        "rows": released_rows,
        "evaluation": {
            "level": scope.level,
            "learners": list(scope.models),
            "rows": {
                "private": len(private_table),
                "synthetic": len(synthetic_data),
                "reference": len(reference_table),
                "learner_train": len(synthetic_train),
                "learner_test": len(test),
                "dcr": len(dcr_synthetic),
            },
        },
        "fidelity": {
            **{
                f"tvd_{k}way": marginal_tvd(private_table, synthetic_data, schema, k, max_subsets=scope.tvd_subsets)
                for k in (1, 2, 3)
            },
            **{
                f"wasserstein_{k}way": wasserstein_kway(
                    private_table,
                    synthetic_data,
                    schema,
                    k,
                    scope.wasserstein_rows,
                    max_subsets=scope.wasserstein_subsets,
                    rng=seed,
                )
                for k in (1, 2, 3)
            },
        },
        "utility": {
            "synthetic": _utility(synthetic_train, test, schema, seed, scope.models),
            "real_train": _utility(private_train, test, schema, seed, scope.models),
            "uniform_random": _utility(uniform_rows, test, schema, seed, scope.models),
        },
        "privacy": distance_to_closest_record(dcr_synthetic, private_table, dcr_reference, schema),
    }


def _subsample(table: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    return table if len(table) <= rows else table.iloc[rng.choice(len(table), size=rows, replace=False)]


def plot_reports(
    synthetic_data: pd.DataFrame,
    reference_table: pd.DataFrame,
    modality: TabularModality,
    settings: TabularSettings,
) -> tuple[Figure, Figure]:
    """Figures: held-out vs synthetic marginals, association difference (the metrics per
    iteration are the shared ``pe_nodes.plot_iterations``)."""
    schema = modality.schema
    columns = settings.evaluation.plot_columns or schema.names[:6]
    figures = (
        plot_marginals(reference_table, synthetic_data, schema, columns),
        plot_association_difference(reference_table, synthetic_data, schema),
    )
    plt.close("all")  # the catalog saves the figures; pyplot must not keep them alive
    return figures

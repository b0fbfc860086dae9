"""The tabular job's settings (``tabular:`` in ``conf/base/parameters_tabular.yml``), defaults in code.

The parameter file shows what users change; the generator's settings below are research knobs
whose defaults were measured on the benchmark suite (``docs/algorithm.md`` gives the reasons).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dp_synth.evaluation.tabular import DEFAULT_MAX_SUBSETS, MODELS
from dp_synth.modalities.tabular.dependency_tree import PairEstimate
from dp_synth.modalities.tabular.estimation import MarginalEstimate
from dp_synth.modalities.tabular.modality import Structure
from dp_synth.modalities.tabular.plan import GeneratorPlan, plan_generator
from dp_synth.modalities.tabular.schema import parse_schema
from dp_synth.modalities.tabular.tree_statistics import PairSplit
from dp_synth.pe.settings import (
    EvolutionSettings,
    JobSettings,
    PositiveInt,
    PrivacySettings,
    Probability,
    ReleaseSettings,
    ScheduleSettings,
    Section,
)


class TabularPrivacy(PrivacySettings):
    """``tabular.dp``: 80% of the budget (in mu squared) pays for the generator's statistics."""

    generator_share: Probability = 0.8


Auto = Literal["auto"]
"""Chosen by the adaptive plan (``plan.plan_generator``) from public quantities."""


class TabularEvolution(EvolutionSettings):
    """``tabular.pe``: one histogram over N candidates (``auto``: the plan's), in k-means bins of
    about 50."""

    iterations: PositiveInt = 1
    population_size: PositiveInt | Auto = "auto"
    sampling_iterations: Annotated[int, Field(ge=0)] = 2
    variations_per_survivor: PositiveInt = 3
    candidates_per_bin: PositiveInt = 50


class TabularRelease(ReleaseSettings):
    """``tabular.release``: a row drawn again is varied once, so the release repeats rows about
    as rarely as real tables do (on Adult 93% of the rows are distinct, against 55% without)."""

    vary: bool | Literal["repeats", "distinct"] = "repeats"


class TabularVariation(ScheduleSettings):
    """``tabular.generator.variation``: the share of cells redrawn, r(t)."""

    r0: float = 0.3
    rf: float = 0.05
    gamma: Annotated[float, Field(gt=0.0)] = 0.5


class TabularGenerator(Section):
    """``tabular.generator``: how the DP statistics shape the random and variation APIs.

    ``auto`` (the default of the cells, the structure, the cliques and the sub-cells): chosen
    by the adaptive plan from public quantities (``plan.plan_generator``).

    Attributes:
        variation: r(t), the share of cells redrawn (Tab-PE: 0.5, 0.01, 0.2).
        categorical_weight: One-hot scale in the embedding (numeric columns span [0, 1]).
        marginal_bins: Equal-width cells of a wide numeric column's DP marginal.
        marginal_estimate: A binned numeric column's noisy marginal: ``denoise`` (empty groups
            of cells stay empty, the rest posterior means) or ``clip`` (negative cells set to 0).
        local_numeric_share: A numeric column whose DP marginal keeps every cell at or below this
            share of a class moves by small steps; one with a spike is redrawn from its marginal.
        structure: ``tree``: features drawn along a DP dependency tree within each class;
            ``independent``: each from its one-way marginal.
        pair_cells: Coarse cells of a numeric column in the tree's pair tables.
        pair_split: How those cells group a numeric column's fine cells: ``mass``, ``width`` or
            ``auto`` (mass for a column with a spike, width otherwise).
        pair_estimate: How a noisy pair table becomes a conditional: ``posterior`` or ``suppress``.
        interactions: At most this many disjoint triples of columns measured and drawn jointly
            when their joint law departs from the tree's by more than their table's noise.
        refine_cells: Sub-cells per bin of a binned numeric column whose counts are released too
            (1: off, values uniform in their bin).
        locate_bounds: Spend a share of the statistics locating where each binned numeric
            column's data lies inside its declared bounds, and use that range (``bounds``).
    """

    variation: TabularVariation = TabularVariation()
    categorical_weight: Annotated[float, Field(gt=0.0)] = 1.0 / 3.0
    marginal_bins: Annotated[int, Field(ge=2)] | Auto = "auto"
    marginal_estimate: MarginalEstimate = "denoise"
    local_numeric_share: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    structure: Structure | Auto = "auto"
    pair_cells: Annotated[int, Field(ge=2)] | Auto = "auto"
    pair_split: PairSplit = "auto"
    pair_estimate: PairEstimate = "posterior"
    interactions: Annotated[int, Field(ge=0)] | Auto = "auto"
    refine_cells: PositiveInt | Auto = "auto"
    locate_bounds: bool | Auto = "auto"


EvaluationLevel = Literal["quick", "full"]
"""``quick``: diagnostics bounded to cost less than the synthesis (``evaluation_scope``);
``full``: every learner on every sampled row."""

QUICK_LEARNER_ROWS = 5000
"""``quick``: rows each learner trains on (per training table) and held-out rows it is scored on.
On Adult a gradient-boosting model trained on 5,000 synthetic rows scores within about half a
point of one trained on all 32,561 (0.845 against 0.850) in a third of the time."""
QUICK_MODELS = ("gbm", "logreg")
"""``quick``: the fast learners; the random forest (the slowest, 100 trees) runs at ``full`` only."""
QUICK_SUBSETS = 50
"""``quick``: subsets of columns averaged per marginal order k (TVD and Wasserstein), a sample
fixed by the schema alone, so every table scored on one schema meets the same subsets."""
QUICK_WASSERSTEIN_SUBSETS = 20
QUICK_WASSERSTEIN_ROWS = 250
QUICK_DCR_ROWS = 2000


class EvaluationScope(BaseModel):
    """What one evaluation level measures, resolved from ``tabular.evaluation`` (pure).

    Attributes:
        level: ``quick`` or ``full``.
        models: The learners trained (``evaluation.tabular.MODELS``).
        sample_rows: Each table (private, held-out, released) is read through a seeded sample
            of at most this many rows: the fidelity and privacy metrics compare these samples.
        learner_rows: Rows each learner trains on, and held-out rows it is scored on
            (``None``: all the sampled rows).
        tvd_subsets: Subsets of columns averaged per order of the TVD (``None``: all of them).
        wasserstein_rows: Rows per table in each exact optimal-transport problem.
        wasserstein_subsets: Subsets of columns averaged per order of the Wasserstein distance.
        dcr_rows: Synthetic and held-out rows checked against the private sample.
        threads: Threads of the learners' and the nearest-neighbour search's native code
            (``None``: the libraries' own choice).
    """

    model_config = ConfigDict(frozen=True)

    level: EvaluationLevel
    models: tuple[str, ...]
    sample_rows: PositiveInt
    learner_rows: PositiveInt | None
    tvd_subsets: PositiveInt | None
    wasserstein_rows: PositiveInt
    wasserstein_subsets: PositiveInt
    dcr_rows: PositiveInt
    threads: PositiveInt | None


class TabularEvaluation(Section):
    """``tabular.evaluation``: diagnostics for the data owner, not DP releases.

    Attributes:
        level: ``quick`` (the default): learners trained on seeded samples of at most 5,000 rows
            and scored on as many held-out rows, the fast learners only, 50 subsets of columns
            per marginal order, one thread: it costs less than the synthesis. ``full``: every
            learner on every sampled row, every subset (``evaluation_scope``).
        seed: Seed of the classifiers and subsamples.
        sample_rows: The private, held-out and released tables are each evaluated on a seeded
            sample of at most this many rows, so the evaluation's cost does not grow with them.
        dcr_rows: Rows subsampled for the distance-to-closest-record check (``quick``: at most
            2,000).
        wasserstein_sample_size: Rows per table in each exact optimal-transport problem
            (``quick``: at most 250).
        plot_columns: Columns of the marginals figure; ``None``: the schema's first six.
    """

    level: EvaluationLevel = "quick"
    seed: int = 0
    sample_rows: PositiveInt = 50_000
    dcr_rows: PositiveInt = 5000
    wasserstein_sample_size: PositiveInt = 500
    plot_columns: list[str] | None = None


def evaluation_scope(evaluation: TabularEvaluation) -> EvaluationScope:
    """The bounds of the evaluation that ``evaluation.level`` asks for: at ``full`` today's
    evaluation (every learner, every sampled row, the settings' sizes); at ``quick`` the fast
    learners on at most ``QUICK_LEARNER_ROWS`` rows, a fixed sample of column subsets, at most
    ``QUICK_DCR_ROWS`` and ``QUICK_WASSERSTEIN_ROWS`` rows (never more than the settings say)
    and one thread: small samples gain nothing from more, and lose most when other work shares
    the cores (OpenMP threads then wait on each other)."""
    if evaluation.level == "full":
        return EvaluationScope(
            level="full",
            models=MODELS,
            sample_rows=evaluation.sample_rows,
            learner_rows=None,
            tvd_subsets=None,
            wasserstein_rows=evaluation.wasserstein_sample_size,
            wasserstein_subsets=DEFAULT_MAX_SUBSETS,
            dcr_rows=evaluation.dcr_rows,
            threads=None,
        )
    return EvaluationScope(
        level="quick",
        models=QUICK_MODELS,
        sample_rows=evaluation.sample_rows,
        learner_rows=min(QUICK_LEARNER_ROWS, evaluation.sample_rows),
        tvd_subsets=QUICK_SUBSETS,
        wasserstein_rows=min(QUICK_WASSERSTEIN_ROWS, evaluation.wasserstein_sample_size),
        wasserstein_subsets=QUICK_WASSERSTEIN_SUBSETS,
        dcr_rows=min(QUICK_DCR_ROWS, evaluation.dcr_rows),
        threads=1,
    )


class TabularSettings(JobSettings):
    """Every setting of the tabular job."""

    dp: TabularPrivacy = TabularPrivacy()
    pe: TabularEvolution = TabularEvolution()
    release: TabularRelease = TabularRelease()
    generator: TabularGenerator = TabularGenerator()
    evaluation: TabularEvaluation = TabularEvaluation()


logger = logging.getLogger(__name__)

FIXED_PLAN = GeneratorPlan(
    marginal_bins=32,
    structure="tree",
    pair_cells=12,
    interactions=1,
    refine_cells=32,
    population_size=30_000,
    locate_bounds=True,
    rows_per_class=float("nan"),
    warnings=(),
)
"""What ``auto`` means when the schema declares no row count: the defaults measured on Adult."""
PLANNED_GENERATOR = ("marginal_bins", "structure", "pair_cells", "interactions", "refine_cells", "locate_bounds")


def plan_settings(settings: TabularSettings, schema_json: Mapping[str, Any]) -> tuple[TabularSettings, GeneratorPlan]:
    """Resolve every ``auto`` setting by the adaptive plan (public quantities only); a setting
    given explicitly is kept. Logs what the plan predicts will be noise, and what would help.

    Returns:
        The settings in force and the plan (``FIXED_PLAN`` without a declared row count).
    """
    schema = parse_schema(schema_json)
    plan = plan_generator(
        schema,
        epsilon=settings.dp.epsilon,
        delta=settings.dp.delta,
        iterations=settings.pe.iterations,
        class_count_releases=int(settings.dp.class_proportions == "dp"),
        generator_share=settings.dp.generator_share,
        candidates_per_bin=settings.pe.candidates_per_bin,
        neighbouring=settings.dp.neighbouring,
        rows_per_unit=settings.dp.max_rows_per_unit if schema.privacy_unit else 1,
        locate_bounds=None if settings.generator.locate_bounds == "auto" else settings.generator.locate_bounds,
    )
    if plan is None:
        logger.info("No public_row_count in the schema: 'auto' settings take the fixed defaults")
        plan = FIXED_PLAN
    for warning in plan.warnings:
        logger.warning(
            "Weak release predicted: %s. A larger epsilon, fewer or coarser columns, or a declared larger "
            "population would help.",
            warning,
        )
    generator = {name: getattr(plan, name) for name in PLANNED_GENERATOR if getattr(settings.generator, name) == "auto"}
    pe = {"population_size": plan.population_size} if settings.pe.population_size == "auto" else {}
    return settings.model_copy(
        update={
            "generator": settings.generator.model_copy(update=generator),
            "pe": settings.pe.model_copy(update=pe),
        }
    ), plan

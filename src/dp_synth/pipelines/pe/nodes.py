"""Node functions of the Private Evolution loop, shared by every modality.

Each function is pure (data and parameters in, data out) but for one side effect: every
Gaussian release is first recorded in the privacy ledger (``pe.ledger``), which a node must do
itself, before drawing the noise, for a crash never to leave a release used but unrecorded.
Randomness comes from the privacy plan's streams: seeded numpy generators, or, when no seed is
set, OpenDP's secure discrete Gaussian for the noise (``pe.noise``) and fresh OS entropy for the
other draws.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dp_synth.evaluation.plots import plot_iteration_metrics
from dp_synth.pe import histogram as dp_hist
from dp_synth.pe.accounting import (
    GaussianPrivacyPlan,
    PrivacyConfigError,
    Stream,
    calibrate,
    composed_mu,
    default_delta,
    statistics_sensitivity_factor,
)
from dp_synth.pe.contribution import bounded_contributions
from dp_synth.pe.engine import (
    EmbeddedRows,
    EmbeddingLayout,
    FrameLayout,
    OnInvalid,
    PrivateRows,
    as_passed,
    check_engine,
    private_rows,
)
from dp_synth.pe.interfaces import Modality, UsesStatistics
from dp_synth.pe.ledger import (
    CLASS_COUNTS,
    HISTOGRAM,
    STATISTICS,
    Admission,
    Entry,
    LedgerError,
    LedgerRun,
    PrivacyLedger,
    declared_dataset_id,
)
from dp_synth.pe.noise import Noise, as_source
from dp_synth.pe.release import ReleaseBasis
from dp_synth.pe.report import PERSON_ROWS, privacy_report
from dp_synth.pe.schema import SchemaError
from dp_synth.pe.selection import allocate_class_sizes, sample_proportional, top_by_count
from dp_synth.pe.settings import (
    EvolutionSettings,
    JobSettings,
    PrivacySettings,
    PrivateJobSettings,
    ReleaseSettings,
    SettingsError,
)

logger = logging.getLogger(__name__)

_CLASS_COUNT_ITERATION = 0
PUBLIC_ITERATION_METRICS = (
    "iteration",
    "epsilon_spent",
    "histogram_mass_above_threshold",
    "histogram_nonzero_candidates",
    "distinct_survivors",
)
"""The per-iteration metrics that are public (the budget, post-processing of the DP histogram);
the modality's quality diagnostic, against held-out data, is not."""


def parse_settings(
    parameters: Mapping[str, Any] | None,
    *,
    model: type[JobSettings],
    job: str,
    iterations: int,
    iterations_from_environment: bool,
) -> JobSettings:
    """Validate the job's parameters into its typed settings.

    Args:
        parameters: The job's parameters (``params:<job>``: the files merged with ``--params``).
        model: The job's settings model.
        job: The job's name, its key in ``parameters``.
        iterations: T of the DAG, read when the pipelines were built.
        iterations_from_environment: T came from ``DP_SYNTH_ITERATIONS``, which then wins over
            ``pe.iterations``.

    Raises:
        SettingsError: for an unknown key (named with the nearest valid one), a bad value, or a
            ``pe.iterations`` that differs from the DAG's T (``--params`` cannot change a DAG).
    """
    settings = model.parse(parameters, job)
    if settings.pe.iterations != iterations and not iterations_from_environment:
        raise SettingsError(
            f"{job}.pe.iterations is {settings.pe.iterations} but the pipeline was built with T={iterations}: "
            f"T shapes the DAG, so --params cannot change it; set it in conf/local/parameters_{job}.yml "
            "or with the DP_SYNTH_ITERATIONS environment variable"
        )
    return settings.model_copy(update={"pe": settings.pe.model_copy(update={"iterations": iterations})})


def _check_population_settings(pe: EvolutionSettings, classes: int) -> None:
    if pe.population_size < classes:
        raise SettingsError(
            f"pe.population_size N={pe.population_size} is smaller than the number of classes ({classes})"
        )


def _check_release_settings(modality: Modality, release: ReleaseSettings, class_proportions: str) -> None:
    rows = release.rows
    if rows == "auto":
        if class_proportions == "public" and modality.public_row_count is None:
            raise SettingsError(
                "release.rows is 'auto' but there is neither a public row count in the schema nor a "
                "DP class count to estimate it from; set release.rows to a number"
            )
    elif rows < len(modality.classes):
        raise SettingsError(
            f"release.rows must be 'auto' or an integer >= the number of classes ({len(modality.classes)}), got {rows!r}"
        )


def calibrate_privacy(modality: Modality, settings: JobSettings) -> GaussianPrivacyPlan:
    """Calibrate the noise of the whole run before any private data is touched.

    Checks what the settings' types cannot: the settings against the schema's public facts
    (declared row count and class proportions) and the generator (whether it uses statistics).

    Args:
        modality: Supplies the public row count and class proportions, if declared.
        settings: The job's settings; ``pe.iterations`` is the DAG's T, so the budget pays for
            exactly the histograms the run releases.

    Returns:
        The calibrated plan.
    """
    dp = settings.dp
    _check_population_settings(settings.pe, len(modality.classes))
    delta = resolve_delta(dp, modality.public_row_count)
    if dp.class_proportions == "public" and modality.public_class_proportions is None:
        raise PrivacyConfigError("dp.class_proportions is 'public' but the schema declares no class_proportions")
    _check_release_settings(modality, settings.release, dp.class_proportions)
    uses_statistics = dp.generator_share > 0
    if uses_statistics and not isinstance(modality, UsesStatistics):
        raise PrivacyConfigError("dp.generator_share must be 0: this generator uses no DP statistics")
    plan = calibrate(
        epsilon=dp.epsilon,
        delta=delta,
        iterations=settings.pe.iterations,
        preliminary_releases=1 if dp.class_proportions == "dp" else 0,
        seed=dp.seed,
        statistics_sensitivity=modality.statistics_sensitivity if uses_statistics else 0.0,
        statistics_share=dp.generator_share,
        neighbouring=dp.neighbouring,
        rows_per_unit=dp.max_rows_per_unit if modality.privacy_unit else 1,
        privacy_unit=modality.privacy_unit,
    )
    log_privacy_guarantee(plan, dp)
    logger.info(
        "Privacy plan: (epsilon=%.4g, delta=%.3g): %d histogram/count releases with sigma=%.4g%s; noise %s",
        plan.epsilon,
        plan.delta,
        plan.releases,
        plan.sigma,
        f", generator statistics with sigma={plan.statistics_sigma:.4g}" if uses_statistics else "",
        "seeded" if dp.seed is not None else "secure (OpenDP's discrete Gaussian)",
    )
    return plan


def resolve_delta(dp: PrivacySettings, public_row_count: int | None) -> float:
    """``dp.delta``, or for ``"auto"`` 1/(n ln n) with the schema's public row count n.

    Raises:
        PrivacyConfigError: for ``"auto"`` without a public row count.
    """
    if dp.delta != "auto":
        return dp.delta
    if public_row_count is None:
        raise PrivacyConfigError(
            "dp.delta is 'auto' (1/(n ln n)) but the schema declares no public_row_count; "
            "declare the row count as public in the schema or set dp.delta to a number"
        )
    return default_delta(public_row_count)


def log_privacy_guarantee(plan: GaussianPrivacyPlan, dp: PrivacySettings) -> None:
    """Say what one protected record is (``_log_privacy_unit``) and warn of a seeded run."""
    _log_privacy_unit(plan, dp.max_rows_per_unit)
    if dp.seed is not None:
        logger.warning(
            "dp.seed is set: this run's noise is reproducible, so the run is NOT differentially private "
            "against anyone who knows the seed. Use seeds for experiments only; the privacy report, MLflow and "
            "the privacy ledger mark the run as not private"
        )


def measure_generator_statistics(
    modality: Modality, private_table: pd.DataFrame, plan: GaussianPrivacyPlan, ledger_run: LedgerRun
) -> Any:
    """Release the generator's DP statistics of the private data, if the plan pays for them.

    This is the plan's first release: Gaussian mechanisms with the modality's stated
    sensitivities (grown for the neighbouring relation) whose mu squared adds up to the plan's
    ``statistics_sensitivity`` over ``statistics_sigma``. That total is recorded in the ledger
    before any noise is drawn, then replaced by each release the generator made.
    Returns ``{}`` when the plan has none.

    Raises:
        LedgerError: if the generator's releases spent more than the plan granted them.
    """
    if plan.statistics_sensitivity == 0 or not isinstance(modality, UsesStatistics):
        return {}
    ledger = PrivacyLedger(ledger_run.path)
    granted = Entry(STATISTICS, plan.statistics_sensitivity, plan.statistics_sigma)
    ledger.record(ledger_run, [granted])
    statistics = modality.measure_statistics(
        private_table, plan.statistics_sigma, plan.noise_source(0, Stream.STATISTICS_NOISE)
    )
    factor = statistics_sensitivity_factor(plan.neighbouring, plan.rows_per_unit)
    made = [
        Entry(release.name, release.sensitivity * factor, release.sigma)
        for release in modality.with_statistics(statistics).statistics_releases()
    ]
    ledger.record(ledger_run, made, replacing=granted)
    spent, granted_mu = composed_mu((e.sensitivity, e.sigma) for e in made), granted.sensitivity / granted.sigma
    if spent > granted_mu * (1.0 + 1e-9):
        raise LedgerError(
            f"the generator's statistics spent mu={spent:.6g}, more than the mu={granted_mu:.6g} the plan granted "
            "them (the ledger records what they spent)"
        )
    return statistics


def apply_generator_statistics(modality: Modality, generator_statistics: Any) -> Modality:
    """The generator the loop uses: the public one, given the released statistics if any."""
    if generator_statistics and isinstance(modality, UsesStatistics):
        return modality.with_statistics(generator_statistics)
    return modality


def _log_privacy_unit(plan: GaussianPrivacyPlan, max_rows_per_unit: int) -> None:
    """Say what one protected record is: a declared person's rows, or a row."""
    if plan.privacy_unit is not None:
        logger.info(
            "Privacy unit %r: each unit's rows are read up to %d (drawn at random), and every release's "
            "sensitivity is stated for a whole unit",
            plan.privacy_unit,
            plan.rows_per_unit,
        )
        return
    if max_rows_per_unit != 1:
        logger.warning("dp.max_rows_per_unit is ignored: the schema declares no privacy_unit")
    logger.info(
        "The guarantee is per row: a person with several rows is protected less (%s). Declare the schema's "
        "privacy_unit to protect each person's rows together",
        ", ".join(f"{rows} rows: epsilon {plan.group_epsilon(rows):.3g}" for rows in PERSON_ROWS),
    )


def check_resumed_plan(plan: GaussianPrivacyPlan, settings: JobSettings) -> None:
    """Refuse to resume a run whose saved privacy plan paid for a different number of iterations.

    Raises:
        PrivacyConfigError: if the saved plan's T differs from the DAG's T.
    """
    iterations = settings.pe.iterations
    if plan.iterations != iterations:
        raise PrivacyConfigError(
            f"the saved privacy plan pays for T={plan.iterations} iterations but this DAG has T={iterations}; "
            "resume with the DP_SYNTH_ITERATIONS of the run you are resuming"
        )
    logger.info(
        "Resuming with the saved privacy plan (epsilon=%.4g, delta=%.3g, sigma=%.4g, T=%d): histograms "
        "already released count in every epsilon reported",
        plan.epsilon,
        plan.delta,
        plan.sigma,
        plan.iterations,
    )


def admit_run(
    schema: Mapping[str, Any],
    private_data: Any,
    modality: Any,
    plan: GaussianPrivacyPlan,
    settings: PrivateJobSettings,
    *,
    job: str,
    load: LoadPrivateData,
) -> tuple[LedgerRun, GaussianPrivacyPlan, Any]:
    """Open the run in the privacy ledger: the job reads its private data only through this node.

    In this order: the run's whole plan must fit in the dataset's lifetime budget (kept in the
    ledger; ``dp.lifetime_epsilon`` sets or lowers it), composed exactly with every release the
    ledger holds on the dataset and the whole plan of every run in progress, before a private
    row is read; then the private rows are fitted to the public schema by ``load`` as
    ``dp.on_invalid`` says; only then is the run opened, reserving its whole plan in one
    transaction. A run refused by either check writes nothing: no ledger run, no plan (saved as
    this node's output), no version folder. The dataset is the schema's declared
    ``dataset_id``, else the catalog entry ``<job>.private_data``; a keyed fingerprint of the
    data's content is kept in the local ledger only.

    Args:
        schema: The public schema (its ``dataset_id``).
        private_data: The private data as the catalog read it (a pandas or Spark DataFrame).
        modality: The public object ``load`` fits the rows to (a PE job's modality).
        plan: The calibrated privacy plan.
        settings: The job's settings (``engine``, ``dp``).
        job: The job's name.
        load: The job's loader (``load_private_rows``).

    Returns:
        The run's handle on the ledger and its plan (both saved: a resumed run goes on with
        them), and the private rows fitted to the schema, where the engine holds them.

    Raises:
        ValueError: if the private data is not held by the configured ``engine``.
        LedgerError: if the run would take the dataset past its lifetime budget (checked before
            the private data is read), its setting would raise the stored budget, or its data is
            known under another dataset_id (``dp.distinct_dataset``).
        SchemaError: with ``dp.on_invalid: stop``, for private values that do not fit the schema.
    """
    check_engine(private_rows(private_data), settings.engine, f"{job}.private_data")
    dp = settings.dp
    admission = Admission(
        dataset_id=declared_dataset_id(schema, f"{job}.private_data"),
        plan=plan,
        job=job,
        lifetime_epsilon=dp.lifetime_epsilon,
        lifetime_delta=None if dp.lifetime_delta == "auto" else dp.lifetime_delta,
        distinct_dataset=dp.distinct_dataset,
    )
    ledger = PrivacyLedger(dp.ledger, dp.ledger_id)
    ledger.check_admission(admission)  # before the private data is even read
    private_table = load(bounded_rows(private_data, plan), modality, dp.on_invalid)  # before anything is written
    run = ledger.open_run(admission, fingerprint=ledger.fingerprint(private_data))
    logger.info("Privacy ledger %s: run %s admitted on dataset %r", dp.ledger, run.run_id, run.dataset_id)
    return run, plan, private_table


def bounded_rows(private_data: Any, plan: GaussianPrivacyPlan) -> Any:
    """The private rows the run reads: with a privacy unit, at most ``plan.rows_per_unit`` rows
    of each unit, drawn at random, and without the unit column (``contribution``)."""
    if plan.privacy_unit is None:
        return private_data
    try:
        return bounded_contributions(
            private_data, plan.privacy_unit, plan.rows_per_unit, plan.noise_generator(0, Stream.CONTRIBUTION)
        )
    except KeyError:
        raise SchemaError(
            f"the schema's privacy_unit {plan.privacy_unit!r} is not a column of the private data"
        ) from None


def admit_resumed_run(
    ledger_run: LedgerRun,
    private_data: Any,
    modality: Modality,
    plan: GaussianPrivacyPlan,
    settings: JobSettings,
    *,
    resume_from: str,
    iteration: int,
    load: LoadPrivateData,
) -> Any:
    """Let a resumed run go on only forward, on the run the ledger knows, with its own data.

    Args:
        ledger_run: The saved handle of the run being resumed.
        private_data: The private data as the catalog read it.
        modality: The public modality ``load`` fits the rows to.
        plan: The saved privacy plan.
        settings: The job's settings (``dp.ledger``, ``dp.on_invalid``, T).
        resume_from: The saved dataset the run resumes from (for messages).
        iteration: t of that dataset: every histogram up to t is saved, none after it may be.
        load: The job's loader (``load_private_rows``).

    Returns:
        The private rows fitted to the schema (as ``admit_run``), once the resume is allowed.

    Raises:
        LedgerError: for a finished run, a resume point before the run's last recorded histogram
            (it would release it again) or after it, private data or a plan that are not the
            run's, or remaining releases that would pass the lifetime budget.
    """
    check_resumed_plan(plan, settings)
    if ledger_run.path != settings.dp.ledger:
        raise LedgerError(
            f"run {ledger_run.run_id} is recorded in the ledger {ledger_run.path!r}: resume with that dp.ledger"
        )
    ledger = PrivacyLedger(ledger_run.path, settings.dp.ledger_id)
    state = ledger.state(ledger_run.run_id)
    if state is None:
        raise LedgerError(f"the ledger {ledger_run.path!r} has no run {ledger_run.run_id}: it cannot be resumed")
    if state.finished:
        raise LedgerError(
            f"run {ledger_run.run_id} finished: its release and privacy report are saved, so there is nothing to "
            "resume. A new release needs a fresh run (without DP_SYNTH_RESUME), paid from the lifetime budget"
        )
    if (state.sigma, state.iterations) != (plan.sigma, plan.iterations):
        raise LedgerError(f"the saved privacy plan is not that of run {ledger_run.run_id}; start a fresh run")
    if state.last_histogram != iteration:
        raise LedgerError(_backward_resume_message(ledger_run.run_id, resume_from, iteration, state.last_histogram))
    ledger.resume_run(ledger_run)
    if state.fingerprint != ledger.fingerprint(private_data):
        raise LedgerError(f"the private data is not the data run {ledger_run.run_id} released on; start a fresh run")
    return load(bounded_rows(private_data, plan), modality, settings.dp.on_invalid)


def _backward_resume_message(run_id: str, resume_from: str, iteration: int, last: int) -> str:
    if last > iteration:
        return (
            f"cannot resume run {run_id} from {resume_from}: the ledger records its histogram of iteration {last}, "
            f"and resuming before it would release it again; resume from iter_{last:03d}.histogram or "
            f"iter_{last:03d}.survivors (whichever is saved), or start a fresh run"
        )
    return (
        f"cannot resume run {run_id} from {resume_from}: the ledger records its histograms up to iteration {last} "
        "only, so the saved datasets are not this run's; start a fresh run"
    )


def report_privacy(ledger_run: LedgerRun, plan: GaussianPrivacyPlan, synthetic_data: Any) -> dict[str, Any]:
    """The run's privacy report, saved beside its release, and the end of the run in the ledger.

    Every release the ledger recorded for this run (a resumed run's included), what it measured,
    its sensitivity and sigma; the neighbouring relation, the accountant, the run's epsilon and
    delta, whether the noise was seeded, and the dataset's lifetime spend. Public quantities
    only: it may travel with the synthetic data. The run is then finished: it cannot be resumed.

    Args:
        ledger_run: The run's handle on the ledger.
        plan: The run's privacy plan.
        synthetic_data: The release; an input so that the run finishes only once it is saved.
    """
    del synthetic_data
    ledger = PrivacyLedger(ledger_run.path)
    report = privacy_report(plan, ledger.entries(ledger_run.run_id), ledger.lifetime(ledger_run), ledger_run.run_id)
    ledger.finish(ledger_run)
    logger.info("Privacy report:\n%s", report)
    return report.to_dict()


@dataclass(frozen=True)
class _EmbedRows:
    """Embed one partition of private rows (a function the Spark engine ships to executors)."""

    modality: Modality

    def __call__(self, partition: pd.DataFrame) -> EmbeddedRows:
        return EmbeddedRows(self.modality.embed(partition), partition[self.modality.label_column].to_numpy())


def embed_private_data(modality: Modality, private_table: Any, settings: JobSettings) -> EmbeddedRows | PrivateRows:
    """Embed the private rows with their labels, where the engine holds them (never saved).

    On Spark the rows are embedded in the executors, lazily; with more than one iteration the
    embeddings are kept there (memory, then disk) for every histogram to read.
    """
    embedded = private_rows(private_table).map_partitions(_EmbedRows(modality), EmbeddingLayout())
    return as_passed(embedded.persisted() if settings.pe.iterations > 1 else embedded)


def summarise_reference(modality: Modality, reference_table: pd.DataFrame) -> Any:
    """Precompute the held-out statistics of the per-iteration quality diagnostic."""
    return modality.summarise_reference(reference_table)


def _class_counts(classes: tuple[str, ...], label_column: str, partition: pd.DataFrame) -> np.ndarray:
    """The exact count of each class among a partition's rows."""
    labels = partition[label_column].to_numpy()
    return np.array([np.count_nonzero(labels == label) for label in classes], dtype=np.int64)


@dataclass(frozen=True)
class RowCheck:
    """How a job fits its private rows to its public schema (``load_private_rows``).

    Every function reads one batch of rows at a time (the Spark engine runs them in its
    executors) and names a problem by its column, kind and count, never by a value.

    Attributes:
        problems: A batch -> the count of each kind of problem in it, an array of a fixed
            shape (a sum over rows). Raises ``SchemaError`` for missing columns.
        describe: The problems' total counts -> a message naming each column, kind and count;
            ``""`` when there is none.
        conform: ``(batch, on_invalid=...)`` -> the batch fitted to the schema; with ``clamp``
            or ``drop`` each record is changed or dropped on its own values alone.
        columns: The fitted rows' columns as a Spark DDL string.
    """

    problems: Callable[[pd.DataFrame], np.ndarray]
    describe: Callable[[np.ndarray], str]
    conform: Callable[..., pd.DataFrame]
    columns: str


NOT_DP_STOP = (
    "dp.on_invalid is 'stop', and whether a run stops depends on the private data: stopping is not differentially "
    "private. No private value is shown. With 'clamp' or 'drop' such rows are fitted or dropped inside the DP "
    "guarantee (docs/algorithm.md#input-validation)"
)


def load_private_rows(private_raw: Any, check: RowCheck, on_invalid: OnInvalid) -> pd.DataFrame | PrivateRows:
    """The private rows fitted to the public schema, where the engine holds them.

    With ``clamp`` or ``drop`` (``engine.ON_INVALID``) nothing is learnt here: the pandas engine
    fits the whole table at once, the Spark engine fits each batch in the executors when it is
    read. With ``stop`` every row is checked first (on Spark, the problems of each partition are
    counted in the executors and added up on the driver), and the run stops on any problem.
    A declared class with no rows is no error: the DP class count (or the histogram) says so.

    Args:
        private_raw: The private data as the catalog read it (a pandas or Spark DataFrame).
        check: The job's check of its rows.
        on_invalid: ``dp.on_invalid``.

    Raises:
        SchemaError: for missing or extra columns (on Spark, an error in an executor is
            ``spark_engine.SparkTaskError`` with the same message); with ``stop``, for invalid
            values, naming each column, kind of problem and count.
    """
    rows = private_rows(private_raw)
    if on_invalid == "stop":
        problems = check.describe(rows.total(check.problems))
        if problems:
            raise SchemaError(f"the private data does not fit its declared schema: {problems}. {NOT_DP_STOP}")
        on_invalid = "drop"  # every row fits: nothing to drop, and no second check
    return as_passed(
        rows.map_partitions(partial(_conform_batch, check.conform, on_invalid), FrameLayout(check.columns))
    )


def _conform_batch(conform: Callable[..., pd.DataFrame], on_invalid: OnInvalid, batch: Any) -> Any:
    return conform(batch, on_invalid=on_invalid)


LoadPrivateData = Callable[[Any, Any, OnInvalid], Any]
"""A job's loader: ``(private_data, public_modality, on_invalid) -> private_table`` (the public
object is a PE job's modality, or what another job fits its rows to)."""


def measure_class_distribution(
    modality: Modality, private_table: Any, plan: GaussianPrivacyPlan, ledger_run: LedgerRun
) -> dict[str, float]:
    """Return a weight per class: a DP count of private rows, or the declared public proportions.

    With a DP count, each class count gets Gaussian noise of the plan's sigma (secure and
    discrete unless seeded, ``noise``; sensitivity 1 under add/remove:
    one record is in one class; see ``accounting.count_sensitivity``); this is the plan's
    preliminary release, recorded in the ledger before the noise is drawn. Negative noisy counts
    are kept as they are (they are a release); allocation raises them to a floor.
    """
    if plan.preliminary_releases == 0:
        public = modality.public_class_proportions or {}
        return {label: float(public[label]) for label in modality.classes}
    PrivacyLedger(ledger_run.path).record(ledger_run, [Entry(CLASS_COUNTS, plan.count_sensitivity, plan.sigma)])
    count_classes = partial(_class_counts, tuple(modality.classes), modality.label_column)
    counts = private_rows(private_table).total(count_classes).astype(np.float64)
    noise = plan.noise_source(_CLASS_COUNT_ITERATION, Stream.HISTOGRAM_NOISE)
    noisy = noisy_class_counts(counts, plan.sigma, plan.count_sensitivity, noise)
    return dict(zip(modality.classes, noisy.tolist(), strict=True))


def noisy_class_counts(counts: np.ndarray, sigma: float, sensitivity: float, noise: Noise) -> np.ndarray:
    """The Gaussian mechanism of the DP class count: ``counts`` plus Gaussian noise of ``sigma``
    per value, secure unless ``noise`` is a bare numpy generator (``measure_class_distribution``;
    ``make audit`` measures it)."""
    return as_source(noise).add(counts, sigma, sensitivity)


def allocate_population(class_weights: Mapping[str, float], settings: JobSettings) -> dict[str, int]:
    """Split the population size N across classes in proportion to the class weights."""
    return allocate_class_sizes(settings.pe.population_size, class_weights)


def generate_initial_population(
    modality: Modality, class_sizes: Mapping[str, int], plan: GaussianPrivacyPlan
) -> pd.DataFrame:
    """Random API: the first population, drawn from public knowledge only."""
    return modality.random_population(class_sizes, plan.noise_generator(0, Stream.GENERATION))


def embed_population(modality: Modality, population: pd.DataFrame) -> np.ndarray:
    """Embed the candidates of one iteration."""
    return modality.embed(population)


def dp_histogram(
    modality: Modality,
    candidates: pd.DataFrame,
    candidate_embeddings: np.ndarray,
    private_embeddings: EmbeddedRows | PrivateRows,
    plan: GaussianPrivacyPlan,
    settings: JobSettings,
    ledger_run: LedgerRun,
    *,
    iteration: int,
) -> dp_hist.NoisyHistogram:
    """Release iteration ``iteration``'s noisy nearest-neighbour histogram (one Gaussian release,
    recorded in the ledger before its noise is drawn: a run records each t once, so it can never
    release it twice).

    The release is over bins of candidates, whose count is then shared equally among their
    members (see ``histogram.spread_over_groups``): with ``pe.merge_duplicates`` identical
    candidates are one bin, and with ``pe.candidates_per_bin`` > 1 the (distinct) candidates of
    each class are grouped by k-means into bins of about that many (``histogram.cluster_bins``),
    so each bin collects enough votes to rise above the noise. The votes are summed over the
    partitions of the private rows where the engine holds them (``histogram.PartitionVotes``).
    """
    labels = candidates[modality.label_column].to_numpy()
    first, group = (
        dp_hist.distinct_candidates(candidate_embeddings, labels)
        if settings.pe.merge_duplicates
        else (np.arange(len(labels)), np.arange(len(labels)))
    )
    bins = np.arange(len(first))
    if settings.pe.candidates_per_bin > 1:
        seed = int(plan.noise_generator(iteration, Stream.BINNING).integers(2**31 - 1))
        bins = dp_hist.cluster_bins(candidate_embeddings[first], labels[first], settings.pe.candidates_per_bin, seed)
    votes = private_rows(private_embeddings).total(
        dp_hist.PartitionVotes(candidate_embeddings[first], labels[first], settings.pe.nearest_neighbours, bins)
    )
    PrivacyLedger(ledger_run.path).record(ledger_run, [Entry(HISTOGRAM, plan.count_sensitivity, plan.sigma, iteration)])
    noise = plan.noise_source(iteration, Stream.HISTOGRAM_NOISE)
    released = dp_hist.release(votes, plan.sigma, settings.pe.threshold, noise, plan.count_sensitivity)
    return dp_hist.spread_over_groups(released, bins[group])


def resample(
    modality: Modality,
    candidates: pd.DataFrame,
    histogram: dp_hist.NoisyHistogram,
    class_sizes: Mapping[str, int],
    plan: GaussianPrivacyPlan,
    settings: JobSettings,
    *,
    iteration: int,
) -> pd.DataFrame:
    """Select the survivors of an iteration (post-processing of the released histogram).

    During the first ``pe.sampling_iterations`` iterations, survivors are drawn proportionally
    to the thresholded histogram; afterwards the top ``class_sizes[c]`` by noisy count are kept.
    The survivors keep the candidates' index, so repeated draws are visible.
    """
    labels = candidates[modality.label_column].to_numpy()
    if iteration <= settings.pe.sampling_iterations:
        chosen = sample_proportional(
            histogram.thresholded, labels, class_sizes, plan.noise_generator(iteration, Stream.SELECTION)
        )
    else:
        chosen = top_by_count(histogram.noisy, labels, class_sizes)
    return candidates.iloc[chosen]


def vary(
    modality: Modality,
    survivors: pd.DataFrame,
    plan: GaussianPrivacyPlan,
    settings: JobSettings,
    *,
    iteration: int,
) -> pd.DataFrame:
    """Variation API: the next population.

    During the sampling iterations: one variation of each survivor, survivors dropped.
    Afterwards: the survivors plus ``pe.variations_per_survivor`` variations of each.
    """
    rng = plan.noise_generator(iteration, Stream.GENERATION)
    survivors = survivors.reset_index(drop=True)
    if iteration <= settings.pe.sampling_iterations:
        return modality.vary(survivors, iteration, plan.iterations, rng)
    copies = pd.concat([survivors] * settings.pe.variations_per_survivor, ignore_index=True)
    return pd.concat([survivors, modality.vary(copies, iteration, plan.iterations, rng)], ignore_index=True)


def summarise_iteration(
    modality: Modality,
    survivors: pd.DataFrame,
    histogram: dp_hist.NoisyHistogram,
    reference_summary: Any,
    plan: GaussianPrivacyPlan,
    *,
    iteration: int,
) -> dict[str, float]:
    """Per-iteration metrics: budget spent, histogram statistics (post-processing of the DP
    release) and the modality's cheap quality diagnostic against held-out data (not DP)."""
    public = (
        float(iteration),
        plan.epsilon_spent(iteration),
        float(histogram.thresholded.sum()),
        float(np.count_nonzero(histogram.thresholded)),
        float(survivors.index.nunique()),
    )
    metrics = dict(zip(PUBLIC_ITERATION_METRICS, public, strict=True))
    quality = modality.quality(survivors, reference_summary)
    metrics.update(quality)
    logger.info(
        "PE iteration %d/%d: epsilon spent %.4f, %d distinct survivors, %s",
        iteration,
        plan.iterations,
        metrics["epsilon_spent"],
        metrics["distinct_survivors"],
        ", ".join(f"{name} {value:.4f}" for name, value in quality.items()),
    )
    return metrics


def prepare_release(
    modality: Modality,
    candidates: pd.DataFrame,
    histogram: dp_hist.NoisyHistogram,
    class_weights: Mapping[str, float],
    plan: GaussianPrivacyPlan,
) -> ReleaseBasis:
    """What the release draws from: the last population weighted by its released
    (thresholded) histogram, re-weighted by the modality to its DP statistics if it uses any.
    Post-processing: it reads only DP releases and public knowledge."""
    weights = histogram.thresholded
    if isinstance(modality, UsesStatistics):
        weights = modality.reweight(candidates, weights)
    return ReleaseBasis(modality, candidates, weights, class_weights, plan)


def release_synthetic_data(basis: ReleaseBasis, settings: JobSettings) -> pd.DataFrame:
    """Release ``release.rows`` rows (``auto``: the public row count, else the DP class
    counts' total) from the release basis, at no extra privacy cost (``ReleaseBasis.draw``)."""
    return basis.draw(basis.rows(settings.release.rows), settings.release.vary, basis.release_rng(0))


def collect_iteration_metrics(*metrics: Mapping[str, float]) -> pd.DataFrame:
    """One row per iteration, in order, for reports."""
    return pd.DataFrame(list(metrics)).sort_values("iteration", ignore_index=True)


def plot_iterations(
    iteration_metrics: pd.DataFrame,
    histogram: dp_hist.NoisyHistogram,
    plan: GaussianPrivacyPlan,
    settings: JobSettings,
) -> Figure:
    """Metrics per iteration (epsilon spent, histogram statistics, the quality diagnostic) or, for
    a single iteration, what its released histogram did (``plot_iteration_metrics``).

    Args:
        iteration_metrics: One row per iteration measured.
        histogram: The last iteration's released histogram (a DP release).
        plan: The privacy plan: its sigma is the histogram's noise.
        settings: The job's settings: ``pe.threshold`` is the histogram's threshold H.
    """
    figure = plot_iteration_metrics(iteration_metrics, histogram, plan.sigma, settings.pe.threshold)
    plt.close("all")  # the catalog saves the figure; pyplot must not keep it alive
    return figure

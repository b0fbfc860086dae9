"""The per-mechanism privacy audit (``make audit``): every Gaussian release of the default Adult
plan, in isolation, at the noise that plan gives it, measured against the mu it claims.

The plan is the one ``kedro run --pipelines=tabular`` makes on Adult with
``conf/base/parameters_tabular.yml`` (the pipeline's own nodes up to ``calibrated_plan``, public
inputs only). For each of its releases (the DP class count, the nearest-neighbour histogram and
every release of the generator's statistics), D is Adult's training table and D' = D plus one
canary record chosen so that the release's noiseless output moves by the full L2 sensitivity
the plan claims for it (``canary_shift`` says by how much it did). The mechanism's own code
counts on D and on D' (once: the counts are deterministic) and adds its noise many times to
each (the project's release function, on a stack of copies of the counts: one trial per row).

A Gaussian mechanism of sensitivity Delta and noise sigma is exactly mu-GDP with
mu = Delta / sigma (Dong, Roth and Su, 2019): telling D from D' is as hard as telling N(0, 1)
from N(mu, 1), and the most powerful test reads the output's projection on the direction of the
canary's change. That projection is N(0, s^2) on D and N(shift, s^2) on D', so its two samples
estimate mu = (mean' - mean) / pooled standard deviation, with a normal-theory interval
(Nasr et al., 2023, audit DP-SGD the same way). The estimate passes when it lies within
``TOLERANCE`` of the claimed mu = sensitivity / sigma; trials are chosen so that the interval's
half-width is ``precision`` of the claim. The same audit with the noise halved
(``accounting.noise_scaled_for_audit``, test only) must fail every mechanism: its mu doubles.

The earlier releases a statistic is measured against are fixed inputs of its sensitivity
analysis (the claim must hold whatever they are), so the audit chooses them: the dependence
scores' one-way prediction is D's exact coarse one-way counts; the interaction scores' model is
D's own rows, so every triple's score moves by exactly 1; the tree's edges are the maximum
spanning tree of D's exact scores (d - 1 edges, the claim's worst case); the cliques are the
first disjoint triples; the histogram's candidates are a random population of the default size.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from scipy.stats import norm

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ADULT = PROJECT_ROOT / "data" / "01_raw" / "adult"
PARAMETERS = PROJECT_ROOT / "conf" / "base" / "parameters_tabular.yml"

TOLERANCE = 0.25
"""An estimate passes within this share of the claimed mu."""
PRECISION = 0.1
"""Trials are chosen so that the estimate's interval has this half-width, as a share of the claim."""
CONFIDENCE = 0.95
BATCH_VALUES = 2_000_000
"""Noise values drawn per call of a release function (trials x the release's size)."""
TASK_TRIALS = 200_000
"""Trials per task handed to a worker."""

Arrays = tuple[np.ndarray, ...]
ReleaseFunction = Callable[[Arrays, Any, np.random.Generator], Arrays]
"""The mechanism's noise: counts (stacked, one trial per row), its ``Release`` and a generator,
to the noisy arrays."""


@dataclass(frozen=True)
class DefaultRun:
    """The public part of the default Adult run: what it plans before it reads a private row.

    Attributes:
        settings: The settings in force (every ``auto`` resolved by the adaptive plan).
        modality: The tabular modality they build (no statistics yet).
        plan: The calibrated privacy plan.
        schema: Adult's public schema, as declared.
    """

    settings: Any
    modality: Any
    plan: Any
    schema: dict


def default_run(parameters: dict | None = None, schema: dict | None = None) -> DefaultRun:
    """Run the tabular pipeline's own nodes up to ``calibrated_plan`` on Adult's schema with the
    default parameters (``conf/base/parameters_tabular.yml``), or these."""
    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    from dp_synth.modalities.tabular.settings import TabularSettings
    from dp_synth.pipelines.tabular.pipeline import NAMESPACE, create_pipeline

    class Kept(MemoryDataset):
        """A dataset the runner keeps after its last reader."""

        def _release(self) -> None:
            pass

    parameters = parameters or yaml.safe_load(PARAMETERS.read_text())[NAMESPACE]
    schema = schema or json.loads((ADULT / "schema.json").read_text())
    catalog = DataCatalog()
    catalog[f"params:{NAMESPACE}"] = parameters
    catalog[f"{NAMESPACE}.schema"] = schema
    for name in ("settings", "public_modality", "calibrated_plan"):
        catalog[f"{NAMESPACE}.{name}"] = Kept()
    iterations = TabularSettings.parse(parameters, NAMESPACE).pe.iterations
    SequentialRunner().run(create_pipeline(iterations).to_outputs(f"{NAMESPACE}.calibrated_plan"), catalog)
    settings, modality, plan = (
        catalog[f"{NAMESPACE}.{name}"].load() for name in ("settings", "public_modality", "calibrated_plan")
    )
    if plan.neighbouring != "add_remove":
        raise ValueError("the audit's canaries are added records: it audits the add/remove relation")
    return DefaultRun(settings, modality, plan, schema)


def plan_releases(run: DefaultRun, noise_factor: float = 1.0) -> dict[str, Any]:
    """Every Gaussian release of the run, named as the privacy report names them, with the noise
    and sensitivity its plan gives it; ``noise_factor`` != 1 calibrates the plan inside
    ``accounting.noise_scaled_for_audit`` (test only)."""
    from dp_synth.modalities.tabular.statistics import Release
    from dp_synth.pe.accounting import noise_scaled_for_audit
    from dp_synth.pe.ledger import CLASS_COUNTS, HISTOGRAM, STATISTICS
    from dp_synth.pipelines.pe.nodes import calibrate_privacy

    plan = run.plan
    if noise_factor != 1.0:
        with noise_scaled_for_audit(noise_factor):
            plan = calibrate_privacy(run.modality, run.settings)
    counts = Release(plan.sigma, plan.count_sensitivity)
    releases = {CLASS_COUNTS: counts} if plan.preliminary_releases else {}
    releases[HISTOGRAM] = counts
    if plan.statistics_sensitivity > 0:
        for name, release in run.modality.release_plan(plan.statistics_sigma).items():
            releases[f"{STATISTICS}: {name}"] = release
    return releases


@dataclass(frozen=True)
class Mechanism:
    """One release of the plan, counted on D and on D' = D + the canary.

    Attributes:
        name: The release, as the privacy report names it.
        release: The project's function that adds its noise (``ReleaseFunction``).
        without_canary: Its noiseless output on D (the counts it adds noise to).
        with_canary: Its noiseless output on D'.
    """

    name: str
    release: ReleaseFunction
    without_canary: Arrays
    with_canary: Arrays

    @property
    def change(self) -> np.ndarray:
        """How the canary moves the noiseless output, flattened."""
        return flat(self.with_canary) - flat(self.without_canary)


def flat(arrays: Arrays, trials: int | None = None) -> np.ndarray:
    """Arrays as one vector (or, with ``trials``, one row per trial)."""
    parts = [np.ravel(array) for array in arrays] if trials is None else [np.reshape(a, (trials, -1)) for a in arrays]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)


def release_statistics(name: str, counts: Arrays, release: Any, rng: np.random.Generator) -> Arrays:
    """``statistics.gaussian_release``, the generator statistics' Gaussian mechanism."""
    from dp_synth.modalities.tabular.statistics import gaussian_release

    return gaussian_release(name, [()] * len(counts), counts, release, rng).noisy


def release_histogram(threshold: float, counts: Arrays, release: Any, rng: np.random.Generator) -> Arrays:
    """``histogram.release``, the nearest-neighbour histogram's Gaussian mechanism."""
    from dp_synth.pe.histogram import release as histogram_release

    (votes,) = counts
    return (histogram_release(votes, release.sigma, threshold, rng).noisy,)


def release_class_counts(counts: Arrays, release: Any, rng: np.random.Generator) -> Arrays:
    """``nodes.noisy_class_counts``, the DP class count's Gaussian mechanism."""
    from dp_synth.pipelines.pe.nodes import noisy_class_counts

    (classes,) = counts
    return (noisy_class_counts(classes, release.sigma, release.sensitivity, rng),)


def adult_table(run: DefaultRun) -> pd.DataFrame:
    """Adult's training rows, checked against the schema (``load_private_data``'s check)."""
    from dp_synth.modalities.tabular.schema import conform

    return conform(pd.read_csv(ADULT / "adult_train.csv"), run.modality.schema)


@dataclass(frozen=True)
class TreeInputs:
    """The public inputs of the tree's releases (fixed for D and D').

    Attributes:
        maps: Every feature's fine -> coarse cell map (equal width, ``pair_cells``).
        grouped: The maps into the interaction tables' groups.
        expected: Per feature, D's exact coarse counts per class (the scores' one-way prediction).
    """

    maps: tuple[np.ndarray, ...]
    grouped: tuple[np.ndarray, ...]
    expected: tuple[np.ndarray, ...]


def tree_inputs(run: DefaultRun, table: pd.DataFrame) -> TreeInputs:
    """The coarse cells of the pair and interaction tables, and D's exact coarse one-way counts."""
    from dp_synth.modalities.tabular.dependency_tree import coarse_cells
    from dp_synth.modalities.tabular.tree_statistics import INTERACTION_NUMERIC_CELLS, QueryCounts, mapped_sizes

    modality = run.modality
    grids = modality.layout.grids
    maps = tuple(
        coarse_cells(grid.size, modality.pair_cells) if grid.column.is_numeric else np.arange(grid.size)
        for grid in grids
    )
    groups = [
        coarse_cells(size, INTERACTION_NUMERIC_CELLS) if grid.column.is_numeric else np.arange(size)
        for grid, size in zip(grids, mapped_sizes(maps), strict=True)
    ]
    grouped = tuple(group[mapping] for group, mapping in zip(groups, maps, strict=True))
    singles = tuple((feature,) for feature in range(len(grids)))
    expected = tuple(QueryCounts(modality.layout, maps, singles).measure(table))
    return TreeInputs(maps, grouped, expected)


def score_change(run: DefaultRun, table: pd.DataFrame, inputs: TreeInputs, canary: pd.DataFrame) -> np.ndarray:
    """How ``canary`` moves every pair's dependence score (the pair tables are sums over
    partitions of the rows, as the engine counts them)."""
    from dp_synth.modalities.tabular.dependency_tree import dependence_scores, feature_pairs
    from dp_synth.modalities.tabular.tree_statistics import QueryCounts

    counts = QueryCounts(run.modality.layout, inputs.maps, tuple(feature_pairs(len(inputs.maps))))
    tables, extra = counts.measure(table), counts.measure(canary)
    after = [table + more for table, more in zip(tables, extra, strict=True)]
    return dependence_scores(after, inputs.expected) - dependence_scores(tables, inputs.expected)


def choose_canary(run: DefaultRun, table: pd.DataFrame, inputs: TreeInputs, candidates: int = 1000) -> pd.DataFrame:
    """The canary: the first of D's rows, its binned numeric values moved off their declared
    bounds (a record on a bound falls in no sub-cell of the refinement; one step inside it, in the
    bin next to the bound), for which every pair's dependence score moves by a whole 1 (a score
    moves by less only where the pair's prediction lies strictly between the canary's cell count
    and that count plus one).

    Raises:
        RuntimeError: if none of the first ``candidates`` rows qualifies.
    """
    from dp_synth.modalities.tabular.schema import conform

    schema = run.modality.schema
    for row in range(min(candidates, len(table))):
        canary = table.iloc[[row]].reset_index(drop=True)
        for feature in run.modality.binned_features:
            column = schema.features[feature]
            step = 1 if column.kind == "integer" else (column.high - column.low) / (2 * run.modality.marginal_bins)
            canary[column.name] = canary[column.name].clip(column.low + step, column.high - step)
        canary = conform(canary, schema)
        if np.allclose(np.abs(score_change(run, table, inputs, canary)), 1.0):
            return canary
    raise RuntimeError(f"no canary among the first {candidates} rows moves every dependence score by 1")


def build_mechanisms(
    run: DefaultRun, table: pd.DataFrame, names: Sequence[str] | None = None
) -> tuple[list[Mechanism], pd.DataFrame]:
    """Count every release of the plan (or those named) on D = ``table`` and on D' = D + the canary.

    Returns:
        The mechanisms and the canary.
    """
    from dp_synth.pe.ledger import CLASS_COUNTS, HISTOGRAM, STATISTICS

    names = list(plan_releases(run)) if names is None else list(names)
    inputs = tree_inputs(run, table)
    canary = choose_canary(run, table, inputs)
    with_canary = pd.concat([table, canary], ignore_index=True)
    counters: dict[str, Callable[[], Callable[[pd.DataFrame], Arrays]]] = {
        CLASS_COUNTS: lambda: partial(_class_counts, run),
        HISTOGRAM: lambda: _histogram_counter(run, table),
        f"{STATISTICS}: bounds": lambda: partial(_bounds_counts, run),
        f"{STATISTICS}: one_way": lambda: partial(_one_way_counts, run),
        f"{STATISTICS}: refinement": lambda: partial(_refinement_counts, run),
        f"{STATISTICS}: scores": lambda: partial(_scores, run, inputs),
        f"{STATISTICS}: edges": lambda: partial(_edge_tables, run, inputs, _spanning_tree(run, table, inputs)),
        f"{STATISTICS}: interaction_scores": lambda: partial(_interaction_scores, run, inputs, table),
        f"{STATISTICS}: cliques": lambda: partial(_clique_tables, run, inputs),
    }
    threshold = run.settings.pe.threshold
    mechanisms = []
    for name in names:
        if name == CLASS_COUNTS:
            release: ReleaseFunction = release_class_counts
        elif name == HISTOGRAM:
            release = partial(release_histogram, threshold)
        else:
            release = partial(release_statistics, name.removeprefix(f"{STATISTICS}: "))
        count = counters[name]()
        mechanisms.append(Mechanism(name, release, count(table), count(with_canary)))
    return mechanisms, canary


def _class_counts(run: DefaultRun, table: pd.DataFrame) -> Arrays:
    from dp_synth.pipelines.pe.nodes import _class_counts as class_counts

    return (class_counts(tuple(run.modality.classes), run.modality.label_column, table).astype(np.float64),)


def _histogram_counter(run: DefaultRun, table: pd.DataFrame) -> Callable[[pd.DataFrame], Arrays]:
    """The votes of a table's rows for a random population of the default size N, grouped into
    bins as the ``dp_histogram`` node groups them (``merge_duplicates``, ``candidates_per_bin``)."""
    from dp_synth.pe import histogram as dp_hist
    from dp_synth.pe.selection import allocate_class_sizes

    modality, pe = run.modality, run.settings.pe
    totals = _class_counts(run, table)[0]
    sizes = allocate_class_sizes(pe.population_size, dict(zip(modality.classes, totals.tolist(), strict=True)))
    candidates = modality.random_population(sizes, np.random.default_rng(0))
    embeddings = modality.embed(candidates)
    labels = candidates[modality.label_column].to_numpy()
    first = np.arange(len(labels))
    if pe.merge_duplicates:
        first, _ = dp_hist.distinct_candidates(embeddings, labels)
    bins = np.arange(len(first))
    if pe.candidates_per_bin > 1:
        bins = dp_hist.cluster_bins(embeddings[first], labels[first], pe.candidates_per_bin, seed=0)
    votes = dp_hist.PartitionVotes(embeddings[first], labels[first], pe.nearest_neighbours, bins)

    def count(rows: pd.DataFrame) -> Arrays:
        from dp_synth.pe.engine import EmbeddedRows

        return (votes(EmbeddedRows(modality.embed(rows), rows[modality.label_column].to_numpy())),)

    return count


def _bounds_counts(run: DefaultRun, table: pd.DataFrame) -> Arrays:
    from dp_synth.modalities.tabular.bounds import locate_counts, located_columns

    return (locate_counts(located_columns(run.modality.schema, run.modality.located_features), table),)


def _one_way_counts(run: DefaultRun, table: pd.DataFrame) -> Arrays:
    from dp_synth.modalities.tabular.statistics import marginal_counts

    return (marginal_counts(run.modality.layout, table),)


def _refinement_counts(run: DefaultRun, table: pd.DataFrame) -> Arrays:
    from dp_synth.modalities.tabular.statistics import refined_counts

    modality = run.modality
    return (refined_counts(modality.layout, modality.refined_features, modality.refine_cells, table),)


def _scores(run: DefaultRun, inputs: TreeInputs, table: pd.DataFrame) -> Arrays:
    from dp_synth.modalities.tabular.dependency_tree import dependence_scores, feature_pairs
    from dp_synth.modalities.tabular.tree_statistics import QueryCounts

    pairs = tuple(feature_pairs(len(inputs.maps)))
    return (dependence_scores(QueryCounts(run.modality.layout, inputs.maps, pairs).measure(table), inputs.expected),)


def _spanning_tree(run: DefaultRun, table: pd.DataFrame, inputs: TreeInputs) -> tuple[tuple[int, int], ...]:
    from dp_synth.modalities.tabular.dependency_tree import maximum_spanning_forest

    edges = maximum_spanning_forest(_scores(run, inputs, table)[0], len(inputs.maps))
    if len(edges) != len(inputs.maps) - 1:
        raise RuntimeError(f"the audit needs a spanning tree (d - 1 edges), got {len(edges)}")
    return tuple(edges)


def _edge_tables(run: DefaultRun, inputs: TreeInputs, edges: tuple, table: pd.DataFrame) -> Arrays:
    from dp_synth.modalities.tabular.tree_statistics import QueryCounts

    return tuple(QueryCounts(run.modality.layout, inputs.maps, edges).measure(table))


def _interaction_scores(run: DefaultRun, inputs: TreeInputs, model: pd.DataFrame, table: pd.DataFrame) -> Arrays:
    """Every triple's interaction score against ``model``'s rows (D's, fixed for D and D')."""
    from dp_synth.modalities.tabular.dependency_tree import feature_triples, interaction_scores
    from dp_synth.modalities.tabular.schema import category_codes
    from dp_synth.modalities.tabular.tree_statistics import QueryCounts, mapped_sizes

    layout = run.modality.layout
    triples = tuple(feature_triples(len(inputs.maps)))
    tables = QueryCounts(layout, inputs.grouped, triples).measure(table)
    model_cells = np.column_stack(layout.coarse_cells_of(model, inputs.grouped))
    model_classes = category_codes(model[layout.label_column], layout.schema.label)
    totals = np.bincount(model_classes, minlength=len(layout.classes)).astype(np.float64)
    scores, _ = interaction_scores(tables, model_cells, model_classes, totals, mapped_sizes(inputs.grouped))
    return (scores,)


def _clique_tables(run: DefaultRun, inputs: TreeInputs, table: pd.DataFrame) -> Arrays:
    """The tables of the plan's cliques: the first min(K, d // 3) disjoint triples."""
    from dp_synth.modalities.tabular.tree_statistics import QueryCounts

    cliques = tuple((3 * i, 3 * i + 1, 3 * i + 2) for i in range(min(run.modality.interactions, len(inputs.maps) // 3)))
    return tuple(QueryCounts(run.modality.layout, inputs.grouped, cliques).measure(table))


def trials_for(claimed_mu: float, precision: float = PRECISION, confidence: float = CONFIDENCE) -> int:
    """Trials on each side for an interval of half-width ``precision`` x the claimed mu
    (the estimate's variance is (2 + mu^2 / 4) / trials)."""
    z = norm.ppf(0.5 + confidence / 2)
    return math.ceil((2 + claimed_mu**2 / 4) * (z / (precision * claimed_mu)) ** 2)


def canary_statistics(
    mechanism: Mechanism, release: Any, trials: int, member: bool, rng: np.random.Generator
) -> np.ndarray:
    """Run the mechanism ``trials`` times on D' (``member``) or D and return each output's
    projection on the canary's direction, measured from D's noiseless output."""
    change = mechanism.change
    direction = change / np.linalg.norm(change)
    origin = flat(mechanism.without_canary) @ direction
    counts = mechanism.with_canary if member else mechanism.without_canary
    batch = max(1, BATCH_VALUES // len(direction))
    statistics = []
    for start in range(0, trials, batch):
        size = min(batch, trials - start)
        stacked = tuple(np.broadcast_to(array, (size, *np.shape(array))) for array in counts)
        noisy = flat(mechanism.release(stacked, release, rng), size)
        statistics.append(noisy @ direction - origin)
    return np.concatenate(statistics) if statistics else np.zeros(0)


@dataclass(frozen=True)
class MuEstimate:
    """The GDP mu two samples of the test statistic show.

    Attributes:
        mu: (mean on D' - mean on D) / pooled standard deviation.
        low, high: Its normal-theory interval at ``confidence``.
        shift: The difference of the means (the canary's shift, as seen through the noise).
        sigma: The pooled standard deviation (the noise along the canary's direction).
        confidence: The interval's confidence.
    """

    mu: float
    low: float
    high: float
    shift: float
    sigma: float
    confidence: float


def estimate_mu(without: np.ndarray, with_canary: np.ndarray, confidence: float = CONFIDENCE) -> MuEstimate:
    """Estimate mu from the test statistic on D (``without``) and on D' (``with_canary``)."""
    n, m = len(without), len(with_canary)
    shift = float(np.mean(with_canary) - np.mean(without))
    pooled = math.sqrt(((n - 1) * np.var(without, ddof=1) + (m - 1) * np.var(with_canary, ddof=1)) / (n + m - 2))
    mu = shift / pooled
    error = math.sqrt(1 / n + 1 / m + mu**2 / (2 * (n + m)))
    z = norm.ppf(0.5 + confidence / 2)
    return MuEstimate(mu, mu - z * error, mu + z * error, shift, pooled, confidence)


@dataclass(frozen=True)
class MechanismAudit:
    """One mechanism's audit.

    Attributes:
        name: The release, as the privacy report names it.
        sensitivity: The L2 sensitivity the plan claims for it.
        sigma: The noise the plan claims for it.
        sigma_in_force: The noise the audited plan gave it (``sigma`` x the noise factor).
        canary_shift: How far the canary moved its noiseless output (L2): the sensitivity when
            the canary is a worst case.
        claimed_mu: sensitivity / sigma.
        estimate: The measured mu.
        trials: Trials on each of D and D'.
        passed: Whether the estimate is within ``TOLERANCE`` of the claim.
        seconds: Wall time of its trials (workers' time, summed).
    """

    name: str
    sensitivity: float
    sigma: float
    sigma_in_force: float
    canary_shift: float
    claimed_mu: float
    estimate: MuEstimate
    trials: int
    passed: bool
    seconds: float


def _run_task(task: tuple[Mechanism, Any, int, bool, int | None]) -> tuple[np.ndarray, float]:
    mechanism, release, trials, member, seed = task
    start = time.perf_counter()
    statistics = canary_statistics(mechanism, release, trials, member, np.random.default_rng(seed))
    return statistics, time.perf_counter() - start


def audit_mechanisms(
    mechanisms: Sequence[Mechanism],
    claimed: dict[str, Any],
    in_force: dict[str, Any],
    *,
    precision: float = PRECISION,
    trials: int | None = None,
    workers: int = 1,
    seed: int | None = None,
) -> list[MechanismAudit]:
    """Audit every mechanism: its noise as ``in_force`` gives it, its claim as ``claimed`` states.

    Args:
        mechanisms: From ``build_mechanisms``.
        claimed: The plan's releases (``plan_releases``): the claims.
        in_force: The releases of the audited plan (the same, or with the noise scaled).
        precision: Interval half-width as a share of the claimed mu (sets the trials).
        trials: Trials on each side for every mechanism, instead of ``precision``.
        workers: Processes running trials (1: in this process).
        seed: Seed of the noise (``None``: OS entropy, as a run without ``dp.seed``).
    """
    tasks, owners = [], []
    seeds = np.random.SeedSequence(seed).spawn(4096) if seed is not None else None
    plans = []
    for index, mechanism in enumerate(mechanisms):
        release = claimed[mechanism.name]
        count = trials or trials_for(release.sensitivity / release.sigma, precision)
        plans.append(count)
        for member in (False, True):
            for start in range(0, count, TASK_TRIALS):
                task_seed = seeds[len(tasks)] if seeds is not None else None
                size = min(TASK_TRIALS, count - start)
                tasks.append((mechanism, in_force[mechanism.name], size, member, task_seed))
                owners.append((index, member))
    if workers == 1:
        outcomes = [_run_task(task) for task in tasks]
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            outcomes = pool.map(_run_task, tasks, chunksize=1)
    audits = []
    for index, mechanism in enumerate(mechanisms):
        sides = {
            member: np.concatenate(
                [s for (owner, side), (s, _) in zip(owners, outcomes, strict=True) if owner == index and side == member]
            )
            for member in (False, True)
        }
        seconds = sum(t for (owner, _), (_, t) in zip(owners, outcomes, strict=True) if owner == index)
        release = claimed[mechanism.name]
        claimed_mu = release.sensitivity / release.sigma
        estimate = estimate_mu(sides[False], sides[True])
        audits.append(
            MechanismAudit(
                name=mechanism.name,
                sensitivity=release.sensitivity,
                sigma=release.sigma,
                sigma_in_force=in_force[mechanism.name].sigma,
                canary_shift=float(np.linalg.norm(mechanism.change)),
                claimed_mu=claimed_mu,
                estimate=estimate,
                trials=plans[index],
                passed=abs(estimate.mu / claimed_mu - 1) <= TOLERANCE,
                seconds=seconds,
            )
        )
    return audits


def table_lines(audits: Sequence[MechanismAudit], noise_factor: float) -> list[str]:
    """The audits as a table: sensitivity, noise in force, the canary's shift, the claimed and the
    measured mu with its interval, the noise measured along the canary's direction."""
    lines = [
        f"{'release (noise x ' + format(noise_factor, 'g') + ')':<41} {'sens.':>6} {'sigma':>7} {'shift':>6} "
        f"{'noise seen':>10} {'claimed mu':>10} {'estimate':>9} {'95% interval':>17} {'est/claim':>9} "
        f"{'trials':>9} {'s':>4}  result"
    ]
    for audit in audits:
        estimate = audit.estimate
        interval = f"[{estimate.low:.4f}, {estimate.high:.4f}]"
        lines.append(
            f"{audit.name:<41} {audit.sensitivity:>6.3f} "
            f"{audit.sigma_in_force:>7.2f} {audit.canary_shift:>6.3f} {estimate.sigma:>10.2f} "
            f"{audit.claimed_mu:>10.4f} {estimate.mu:>9.4f} {interval:>17} {estimate.mu / audit.claimed_mu:>9.3f} "
            f"{audit.trials:>9,} {audit.seconds:>4.0f}  {'pass' if audit.passed else 'FAIL'}"
        )
    return lines

"""Node functions of the Private Evolution loop, shared by every modality.

Each function is pure: data and parameters in, data out. Randomness comes from the privacy
plan's generators (seeded streams, or fresh OS entropy when no seed is set).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dp_synth.evaluation.plots import plot_iteration_metrics
from dp_synth.pe import histogram as dp_hist
from dp_synth.pe.accounting import GaussianPrivacyPlan, PrivacyConfigError, Stream, calibrate, default_delta
from dp_synth.pe.interfaces import Modality, UsesStatistics
from dp_synth.pe.release import ReleaseBasis
from dp_synth.pe.selection import allocate_class_sizes, sample_proportional, top_by_count
from dp_synth.pe.settings import EvolutionSettings, JobSettings, ReleaseSettings, SettingsError

logger = logging.getLogger(__name__)

_CLASS_COUNT_ITERATION = 0


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
    delta = dp.delta
    if delta == "auto":
        if modality.public_row_count is None:
            raise PrivacyConfigError(
                "dp.delta is 'auto' (1/(n ln n)) but the schema declares no public_row_count; "
                "declare the row count as public in the schema or set dp.delta to a number"
            )
        delta = default_delta(modality.public_row_count)
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
    )
    logger.info(
        "Privacy plan: (epsilon=%.4g, delta=%.3g): %d histogram/count releases with sigma=%.4g%s; noise %s",
        plan.epsilon,
        plan.delta,
        plan.releases,
        plan.sigma,
        f", generator statistics with sigma={plan.statistics_sigma:.4g}" if uses_statistics else "",
        "seeded" if dp.seed is not None else "from OS entropy",
    )
    return plan


def measure_generator_statistics(modality: Modality, private_table: pd.DataFrame, plan: GaussianPrivacyPlan) -> Any:
    """Release the generator's DP statistics of the private data, if the plan pays for them.

    This is the plan's first release: a Gaussian mechanism with the modality's stated
    sensitivity and the plan's ``statistics_sigma``. Returns ``{}`` when the plan has none.
    """
    if plan.statistics_sensitivity == 0 or not isinstance(modality, UsesStatistics):
        return {}
    return modality.measure_statistics(
        private_table, plan.statistics_sigma, plan.noise_generator(0, Stream.STATISTICS_NOISE)
    )


def apply_generator_statistics(modality: Modality, generator_statistics: Any) -> Modality:
    """The generator the loop uses: the public one, given the released statistics if any."""
    if generator_statistics and isinstance(modality, UsesStatistics):
        return modality.with_statistics(generator_statistics)
    return modality


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


def embed_private_data(modality: Modality, private_table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Embed the private rows once; return (embeddings, labels). Both stay in memory only."""
    return modality.embed(private_table), private_table[modality.label_column].to_numpy()


def summarise_reference(modality: Modality, reference_table: pd.DataFrame) -> Any:
    """Precompute the held-out statistics of the per-iteration quality diagnostic."""
    return modality.summarise_reference(reference_table)


def measure_class_distribution(
    modality: Modality, private_labels: np.ndarray, plan: GaussianPrivacyPlan
) -> dict[str, float]:
    """Return a weight per class: a DP count of private rows, or the declared public proportions.

    With a DP count, each class count gets N(0, sigma^2) noise (sensitivity 1: one record is in
    one class); this is the plan's preliminary release. Negative noisy counts are kept as they
    are (they are a release); allocation raises them to a floor.
    """
    if plan.preliminary_releases == 0:
        public = modality.public_class_proportions or {}
        return {label: float(public[label]) for label in modality.classes}
    counts = np.array([np.sum(private_labels == label) for label in modality.classes], dtype=float)
    noisy = counts + plan.noise_generator(_CLASS_COUNT_ITERATION, Stream.HISTOGRAM_NOISE).normal(
        0.0, plan.sigma, size=len(counts)
    )
    return dict(zip(modality.classes, noisy.tolist(), strict=True))


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
    private_embeddings: np.ndarray,
    private_labels: np.ndarray,
    plan: GaussianPrivacyPlan,
    settings: JobSettings,
    *,
    iteration: int,
) -> dp_hist.NoisyHistogram:
    """Release iteration ``iteration``'s noisy nearest-neighbour histogram (one Gaussian release).

    The release is over bins of candidates, whose count is then shared equally among their
    members (see ``histogram.spread_over_groups``): with ``pe.merge_duplicates`` identical
    candidates are one bin, and with ``pe.candidates_per_bin`` > 1 the (distinct) candidates of
    each class are grouped by k-means into bins of about that many (``histogram.cluster_bins``),
    so each bin collects enough votes to rise above the noise.
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
    votes = dp_hist.class_conditional_votes(
        private_embeddings,
        private_labels,
        candidate_embeddings[first],
        labels[first],
        settings.pe.nearest_neighbours,
        bins,
    )
    released = dp_hist.release(
        votes, plan.sigma, settings.pe.threshold, plan.noise_generator(iteration, Stream.HISTOGRAM_NOISE)
    )
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
    metrics = {
        "iteration": float(iteration),
        "epsilon_spent": plan.epsilon_spent(iteration),
        "histogram_mass_above_threshold": float(histogram.thresholded.sum()),
        "histogram_nonzero_candidates": float(np.count_nonzero(histogram.thresholded)),
        "distinct_survivors": float(survivors.index.nunique()),
    }
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
    rows = basis.default_rows() if settings.release.rows == "auto" else settings.release.rows
    return basis.draw(rows, settings.release.vary, basis.release_rng(0))


def collect_iteration_metrics(*metrics: Mapping[str, float]) -> pd.DataFrame:
    """One row per iteration, in order, for reports."""
    return pd.DataFrame(list(metrics)).sort_values("iteration", ignore_index=True)


def plot_iterations(iteration_metrics: pd.DataFrame) -> Figure:
    """Metrics per iteration (epsilon spent, histogram statistics, the quality diagnostic)."""
    figure = plot_iteration_metrics(iteration_metrics)
    plt.close("all")  # the catalog saves the figure; pyplot must not keep it alive
    return figure

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

from dp_synth.pe import histogram as dp_hist
from dp_synth.pe.interfaces import Modality
from dp_synth.evaluation.plots import plot_iteration_metrics
from dp_synth.pe.accounting import GaussianPrivacyPlan, PrivacyConfigError, calibrate, default_delta
from dp_synth.pe.selection import allocate_class_sizes, sample_proportional, top_by_count

logger = logging.getLogger(__name__)

PE_SETTINGS = {
    "population_size",
    "nearest_neighbours",
    "threshold",
    "sampling_iterations",
    "variations_per_survivor",
    "merge_duplicates",
    "candidates_per_bin",
}
DP_SETTINGS = {"epsilon", "delta", "class_proportions", "generator_share", "seed"}
RELEASE_SETTINGS = {"rows", "vary"}

# Stream numbers of the plan's generators: (iteration, stream).
_HISTOGRAM_NOISE, _SELECTION, _GENERATION, _STATISTICS_NOISE, _BINNING = 0, 1, 2, 3, 4
_CLASS_COUNT_ITERATION = 0


def _check_keys(section: str, settings: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(settings) - known)
    if "iterations" in unknown:
        raise PrivacyConfigError(
            f"{section}.iterations is not a parameter: the number of iterations T shapes the DAG "
            "and is set with the DP_SYNTH_ITERATIONS environment variable"
        )
    if unknown:
        raise ValueError(f"unknown {section} settings {unknown}; known: {sorted(known)}")
    missing = sorted(known - set(settings) - {"seed"})
    if missing:
        raise ValueError(f"missing {section} settings {missing}")


def _check_population_settings(pe: Mapping[str, Any], classes: int) -> None:
    _check_keys("pe", pe, PE_SETTINGS)
    for name in ("population_size", "nearest_neighbours", "variations_per_survivor", "candidates_per_bin"):
        if not isinstance(pe[name], int) or pe[name] < 1:
            raise ValueError(f"pe.{name} must be an integer >= 1, got {pe[name]!r}")
    if pe["population_size"] < classes:
        raise ValueError(
            f"pe.population_size N={pe['population_size']} is smaller than the number of classes ({classes})"
        )
    if not isinstance(pe["sampling_iterations"], int) or pe["sampling_iterations"] < 0:
        raise ValueError(f"pe.sampling_iterations must be an integer >= 0, got {pe['sampling_iterations']!r}")
    if not isinstance(pe["threshold"], (int, float)) or pe["threshold"] < 0:
        raise ValueError(f"pe.threshold must be a number >= 0, got {pe['threshold']!r}")
    if not isinstance(pe["merge_duplicates"], bool):
        raise ValueError(f"pe.merge_duplicates must be true or false, got {pe['merge_duplicates']!r}")


def _check_release_settings(modality: Modality, release: Mapping[str, Any], class_proportions: str) -> None:
    _check_keys("release", release, RELEASE_SETTINGS)
    rows = release["rows"]
    if rows == "auto":
        if class_proportions == "public" and modality.public_row_count is None:
            raise ValueError(
                "release.rows is 'auto' but there is neither a public row count in the schema nor a "
                "DP class count to estimate it from; set release.rows to a number"
            )
    elif not isinstance(rows, int) or rows < len(modality.classes):
        raise ValueError(
            f"release.rows must be 'auto' or an integer >= the number of classes ({len(modality.classes)}), "
            f"got {rows!r}"
        )
    if not isinstance(release["vary"], bool):
        raise ValueError(f"release.vary must be true or false, got {release['vary']!r}")


def calibrate_privacy(
    modality: Modality,
    dp: Mapping[str, Any],
    pe: Mapping[str, Any],
    release: Mapping[str, Any],
    *,
    iterations: int,
) -> GaussianPrivacyPlan:
    """Calibrate the noise of the whole run before any private data is touched.

    Args:
        modality: Supplies the public row count and class proportions, if declared.
        dp: ``epsilon``, ``delta`` (a number, or ``"auto"`` for 1/(n ln n) with the public row
            count), ``class_proportions`` (``"dp"``: a noisy count paid from the budget, or
            ``"public"``: declared in the schema), ``generator_share`` (share of the budget, in
            mu squared, spent on DP statistics for the generator; 0 for none) and ``seed``
            (``null`` for OS entropy).
        pe: Population settings, validated here so a bad setting stops the run first.
        release: Release settings, validated here for the same reason.
        iterations: T, bound when the DAG is built, so it is the number of histograms the run
            really releases.

    Returns:
        The calibrated plan.
    """
    _check_keys("dp", dp, DP_SETTINGS)
    _check_population_settings(pe, len(modality.classes))
    delta = dp["delta"]
    if delta == "auto":
        if modality.public_row_count is None:
            raise PrivacyConfigError(
                "dp.delta is 'auto' (1/(n ln n)) but the schema declares no public_row_count; "
                "declare the row count as public in the schema or set dp.delta to a number"
            )
        delta = default_delta(modality.public_row_count)
    if dp["class_proportions"] not in ("dp", "public"):
        raise PrivacyConfigError(f"dp.class_proportions must be 'dp' or 'public', got {dp['class_proportions']!r}")
    if dp["class_proportions"] == "public" and modality.public_class_proportions is None:
        raise PrivacyConfigError(
            "dp.class_proportions is 'public' but the schema declares no class_proportions"
        )
    _check_release_settings(modality, release, dp["class_proportions"])
    seed = dp.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise PrivacyConfigError(f"dp.seed must be an integer or null, got {seed!r}")
    share = dp["generator_share"]
    if not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise PrivacyConfigError(f"dp.generator_share must be a number in [0, 1), got {share!r}")
    if share > 0 and modality.statistics_sensitivity == 0:
        raise PrivacyConfigError("dp.generator_share must be 0: this generator uses no DP statistics")
    plan = calibrate(
        epsilon=dp["epsilon"],
        delta=delta,
        iterations=iterations,
        preliminary_releases=1 if dp["class_proportions"] == "dp" else 0,
        seed=seed,
        statistics_sensitivity=modality.statistics_sensitivity if share > 0 else 0.0,
        statistics_share=float(share),
    )
    logger.info(
        "Privacy plan: (epsilon=%.4g, delta=%.3g): %d histogram/count releases with sigma=%.4g%s; noise %s",
        plan.epsilon, plan.delta, plan.releases, plan.sigma,
        f", generator statistics with sigma={plan.statistics_sigma:.4g}" if share > 0 else "",
        "seeded" if seed is not None else "from OS entropy",
    )
    return plan


def measure_generator_statistics(
    modality: Modality, private_table: pd.DataFrame, plan: GaussianPrivacyPlan
) -> dict[str, Any]:
    """Release the generator's DP statistics of the private data, if the plan pays for them.

    This is the plan's first release: a Gaussian mechanism with the modality's stated
    sensitivity and the plan's ``statistics_sigma``. Returns ``{}`` when the plan has none.
    """
    if plan.statistics_sensitivity == 0:
        return {}
    return modality.measure_statistics(private_table, plan.statistics_sigma, plan.noise_generator(0, _STATISTICS_NOISE))


def apply_generator_statistics(modality: Modality, generator_statistics: Mapping[str, Any]) -> Modality:
    """The generator the loop uses: the public one, given the released statistics if any."""
    return modality.with_statistics(generator_statistics) if generator_statistics else modality


def check_resumed_plan(plan: GaussianPrivacyPlan, *, iterations: int) -> None:
    """Refuse to resume a run whose saved privacy plan paid for a different number of iterations.

    Raises:
        PrivacyConfigError: if the saved plan's T differs from the DAG's T.
    """
    if plan.iterations != iterations:
        raise PrivacyConfigError(
            f"the saved privacy plan pays for T={plan.iterations} iterations but this DAG has T={iterations}; "
            "resume with the DP_SYNTH_ITERATIONS of the run you are resuming"
        )
    logger.info(
        "Resuming with the saved privacy plan (epsilon=%.4g, delta=%.3g, sigma=%.4g, T=%d): histograms "
        "already released count in every epsilon reported", plan.epsilon, plan.delta, plan.sigma, plan.iterations,
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
    noisy = counts + plan.noise_generator(_CLASS_COUNT_ITERATION, _HISTOGRAM_NOISE).normal(
        0.0, plan.sigma, size=len(counts)
    )
    return dict(zip(modality.classes, noisy.tolist(), strict=True))


def allocate_population(class_weights: Mapping[str, float], pe: Mapping[str, Any]) -> dict[str, int]:
    """Split the population size N across classes in proportion to the class weights."""
    return allocate_class_sizes(pe["population_size"], class_weights)


def generate_initial_population(
    modality: Modality, class_sizes: Mapping[str, int], plan: GaussianPrivacyPlan
) -> pd.DataFrame:
    """Random API: the first population, drawn from public knowledge only."""
    return modality.random_population(class_sizes, plan.noise_generator(0, _GENERATION))


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
    pe: Mapping[str, Any],
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
        if pe["merge_duplicates"]
        else (np.arange(len(labels)), np.arange(len(labels)))
    )
    bins = np.arange(len(first))
    if pe["candidates_per_bin"] > 1:
        seed = int(plan.noise_generator(iteration, _BINNING).integers(2**31 - 1))
        bins = dp_hist.cluster_bins(candidate_embeddings[first], labels[first], pe["candidates_per_bin"], seed)
    votes = dp_hist.class_conditional_votes(
        private_embeddings, private_labels, candidate_embeddings[first], labels[first], pe["nearest_neighbours"], bins
    )
    released = dp_hist.release(votes, plan.sigma, pe["threshold"], plan.noise_generator(iteration, _HISTOGRAM_NOISE))
    return dp_hist.spread_over_groups(released, bins[group])


def resample(
    modality: Modality,
    candidates: pd.DataFrame,
    histogram: dp_hist.NoisyHistogram,
    class_sizes: Mapping[str, int],
    plan: GaussianPrivacyPlan,
    pe: Mapping[str, Any],
    *,
    iteration: int,
) -> pd.DataFrame:
    """Select the survivors of an iteration (post-processing of the released histogram).

    During the first ``pe.sampling_iterations`` iterations, survivors are drawn proportionally
    to the thresholded histogram; afterwards the top ``class_sizes[c]`` by noisy count are kept.
    The survivors keep the candidates' index, so repeated draws are visible.
    """
    labels = candidates[modality.label_column].to_numpy()
    if iteration <= pe["sampling_iterations"]:
        chosen = sample_proportional(
            histogram.thresholded, labels, class_sizes, plan.noise_generator(iteration, _SELECTION)
        )
    else:
        chosen = top_by_count(histogram.noisy, labels, class_sizes)
    return candidates.iloc[chosen]


def vary(
    modality: Modality,
    survivors: pd.DataFrame,
    plan: GaussianPrivacyPlan,
    pe: Mapping[str, Any],
    *,
    iteration: int,
) -> pd.DataFrame:
    """Variation API: the next population.

    During the sampling iterations: one variation of each survivor, survivors dropped.
    Afterwards: the survivors plus ``pe.variations_per_survivor`` variations of each.
    """
    rng = plan.noise_generator(iteration, _GENERATION)
    survivors = survivors.reset_index(drop=True)
    if iteration <= pe["sampling_iterations"]:
        return modality.vary(survivors, iteration, plan.iterations, rng)
    copies = pd.concat([survivors] * pe["variations_per_survivor"], ignore_index=True)
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
        iteration, plan.iterations, metrics["epsilon_spent"], metrics["distinct_survivors"],
        ", ".join(f"{name} {value:.4f}" for name, value in quality.items()),
    )
    return metrics


def released_row_count(
    modality: Modality, class_weights: Mapping[str, float], release: Mapping[str, Any]
) -> int:
    """Rows to release: the number asked for, or with ``auto`` the public row count if declared,
    else the DP class counts' total (already released, so free to use)."""
    if release["rows"] != "auto":
        return int(release["rows"])
    if modality.public_row_count is not None:
        return modality.public_row_count
    return max(round(sum(max(weight, 0.0) for weight in class_weights.values())), len(modality.classes))


def release_synthetic_data(
    modality: Modality,
    candidates: pd.DataFrame,
    histogram: dp_hist.NoisyHistogram,
    class_weights: Mapping[str, float],
    plan: GaussianPrivacyPlan,
    release: Mapping[str, Any],
) -> pd.DataFrame:
    """Release any number of rows from the last iteration, at no extra privacy cost.

    Rows are drawn per class, with replacement, in proportion to the last released
    (thresholded) histogram over the last population, as re-weighted by the modality (to its
    DP statistics, if it has any); with ``release.vary`` each drawn row is then passed once
    through the public variation API at the last iteration's degree. Every step only reads DP
    releases (histogram, class weights, statistics) and public knowledge: post-processing.
    """
    rows = released_row_count(modality, class_weights, release)
    rng = plan.noise_generator(plan.iterations + 1, _SELECTION)
    chosen = sample_proportional(
        modality.reweight(candidates, histogram.thresholded),
        candidates[modality.label_column].to_numpy(),
        allocate_class_sizes(rows, class_weights),
        rng,
    )
    drawn = candidates.iloc[chosen].reset_index(drop=True)
    if release["vary"]:
        return modality.vary(drawn, plan.iterations, plan.iterations, rng)
    return drawn


def collect_iteration_metrics(*metrics: Mapping[str, float]) -> pd.DataFrame:
    """One row per iteration, in order, for reports."""
    return pd.DataFrame(list(metrics)).sort_values("iteration", ignore_index=True)


def plot_iterations(iteration_metrics: pd.DataFrame) -> Figure:
    """Metrics per iteration (epsilon spent, histogram statistics, the quality diagnostic)."""
    figure = plot_iteration_metrics(iteration_metrics)
    plt.close("all")  # the catalog saves the figure; pyplot must not keep it alive
    return figure

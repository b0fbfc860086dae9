"""Report figures: metrics over iterations (or what one iteration's DP histogram did), real vs
synthetic marginals, association differences.

Figures show aggregates only. Real-data panels use the held-out reference table, never the
private table, so a rare category's bar cannot reveal a single private record.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # reports are written to files; no display is needed or assumed

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dp_synth.evaluation.tabular import DEFAULT_BINS, discretise
from dp_synth.modalities.tabular.schema import TableSchema, readable_number
from dp_synth.pe.histogram import NoisyHistogram

_MAX_CATEGORIES_SHOWN = 20
NOISE_BAND = 1.96
"""Half-width, in noise standard deviations, of the band that holds 95% of the noisy counts of
bins without votes (``plot_one_histogram``)."""


def plot_iteration_metrics(
    iteration_metrics: pd.DataFrame, histogram: NoisyHistogram, sigma: float, threshold: float
) -> Figure:
    """One panel per metric, against the iteration t. A single iteration (T = 1, or the one a
    resumed run measured) has no line to draw: its figure shows what its DP histogram did
    instead (``plot_one_histogram``).

    Args:
        iteration_metrics: One row per iteration (``pe_nodes.collect_iteration_metrics``).
        histogram: The last iteration's released histogram, read only for a single iteration.
        sigma: The standard deviation of the histogram's noise.
        threshold: H, subtracted from the noisy counts: a bin whose count exceeds it is kept.
    """
    if len(iteration_metrics) == 1:
        return plot_one_histogram(iteration_metrics.iloc[0], histogram, sigma, threshold)
    metrics = [name for name in iteration_metrics.columns if name != "iteration"]
    figure, axes = plt.subplots(len(metrics), 1, figsize=(7, 2.2 * len(metrics)), sharex=True, squeeze=False)
    for axis, name in zip(axes[:, 0], metrics, strict=True):
        axis.plot(iteration_metrics["iteration"], iteration_metrics[name], marker="o", markersize=3)
        axis.set_ylabel(name, fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("iteration t")
    figure.suptitle("Private Evolution, per iteration")
    figure.tight_layout()
    return figure


def plot_one_histogram(metrics: pd.Series, histogram: NoisyHistogram, sigma: float, threshold: float) -> Figure:
    """What one iteration's DP histogram did: the share of its candidates and of its bins kept
    (a noisy count above the threshold H), and the noisy votes of its bins beside the spread of
    the noise alone; the iteration's metrics in the title. Post-processing of the release only.

    Args:
        metrics: The iteration's row of ``pe_nodes.collect_iteration_metrics``.
        histogram: Its released histogram.
        sigma: The standard deviation of the histogram's noise.
        threshold: H.
    """
    released = histogram.released
    figure, (kept_axis, votes_axis) = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [2, 3]})
    kept = {"candidates": histogram.thresholded > 0, "bins": released > threshold}
    shares = [float(mask.mean()) for mask in kept.values()]
    kept_axis.barh(list(kept), shares, height=0.5, color="tab:green", label="kept")
    kept_axis.barh(list(kept), [1.0 - share for share in shares], height=0.5, left=shares, color="lightgrey")
    for row, (share, mask) in enumerate(zip(shares, kept.values(), strict=True)):
        kept_axis.text(0.02, row, f"{share:.0%} kept ({mask.sum():,} of {mask.size:,})", va="center")
    kept_axis.set_xlim(0, 1)
    kept_axis.invert_yaxis()
    kept_axis.set_xlabel(f"share with a noisy count above the threshold H = {threshold:g}")
    votes_axis.hist(released, bins=50, color="tab:blue", label="bins (a noisy count each)")
    votes_axis.axvspan(
        -NOISE_BAND * sigma,
        NOISE_BAND * sigma,
        color="grey",
        alpha=0.3,
        zorder=0,
        label=f"a bin without votes: 95% within +/- {readable_number(NOISE_BAND * sigma)}",
    )
    votes_axis.axvline(threshold, color="tab:red", linestyle="--", label=f"threshold H = {threshold:g}")
    votes_axis.set_xlabel(f"noisy votes of a bin of candidates (noise sigma {readable_number(sigma)})")
    votes_axis.set_ylabel("bins")
    votes_axis.legend(fontsize=7)
    quantities = ", ".join(f"{name} {readable_number(value)}" for name, value in metrics.items() if name != "iteration")
    figure.suptitle(
        f"Private Evolution, iteration {int(metrics['iteration'])}: what its DP histogram did\n{quantities}", fontsize=9
    )
    figure.tight_layout()
    return figure


def _shares(codes: np.ndarray, cells: int) -> np.ndarray:
    return np.bincount(codes, minlength=cells) / max(len(codes), 1)


def plot_marginals(
    reference: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema, columns: Sequence[str]
) -> Figure:
    """Side-by-side bars of the held-out real and the synthetic distribution of a few columns."""
    figure, axes = plt.subplots(len(columns), 1, figsize=(8, 2.6 * len(columns)), squeeze=False)
    reference_codes, synthetic_codes = discretise(reference, schema), discretise(synthetic, schema)
    for axis, name in zip(axes[:, 0], columns, strict=True):
        position = schema.names.index(name)
        column = schema.column(name)
        labels = (
            [readable_number(edge) for edge in np.linspace(column.low, column.high, DEFAULT_BINS + 1)[:-1]]
            if column.is_numeric
            else list(column.categories)
        )
        cells = len(labels)
        shown = np.arange(min(cells, _MAX_CATEGORIES_SHOWN))
        real_share = _shares(reference_codes[:, position], cells)[shown]
        synthetic_share = _shares(synthetic_codes[:, position], cells)[shown]
        axis.bar(shown - 0.2, real_share, width=0.4, label="held-out real")
        axis.bar(shown + 0.2, synthetic_share, width=0.4, label="synthetic")
        axis.set_xticks(shown, [labels[i] for i in shown], rotation=45, ha="right", fontsize=7)
        axis.set_title(name, fontsize=9)
        axis.legend(fontsize=7)
    figure.tight_layout()
    return figure


def cramers_v_matrix(codes: np.ndarray) -> np.ndarray:
    """Cramér's V between every pair of discretised columns (1 on the diagonal), on the
    contingency table of the values each pair shows (counted with ``np.bincount``)."""
    columns = codes.shape[1]
    association = np.eye(columns)
    if len(codes) == 0:
        return association
    sizes = codes.max(axis=0) + 1
    for i in range(columns):
        for j in range(i + 1, columns):
            counts = np.bincount(codes[:, i] * sizes[j] + codes[:, j], minlength=sizes[i] * sizes[j])
            table = counts.reshape(sizes[i], sizes[j]).astype(float)
            table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]  # the values present
            if min(table.shape) < 2:
                continue
            expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
            chi_squared = ((table - expected) ** 2 / expected).sum()
            association[i, j] = association[j, i] = np.sqrt(chi_squared / table.sum() / (min(table.shape) - 1))
    return association


def plot_association_difference(reference: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema) -> Figure:
    """Heatmap of |Cramér's V (held-out real) - Cramér's V (synthetic)| over all column pairs."""
    difference = np.abs(
        cramers_v_matrix(discretise(reference, schema)) - cramers_v_matrix(discretise(synthetic, schema))
    )
    figure, axis = plt.subplots(figsize=(7, 6))
    image = axis.imshow(difference, vmin=0, vmax=max(difference.max(), 1e-9), cmap="viridis")
    axis.set_xticks(range(len(schema.names)), schema.names, rotation=90, fontsize=7)
    axis.set_yticks(range(len(schema.names)), schema.names, fontsize=7)
    axis.set_title(
        f"|association difference| (Cramér's V), mean {difference[np.triu_indices_from(difference, 1)].mean():.3f}"
    )
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    return figure

"""Post-processing of the tabular releases: noisy counts into the distributions the generator draws from.

Every function here reads DP releases (``statistics.Measurement``) and public settings only,
never a private row, so none of them costs privacy.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import ndimage

from dp_synth.modalities.tabular.cells import CellGrid, TableLayout
from dp_synth.modalities.tabular.dependency_tree import SUPPRESSED_NOISE_MULTIPLE, posterior_counts, suppressed
from dp_synth.modalities.tabular.statistics import Marginals, Measurement

logger = logging.getLogger(__name__)

MARGINAL_PRIOR_GROUPS = 8
"""Groups of contiguous cells in which a binned numeric column's noisy marginal is denoised
(``denoised_marginal``)."""

WEAK_NOISE_MULTIPLE = 1.0
"""A group of a binned column's cells next to a group with data holds data too when its noisy
total reaches this many times its noise (``groups_with_data``). Suite tables with binned
columns, seeds 0-2, against 2 (every group on its own): churn's 2-way TVD 0.139 -> 0.128 and
1-way 0.056 -> 0.047, gradient-boosting accuracy up on churn, spambase (0.865 -> 0.897), magic
and ann_thyroid, Adult unchanged; at 0.5, alike (spambase 0.891)."""

MarginalEstimate = Literal["denoise", "clip"]
"""How a binned numeric column's noisy marginal becomes counts: ``denoised_marginal``, or
negative cells set to 0 (categorical and integer columns are always clipped)."""


def denoised_marginal(noisy: np.ndarray, sigma: float, groups: int) -> np.ndarray:
    """Non-negative counts from the noisy marginal of a binned numeric column (post-processing).

    Clipping the noise at 0 leaves about 0.4 sigma in every empty cell: on Adult it gave the
    <=50K class 400 rows of capital gains above 8,000 (the real table has 14), which teaches a
    classifier that a large gain says little. Instead the cells are pooled into ``groups``
    contiguous groups, and a group holds data when its noisy total clears its noise (sigma
    sqrt(members)) by hysteresis (``groups_with_data``); every cell of a group with data gets its
    posterior mean under an exponential prior of the group's mean count (``posterior_counts``),
    the other groups are empty.
    """
    size = len(noisy)
    group = np.arange(size) * groups // size
    members = np.bincount(group, minlength=groups)
    totals = np.bincount(group, weights=noisy, minlength=groups)
    kept = np.where(groups_with_data(totals, sigma * np.sqrt(np.maximum(members, 1))), totals, 0.0)
    prior = (kept / np.maximum(members, 1))[group]
    return np.where(prior > 0, posterior_counts(noisy, prior, sigma), 0.0)


def groups_with_data(totals: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Which contiguous groups of a column's cells hold data, from their noisy ``totals`` and the
    ``noise`` of each (post-processing): a run of neighbouring groups above
    ``WEAK_NOISE_MULTIPLE`` x their noise holds data when one of them reaches
    ``SUPPRESSED_NOISE_MULTIPLE`` x its noise (hysteresis, as in edge detection).

    A column's tails are contiguous with its bulk: a tail group of a smooth column (a class's
    calls per night, normally distributed) often holds fewer rows than 2 sigma and was emptied
    when every group had to reach it, which cut the tails of the release; an isolated group of
    noise beyond the data (a sparse column's empty range) still has to reach 2 sigma.
    """
    runs, _ = ndimage.label(totals >= WEAK_NOISE_MULTIPLE * noise)
    strong = np.unique(runs[(totals >= SUPPRESSED_NOISE_MULTIPLE * noise) & (runs > 0)])
    return np.isin(runs, strong)


def refined_within(noisy: np.ndarray, cell_counts: np.ndarray, sigma: float) -> np.ndarray:
    """Where the values of each bin lie, from its sub-cells' noisy counts (post-processing).

    A censored or rounded column (a capital gain) holds most of a bin's rows on a few exact
    values, and which values can decide the label (a gain of 5,178 is >50K, one of 5,013 is
    not). A sub-cell whose noisy count reaches ``SUPPRESSED_NOISE_MULTIPLE`` sigma keeps it
    (about 2% of empty sub-cells pass too: on Adult 3 sigma and 1.5 sigma did no better); what
    the bin's released count (``cell_counts``, from its one-way marginal) has beyond them is
    spread evenly over its sub-cells, and a bin with nothing kept stays uniform.

    Args:
        noisy: Noisy counts, shape (bins, sub-cells).
        cell_counts: The bins' released counts, shape (bins,).
        sigma: The noise of ``noisy``.

    Returns:
        Shape (bins, sub-cells): each row a distribution over the bin's sub-cells.
    """
    kept = suppressed(noisy, sigma)
    rest = np.maximum(cell_counts - kept.sum(axis=1), 0.0)
    counts = kept + rest[:, None] / noisy.shape[1]
    totals = counts.sum(axis=1, keepdims=True)
    return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), 1.0 / noisy.shape[1])


def _class_major_blocks(noisy: np.ndarray, classes: Sequence[str], sizes: Sequence[int]) -> dict[str, list[np.ndarray]]:
    """Split a class-major vector (each class's blocks of these sizes, one class after the
    other) into every class's blocks."""
    ends = np.cumsum(sizes)
    per_class = int(ends[-1])
    return {
        label: [
            noisy[index * per_class + end - size : index * per_class + end]
            for size, end in zip(sizes, ends, strict=True)
        ]
        for index, label in enumerate(classes)
    }


def _marginal(grid: CellGrid, noisy: np.ndarray, sigma: float, estimate: MarginalEstimate) -> np.ndarray:
    """One class's distribution over the cells of ``grid`` from their noisy counts: clipped, or
    denoised for a binned feature with ``estimate`` ``"denoise"``; uniform if nothing is left."""
    if estimate == "denoise" and grid.binned:
        cells = denoised_marginal(noisy, sigma, MARGINAL_PRIOR_GROUPS)
    else:
        cells = np.maximum(noisy, 0.0)
    total = cells.sum()
    return cells / total if total > 0 else np.full(grid.size, 1.0 / grid.size)


def marginal_distributions(layout: TableLayout, one_way: Measurement, estimate: MarginalEstimate) -> Marginals:
    """The class-conditional marginals from the released one-way counts.

    Negative cells of a categorical or integer marginal are set to 0; a binned numeric
    marginal is denoised (``denoised_marginal``), or clipped too with ``estimate`` ``"clip"``
    (``MarginalEstimate``); each marginal is normalised (uniform if nothing is left).

    Returns:
        ``{label: {column: probabilities over the column's cells}}``.
    """
    grids = layout.grids
    (noisy,) = one_way.noisy
    blocks = _class_major_blocks(noisy, layout.classes, [grid.size for grid in grids])
    return {
        label: {
            grid.column.name: _marginal(grid, counts, one_way.sigma, estimate)
            for grid, counts in zip(grids, blocks[label], strict=True)
        }
        for label in layout.classes
    }


def class_totals(layout: TableLayout, one_way: Measurement) -> np.ndarray:
    """The released count of every class: its noisy one-way counts summed over every feature's
    cells, over the number of features (at least 0)."""
    (noisy,) = one_way.noisy
    return np.maximum(noisy.reshape(len(layout.classes), -1).sum(axis=1) / len(layout.grids), 0.0)


def refined_distributions(
    layout: TableLayout,
    refinement: Measurement,
    parts: int,
    marginals: Marginals,
    totals: np.ndarray,
) -> Marginals:
    """Turn each bin's released sub-cells into a distribution (``refined_within``) given the bin's
    released count (``totals``, the classes' released counts, times its marginal). Rows of the
    bounds' cells are uniform (a value there is the bound).

    Returns:
        ``{label: {column: shape (cells, parts)}}`` for every refined feature.
    """
    grids = [layout.grids[feature] for (feature,) in refinement.queries]
    (noisy,) = refinement.noisy
    blocks = _class_major_blocks(noisy, layout.classes, [grid.bins * parts for grid in grids])
    refined: dict[str, dict[str, np.ndarray]] = {}
    kept = {grid.column.name: 0 for grid in grids}
    for label, total in zip(layout.classes, totals, strict=True):
        refined[label] = {}
        for grid, block in zip(grids, blocks[label], strict=True):
            sub_counts = block.reshape(grid.bins, parts)
            within = np.full((grid.size, parts), 1.0 / parts)
            cell_counts = total * marginals[label][grid.column.name][1 : grid.bins + 1]
            within[1 : grid.bins + 1] = refined_within(sub_counts, cell_counts, refinement.sigma)
            kept[grid.column.name] += np.count_nonzero(suppressed(sub_counts, refinement.sigma))
            refined[label][grid.column.name] = within
    logger.info(
        "DP sub-cells kept, over the classes (a release: safe to show): %s",
        ", ".join(f"{name} {count}" for name, count in kept.items()),
    )
    return refined


def has_spike(grid: CellGrid, marginals: Marginals, share: float) -> bool:
    """Whether released marginals put more than ``share`` of a class in one cell of this feature
    (a capital gain's mass at 0, hours at 40): post-processing."""
    return max(float(marginal[grid.column.name].max()) for marginal in marginals.values()) > share


def consistent_tree_counts(
    one_way: Sequence[np.ndarray],
    one_way_variance: Sequence[np.ndarray],
    edges: Sequence[tuple[int, int]],
    tables: Sequence[np.ndarray],
    table_sigma: float,
    class_totals: np.ndarray,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every feature's coarse counts and every edge table made mutually consistent (post-processing).

    An edge table's sums over its partner are a second noisy measurement of each member's
    coarse marginal. Each feature's coarse counts become the inverse-variance weighted mean of
    its one-way estimate and of those sums (negative cells set to 0, each class scaled to its
    released count when that is positive), and every table gets the least-squares change that gives it exactly those
    margins (add each margin's gap spread evenly over the partner's cells: the consistency step
    of Hay et al. 2010 and Qardaji et al.'s PriView, 2014). The tree drawn from such tables
    implies the marginals the release is raked to, instead of a second, noisier one.

    Written here rather than with Private-PGM (``mbi``): on a churn-sized tree its mirror
    descent takes about 7 s and jax 1.4 s to import, where the whole synthesis takes 1.2 s;
    on a tree of pair tables the closed form gives the same consistency.

    Args:
        one_way: Per feature, estimated counts over its coarse cells, shape (classes, cells).
        one_way_variance: Per feature, the variance of each coarse cell's estimate, shape (cells,).
        edges: The released pairs; ``tables[i]`` has axes (class, first, second) of ``edges[i]``.
        tables: Noisy joint counts of each pair.
        table_sigma: Noise of every cell of ``tables``.
        class_totals: Released count of every class.

    Returns:
        The consistent coarse counts per feature, and the adjusted tables in ``edges``' order.
    """
    weighted = [counts / variance for counts, variance in zip(one_way, one_way_variance, strict=True)]
    weights = [
        np.broadcast_to(1.0 / variance, counts.shape)
        for counts, variance in zip(one_way, one_way_variance, strict=True)
    ]
    for (first, second), table in zip(edges, tables, strict=True):
        for member, partner_cells, sums in (
            (first, table.shape[2], table.sum(axis=2)),
            (second, table.shape[1], table.sum(axis=1)),
        ):
            variance = partner_cells * table_sigma**2
            weighted[member] = weighted[member] + sums / variance
            weights[member] = weights[member] + 1.0 / variance
    target = class_totals[:, None]
    combined = []
    for numerator, denominator in zip(weighted, weights, strict=True):
        counts = np.maximum(numerator / denominator, 0.0)
        totals = counts.sum(axis=1, keepdims=True)
        scaled = (totals > 0) & (target > 0)  # a class whose noisy count is not positive keeps its estimate
        combined.append(np.where(scaled, counts * target / np.where(scaled, totals, 1.0), counts))
    adjusted = []
    for (first, second), table in zip(edges, tables, strict=True):
        rows, columns = table.shape[1], table.shape[2]
        row_gap = combined[first] - table.sum(axis=2)
        column_gap = combined[second] - table.sum(axis=1)
        total_gap = row_gap.sum(axis=1)
        adjusted.append(
            table
            + row_gap[:, :, None] / columns
            + column_gap[:, None, :] / rows
            - total_gap[:, None, None] / (rows * columns)
        )
    return combined, adjusted


def rescaled_within_coarse(fine: np.ndarray, mapping: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """A fine distribution rescaled so its coarse cells (``mapping``) hold the shares of ``coarse``
    counts, keeping its shape within each coarse cell; a coarse cell it leaves empty stays empty."""
    current = np.bincount(mapping, weights=fine, minlength=len(coarse))
    target = coarse / coarse.sum() if coarse.sum() > 0 else current
    scaled = fine * np.where(current > 0, target / np.where(current > 0, current, 1.0), 0.0)[mapping]
    return scaled / scaled.sum() if scaled.sum() > 0 else fine

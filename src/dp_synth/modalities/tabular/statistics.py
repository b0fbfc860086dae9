"""The tabular generator's DP statistics: the budget split, the Gaussian releases, their records.

The statistics are measured once with the Gaussian mechanism and paid from the run's budget
(``dp.generator_share``): a plan grants them one noise ``sigma`` for the L2 sensitivity
``sqrt(features)`` of the one-way marginals, and ``release_plan`` splits it over up to seven
releases (located bounds, one-way marginals, sub-cells, dependence scores, edge tables,
interaction scores, clique tables) so that their mu squared adds up to the same total. Every release is kept as a
``Measurement``; the generator reads the ``TabularStatistics`` estimated from them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from dp_synth.modalities.tabular.cells import TableLayout
from dp_synth.modalities.tabular.dependency_tree import DependencyTree, feature_pairs, feature_triples
from dp_synth.modalities.tabular.schema import TableSchema
from dp_synth.pe.engine import PrivateRows, private_rows
from dp_synth.pe.noise import Noise, as_source

TREE_BUDGET = {"one_way": 0.4, "scores": 0.1, "edges": 0.5}
"""How the tree generator splits the statistics' budget (shares of its mu squared) among its
three Gaussian releases: one-way marginals, dependence scores, edge tables."""

INTERACTION_BUDGET = {"one_way": 0.38, "scores": 0.05, "edges": 0.47, "interaction_scores": 0.02, "cliques": 0.08}
"""The split when the tree also looks for 3-way interactions (``interactions`` > 0): two more
releases, the interaction score of every triple and the chosen cliques' tables."""

Marginals = dict[str, dict[str, np.ndarray]]
"""Released class-conditional distributions, ``marginals[label][column]`` over the column's cells
(or, refined, over each cell's sub-cells)."""

REFINEMENT_SHARE = 0.15
"""Share of the statistics' mu squared spent on the sub-cells of binned numeric columns when
``refine_cells`` > 1; the other releases' shares shrink in proportion."""

BOUNDS_SHARE = 0.05
"""Share of the statistics' mu squared spent locating where binned numeric columns' data lies
inside their declared bounds (``bounds``) when ``locate_bounds`` is on; the other releases'
shares shrink in proportion. At 10% and 20% the located ranges are tighter and cut more of
skewed columns' tails (suite, seeds 0-2: ann_thyroid's 2-way TVD 0.035 -> 0.041-0.055); 20%
locates spambase's 57 columns, which helps generous bounds and costs documented ones more
(docs/benchmarks.md, "Declared bounds")."""


@dataclass(frozen=True)
class Release:
    """The noise of one statistics release and the L2 sensitivity it is granted for.

    Attributes:
        sigma: Standard deviation of the Gaussian noise added to each value.
        sensitivity: L2 sensitivity of the whole release (one record added or removed).
    """

    sigma: float
    sensitivity: float


@dataclass(frozen=True)
class Measurement:
    """One Gaussian release of the statistics: what was measured and what came out.

    Attributes:
        name: The release, a key of ``release_plan``: ``"bounds"``, ``"one_way"``,
            ``"refinement"``, ``"scores"``, ``"edges"``, ``"interaction_scores"`` or ``"cliques"``.
        queries: The features measured, as indices into the schema's features: ``bounds``,
            ``one_way`` and ``refinement``, each feature (``(j,)``) they count; ``scores`` and
            ``interaction_scores``, every pair and triple scored; ``edges`` and ``cliques``,
            the pairs and triples whose tables were released (none if none was chosen).
        noisy: The released arrays, each one draw of the Gaussian mechanism: ``bounds``, the
            counts of every located feature's geometric cells (``bounds.locate_counts``); ``one_way``, the
            class-conditional counts of every feature's cells (class-major, then feature,
            cell); ``refinement``, of every refined feature's sub-cells (class-major, then
            feature, bin, sub-cell); ``scores`` and ``interaction_scores``, one score per
            query; ``edges`` and ``cliques``, one table per query, axes (class, *the members'
            coarse cells or groups).
        sigma: The noise of every value.
        sensitivity: The release's L2 sensitivity.
    """

    name: str
    queries: tuple[tuple[int, ...], ...]
    noisy: tuple[np.ndarray, ...]
    sigma: float
    sensitivity: float


@dataclass(frozen=True)
class TabularStatistics:
    """The released statistics the generator draws from (a DP release: safe to save).

    Attributes:
        marginals: Noisy class-conditional marginals, ``marginals[label][column]`` a
            probability vector over the column's cells (see ``estimation.marginal_distributions``).
        refined: With ``refine_cells`` > 1, ``refined[label][column]`` of every binned feature,
            shape (cells, refine_cells): a distribution over each cell's sub-cells (rows of the
            bounds' cells unused); else ``None``.
        tree: The released dependency tree (``structure="tree"``), else ``None``.
        measurements: Every Gaussian release they were estimated from, in the order drawn.
        schema: The domain the other statistics were counted in: the declared schema with the
            located bounds of ``bounds.located_schema`` (the declared one when none was located).
        warnings: What would help where declared bounds are far wider than the located ones
            (``bounds.loose_bounds_warnings``): public, like the plan's warnings.
    """

    marginals: Marginals
    refined: Marginals | None
    tree: DependencyTree | None
    measurements: tuple[Measurement, ...]
    schema: TableSchema
    warnings: tuple[str, ...] = ()


def located_bounds(statistics: TabularStatistics) -> dict[str, tuple[float, float]]:
    """The domain of each column whose bounds the statistics located (``bounds``), by name:
    a DP release, safe to log."""
    features = [query[0] for m in statistics.measurements if m.name == "bounds" for query in m.queries]
    columns = [statistics.schema.features[feature] for feature in features]
    return {column.name: (column.low, column.high) for column in columns}


def release_plan(
    sigma: float, features: int, *, tree: bool, interactions: int, refined_features: int, located_features: int = 0
) -> dict[str, Release]:
    """The noise of each statistics release, given the plan's ``sigma`` for sensitivity
    ``sqrt(features)`` = S.

    A release of sensitivity D_k and share f_k gets ``sigma * D_k / (S sqrt(f_k))``, so its
    (D_k / sigma_k)^2 is f_k (S / sigma)^2 and the shares add up to the plan's total.

    Args:
        sigma: The plan's noise for the statistics.
        features: Number of features d: the one-way marginals' sensitivity is sqrt(d).
        tree: Whether a dependency tree is measured (it needs at least 2 features).
        interactions: At most this many interaction cliques (they need the tree and at least
            3 features; 0: none).
        refined_features: Features whose bins' sub-cells are released (0: none).
        located_features: Features whose data is located inside their declared bounds
            (``bounds``; 0: none).
    """
    sensitivities = {"one_way": math.sqrt(features)}
    shares: Mapping[str, float] = {"one_way": 1.0}
    if tree and features >= 2:
        sensitivities["scores"] = math.sqrt(len(feature_pairs(features)))
        sensitivities["edges"] = math.sqrt(features - 1)
        shares = TREE_BUDGET
        if interactions and features >= 3:
            sensitivities["interaction_scores"] = math.sqrt(len(feature_triples(features)))
            sensitivities["cliques"] = math.sqrt(min(interactions, features // 3))
            shares = INTERACTION_BUDGET
    if refined_features:
        sensitivities["refinement"] = math.sqrt(refined_features)
        shares = {
            **{name: share * (1.0 - REFINEMENT_SHARE) for name, share in shares.items()},
            "refinement": REFINEMENT_SHARE,
        }
    if located_features:
        sensitivities["bounds"] = math.sqrt(located_features)
        shares = {**{name: share * (1.0 - BOUNDS_SHARE) for name, share in shares.items()}, "bounds": BOUNDS_SHARE}
    return {
        name: Release(sigma * sensitivity / (math.sqrt(features) * math.sqrt(shares[name])), sensitivity)
        for name, sensitivity in sensitivities.items()
    }


def gaussian_release(
    name: str,
    queries: Sequence[tuple[int, ...]],
    counts: Sequence[np.ndarray],
    release: Release,
    rng: Noise,
) -> Measurement:
    """The Gaussian mechanism: each array of ``counts`` plus noise of standard deviation sigma
    per value, in order; the arrays are one release of L2 sensitivity ``release.sensitivity``
    (stated for add/remove: larger under replace-one, which only makes the secure noise's rounding
    charge conservative, see ``noise.secure_gaussian``). Counts are integers; the dependence and
    interaction scores are not, and are rounded to the secure noise's lattice like any value."""
    noisy = as_source(rng).add_each(counts, release.sigma, release.sensitivity)
    return Measurement(name, tuple(queries), noisy, release.sigma, release.sensitivity)


def marginal_counts(layout: TableLayout, private: pd.DataFrame) -> np.ndarray:
    """Class-conditional one-way counts of every feature, concatenated (class-major).

    One record falls in exactly one class and in one cell of each of the d features, so
    adding or removing it changes this vector by exactly sqrt(d) in L2 norm.
    """
    blocks = [
        np.bincount(grid.cells(rows[grid.column.name]), minlength=grid.size)
        for rows in layout.rows_by_class(private)
        for grid in layout.grids
    ]
    return np.concatenate(blocks).astype(np.float64)


def refined_counts(layout: TableLayout, features: Sequence[int], parts: int, private: pd.DataFrame) -> np.ndarray:
    """Class-conditional counts of the sub-cells of these binned features, ``parts`` equal-width
    ones per bin, concatenated (class-major, then feature, bin, sub-cell).

    A record falls in at most one sub-cell of each refined feature (none when the value is
    on a bound), so adding or removing it changes this vector by at most sqrt(refined
    features) in L2 norm.
    """
    grids = [layout.grids[feature] for feature in features]
    blocks = []
    for rows in layout.rows_by_class(private):
        for grid in grids:
            cells, within = grid.sub_cells(rows[grid.column.name], parts)
            blocks.append(np.bincount((cells - 1) * parts + within, minlength=grid.bins * parts))
    return np.concatenate(blocks).astype(np.float64) if blocks else np.zeros(0)


def measure_one_way(
    layout: TableLayout, private: pd.DataFrame | PrivateRows, release: Release, rng: Noise
) -> Measurement:
    """Release ``marginal_counts(private) + N(0, sigma^2)``, counted where the engine holds the rows."""
    queries = [(feature,) for feature in range(len(layout.grids))]
    counts = private_rows(private).total(partial(marginal_counts, layout))
    return gaussian_release("one_way", queries, [counts], release, rng)


def measure_refinement(
    layout: TableLayout,
    features: Sequence[int],
    parts: int,
    private: pd.DataFrame | PrivateRows,
    release: Release,
    rng: Noise,
) -> Measurement:
    """Release ``refined_counts(private) + N(0, sigma^2)`` of these binned features, counted
    where the engine holds the rows."""
    queries = [(feature,) for feature in features]
    counts = private_rows(private).total(partial(refined_counts, layout, tuple(features), parts))
    return gaussian_release("refinement", queries, [counts], release, rng)

"""Measuring the dependency tree: its releases (``dependency_tree``, steps 1 to 5) and the public
choices around them (coarse cells, the forest, the interaction cliques).

The dependence scores and the edge tables are released on the coarse cells of every feature;
with ``interactions``, rows drawn from the released tree predict every triple, the interaction
scores say where it errs, and the best disjoint triples' tables are released too. Every release
is a ``statistics.Measurement``; everything between them is post-processing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from dp_synth.modalities.tabular.cells import TableLayout
from dp_synth.modalities.tabular.dependency_tree import (
    EXPECTED_ABS_GAUSSIAN,
    DependencyTree,
    NoisyClique,
    PairEstimate,
    coarse_cells,
    dependence_scores,
    disjoint_best,
    equal_mass_cells,
    feature_pairs,
    feature_triples,
    interaction_scores,
    lost_edge_weight,
    maximum_spanning_forest,
    occupied_width_cells,
    query_tables,
)
from dp_synth.modalities.tabular.estimation import consistent_tree_counts, has_spike, rescaled_within_coarse
from dp_synth.modalities.tabular.schema import category_codes
from dp_synth.modalities.tabular.statistics import Marginals, Measurement, Release, gaussian_release
from dp_synth.pe.engine import PrivateRows, private_rows
from dp_synth.pe.noise import Noise, generator_of

logger = logging.getLogger(__name__)

PairSplit = Literal["auto", "mass", "width"]
"""How a numeric feature's fine cells are grouped into the tree's ``pair_cells`` coarse cells:
``mass``: of about equal mass in the released marginals (``dependency_tree.equal_mass_cells``);
``width``: of equal width over the fine cells where the released marginals hold data
(``dependency_tree.occupied_width_cells``); ``auto``: by mass for a feature whose marginals have
a spike (``estimation.has_spike``), by width otherwise."""

INTERACTION_NUMERIC_CELLS = 4
"""A numeric feature enters an interaction table in at most this many groups of its coarse cells
(a categorical keeps every category): a 3-way table must stay small to rise above its noise."""

INTERACTION_MODEL_ROWS = 100_000
"""Rows drawn from the released tree to predict every triple's counts (public post-processing)."""

_PRIOR_TRACE = 1e-6
"""Weight of the one-way product in a clique's prior, so a cell the tree's rows missed stays possible."""


def mapped_sizes(maps: Sequence[np.ndarray]) -> list[int]:
    """The cells of every feature after its map (a fine -> coarse cell array, numbered from 0)."""
    return [int(mapping.max()) + 1 for mapping in maps]


@dataclass(frozen=True)
class QueryCounts:
    """Counts of private rows in groups of features (pairs, triples), one partition at a time.

    Called on a partition of the private table, it returns the class-conditional joint counts of
    every query's features in public cells, flattened into one array; the engine sums those
    over the partitions (``engine.PrivateRows.total``), ``measure`` cuts the sum back into tables.

    Attributes:
        layout: The classes and every feature's grid of fine cells.
        maps: Every feature's fine cell -> the cell it is counted in (public).
        queries: The groups of features, each in its table's axis order.
    """

    layout: TableLayout
    maps: tuple[np.ndarray, ...]
    queries: tuple[tuple[int, ...], ...]

    @property
    def sizes(self) -> list[int]:
        """Cells of every feature after its map."""
        return mapped_sizes(self.maps)

    def __call__(self, partition: pd.DataFrame) -> np.ndarray:
        cells = np.column_stack(self.layout.coarse_cells_of(partition, self.maps)).reshape(len(partition), -1)
        classes = category_codes(partition[self.layout.label_column], self.layout.schema.label)
        tables = query_tables(self.queries, cells, classes, len(self.layout.classes), self.sizes)
        return np.concatenate([table.ravel() for table in tables]) if tables else np.zeros(0)

    def measure(self, private: pd.DataFrame | PrivateRows) -> list[np.ndarray]:
        """Every query's table, axes (class, *members), counted where the engine holds the rows."""
        flat = private_rows(private).total(self)
        sizes, classes = self.sizes, len(self.layout.classes)
        shapes = [(classes, *(sizes[member] for member in query)) for query in self.queries]
        ends = np.cumsum([math.prod(shape) for shape in shapes])
        return [part.reshape(shape) for part, shape in zip(np.split(flat, ends[:-1]), shapes, strict=True)]


@dataclass(frozen=True)
class TreeDesign:
    """What the dependency tree measures and how (public settings; see ``TabularModality``).

    Attributes:
        layout: The classes and every feature's grid of fine cells.
        pair_cells: Coarse cells of a numeric feature in the pair tables.
        pair_split: How those coarse cells group a numeric feature's fine cells, ``PairSplit``.
        pair_estimate: How a noisy pair table becomes a conditional (``dependency_tree.PairEstimate``).
        spike_share: A released marginal above this share of a class in one cell has a spike
            (``estimation.has_spike``).
        interactions: At most this many interaction cliques (0: none).
    """

    layout: TableLayout
    pair_cells: int
    pair_split: PairSplit
    pair_estimate: PairEstimate
    spike_share: float
    interactions: int

    def measure(
        self,
        private: pd.DataFrame | PrivateRows,
        marginals: Marginals,
        class_totals: np.ndarray,
        plan: Mapping[str, Release],
        rng: Noise,
    ) -> tuple[DependencyTree, Marginals, list[Measurement]]:
        """Release the dependence scores, choose the forest, release its edge tables; with
        ``interactions`` (``plan`` has ``"cliques"``), then release the interaction scores and
        the chosen cliques' tables.

        Returns:
            The released tree; the marginals made consistent with its edge tables
            (``estimation.consistent_tree_counts``); the releases, in the order drawn.
        """
        maps = self._pair_cell_maps(marginals, class_totals)
        sizes = mapped_sizes(maps)
        one_way = self._coarse_one_way(marginals, maps)
        expected = [distribution * class_totals[:, None] for distribution in one_way]
        pairs = feature_pairs(len(sizes))
        pair_tables = QueryCounts(self.layout, tuple(maps), tuple(pairs)).measure(private)
        scores = gaussian_release("scores", pairs, [dependence_scores(pair_tables, expected)], plan["scores"], rng)
        table_noise = [self._table_noise(sizes, pair, plan["edges"].sigma) for pair in pairs]
        pair_weights = scores.noisy[0] - np.asarray(table_noise)
        edges = maximum_spanning_forest(pair_weights, len(sizes))
        edge_pairs = [pairs.index(edge) for edge in edges]
        counts = [pair_tables[index] for index in edge_pairs]
        tables = gaussian_release("edges", edges, counts, plan["edges"], rng)
        marginals, one_way, edge_tables = self._consistent(
            marginals, maps, expected, edges, tables.noisy, plan, class_totals
        )
        names = [grid.column.name for grid in self.layout.grids]
        logger.info(
            "DP dependency tree (a release: safe to show): %s",
            ", ".join(f"{names[first]} -- {names[second]}" for first, second in edges) or "no pair beats its noise",
        )
        tree = DependencyTree.from_noisy_tables(
            edges, edge_tables, one_way, tables.sigma, maps, estimate=self.pair_estimate
        )
        if "cliques" not in plan:
            return self._with_monotone(tree, class_totals), marginals, [scores, tables]
        weighted_edges = [(edge, float(pair_weights[index])) for edge, index in zip(edges, edge_pairs, strict=True)]
        cliques, interactions = self._measure_interactions(tree, weighted_edges, private, maps, class_totals, plan, rng)
        if cliques:
            tree = DependencyTree.from_noisy_tables(
                edges, edge_tables, one_way, tables.sigma, maps, cliques, plan["cliques"].sigma, self.pair_estimate
            )
        return self._with_monotone(tree, class_totals), marginals, [scores, tables, *interactions]

    def _with_monotone(self, tree: DependencyTree, class_totals: np.ndarray) -> DependencyTree:
        """The tree with its monotone edges marked (``DependencyTree.with_monotone``, between
        numeric features), logged: post-processing of the released tree."""
        grids = self.layout.grids
        tree = tree.with_monotone([grid.column.is_numeric for grid in grids], class_totals)
        relations = [
            f"{grids[tree.parents[child]].column.name} -- {grids[child].column.name} "
            f"({'increasing' if direction > 0 else 'decreasing'})"
            for child, direction in enumerate(tree.monotone)
            if direction
        ]
        if relations:
            logger.info("DP monotone relations (post-processing of the tree: safe to show): %s", ", ".join(relations))
        return tree

    def _consistent(
        self,
        marginals: Marginals,
        maps: Sequence[np.ndarray],
        expected: Sequence[np.ndarray],
        edges: Sequence[tuple[int, int]],
        tables: Sequence[np.ndarray],
        plan: Mapping[str, Release],
        class_totals: np.ndarray,
    ) -> tuple[Marginals, list[np.ndarray], list[np.ndarray]]:
        """The marginals and edge tables estimated jointly (post-processing): every feature's
        coarse counts combined from its one-way release and the edge tables it is in, each fine
        marginal rescaled to them within its coarse cells, and each table adjusted to them.

        Returns:
            The consistent marginals, their coarse distributions per feature and the adjusted
            edge tables.
        """
        variance = [np.bincount(mapping) * plan["one_way"].sigma ** 2 for mapping in maps]
        coarse_counts, adjusted = consistent_tree_counts(
            expected, variance, edges, tables, plan["edges"].sigma, class_totals
        )
        consistent = {
            label: {
                grid.column.name: rescaled_within_coarse(
                    marginals[label][grid.column.name], maps[feature], coarse_counts[feature][klass]
                )
                for feature, grid in enumerate(self.layout.grids)
            }
            for klass, label in enumerate(self.layout.classes)
        }
        return consistent, self._coarse_one_way(consistent, maps), adjusted

    def _measure_interactions(
        self,
        tree: DependencyTree,
        weighted_edges: Sequence[tuple[tuple[int, int], float]],
        private: pd.DataFrame | PrivateRows,
        maps: Sequence[np.ndarray],
        class_totals: np.ndarray,
        plan: Mapping[str, Release],
        rng: Noise,
    ) -> tuple[list[NoisyClique], list[Measurement]]:
        """Release the interaction score of every triple against rows drawn from ``tree``, choose
        the best disjoint triples, release their tables (in groups of coarse cells).

        A triple's weight is its released score beyond its noise, less the weight of the tree
        edges its clique would drop (``dependency_tree.lost_edge_weight``; ``weighted_edges``:
        the tree's edges, heaviest first, with their released dependence scores beyond noise).
        Both scores are L1 errors in counts of class-conditional tables: what the clique would
        correct, against what the dropped edges held. Without the cost, magic's clique
        `FLength x FSize x FAsym` dropped the edge `FLength -- FConc`, and the release drew
        `FConc` independently of `FLength` (2-way TVD of that pair 0.33 against 0.13).

        Returns:
            Per chosen triple, what ``DependencyTree.from_noisy_tables`` takes as a clique; and
            the two releases.
        """
        sizes = mapped_sizes(maps)
        triples = feature_triples(len(sizes))
        groups = [
            coarse_cells(size, INTERACTION_NUMERIC_CELLS) if grid.column.is_numeric else np.arange(size)
            for grid, size in zip(self.layout.grids, sizes, strict=True)
        ]
        group_sizes = mapped_sizes(groups)
        grouped_maps = tuple(group[mapping] for group, mapping in zip(groups, maps, strict=True))
        triple_tables = QueryCounts(self.layout, grouped_maps, tuple(triples)).measure(private)
        model = [
            tree.draw_coarse(klass, int(rows), generator_of(rng)) for klass, rows in enumerate(model_rows(class_totals))
        ]
        model_classes = np.repeat(np.arange(len(model)), [len(rows) for rows in model])
        model_cells = np.vstack(model)
        model_grouped = np.column_stack([group[model_cells[:, feature]] for feature, group in enumerate(groups)])
        scores, sampling = interaction_scores(triple_tables, model_grouped, model_classes, class_totals, group_sizes)
        released = gaussian_release("interaction_scores", triples, [scores], plan["interaction_scores"], rng)
        table_noise = np.asarray([self._table_noise(group_sizes, triple, plan["cliques"].sigma) for triple in triples])
        weights = released.noisy[0] - sampling - table_noise
        for index in np.flatnonzero(weights > 0):  # a cost is >= 0: a triple at or below 0 is never taken
            weights[index] -= lost_edge_weight(weighted_edges, len(sizes), triples[index])
        best = disjoint_best(weights, triples, self.interactions)
        chosen = [triples[index] for index in best]
        names = [grid.column.name for grid in self.layout.grids]
        logger.info(
            "DP interactions (a release: safe to show): %s",
            "; ".join(" x ".join(names[member] for member in triple) for triple in chosen)
            or "no triple beats its noise",
        )
        counts = [triple_tables[index] for index in best]
        tables = gaussian_release("cliques", chosen, counts, plan["cliques"], rng)
        cliques = [
            NoisyClique(
                triple,
                table,
                tuple(groups[member] for member in triple),
                clique_prior(triple, model_cells, model_classes, sizes, tree.one_way),
            )
            for triple, table in zip(chosen, tables.noisy, strict=True)
        ]
        return cliques, [released, tables]

    def _pair_cell_maps(self, marginals: Marginals, class_totals: np.ndarray) -> list[np.ndarray]:
        """Fine cell -> coarse cell of every feature for a new tree: categoricals keep their
        categories; a numeric feature gets at most ``pair_cells`` contiguous cells, split as
        ``pair_split`` says, from the released marginals pooled over classes (post-processing).
        By mass, a spike at 0 becomes a coarse cell of its own instead of sharing one with the
        smallest positive values, and the rest is split evenly; by width, the cells span only
        the range where the marginals hold data."""
        maps = []
        for grid in self.layout.grids:
            if not grid.column.is_numeric:
                maps.append(np.arange(grid.size))
                continue
            classes = zip(self.layout.classes, class_totals, strict=True)
            pooled = sum(total * marginals[label][grid.column.name] for label, total in classes)
            by_mass = self.pair_split == "mass" or (
                self.pair_split == "auto" and has_spike(grid, marginals, self.spike_share)
            )
            split = equal_mass_cells if by_mass else occupied_width_cells
            maps.append(split(pooled, self.pair_cells))
        return maps

    def _coarse_one_way(self, marginals: Marginals, maps: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per feature, the released class-conditional distributions over coarse cells."""
        return [
            np.stack(
                [np.bincount(mapping, weights=marginals[label][grid.column.name]) for label in self.layout.classes]
            )
            for grid, mapping in zip(self.layout.grids, maps, strict=True)
        ]

    def _table_noise(self, sizes: Sequence[int], members: Sequence[int], sigma: float) -> float:
        """Expected L1 noise of a class-conditional table over these features (public)."""
        return len(self.layout.classes) * math.prod(sizes[member] for member in members) * sigma * EXPECTED_ABS_GAUSSIAN


def clique_prior(
    members: Sequence[int],
    model_cells: np.ndarray,
    model_classes: np.ndarray,
    sizes: Sequence[int],
    one_way: Sequence[np.ndarray],
) -> np.ndarray:
    """How a clique spreads a group over its coarse cells: the tree's own joint law of the
    members (counts of the rows drawn from it), plus a trace of the one-way product so that
    no cell is impossible. Public post-processing of earlier releases."""
    (counts,) = query_tables([tuple(members)], model_cells, model_classes, len(one_way[0]), sizes)
    product = one_way[members[0]]
    for member in members[1:]:
        product = product[..., None] * one_way[member].reshape(len(product), *([1] * (product.ndim - 1)), -1)
    totals = np.maximum(counts.sum(axis=tuple(range(1, counts.ndim)), keepdims=True), 1.0)
    return counts / totals + _PRIOR_TRACE * product + 1e-300


def model_rows(class_totals: np.ndarray) -> np.ndarray:
    """Rows per class drawn from the tree to predict interaction counts: ``INTERACTION_MODEL_ROWS``
    split in proportion to the released class counts (at least 1 each)."""
    shares = (
        class_totals / class_totals.sum()
        if class_totals.sum() > 0
        else np.full(len(class_totals), 1 / len(class_totals))
    )
    return np.maximum(np.round(shares * INTERACTION_MODEL_ROWS), 1).astype(np.int64)

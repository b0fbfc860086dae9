"""A DP dependency tree over the features of a table, within each class.

The independent generator draws every feature from its noisy class-conditional one-way
marginal, so it knows nothing of pairs (education and its number of years, marital status
and relationship) and PE's votes must rebuild every pair from scratch. The tree generator
adds, in the manner of MST but on PE's own budget, one parent per feature:

1. **Dependence scores** (Gaussian, sensitivity 1 per pair): for every pair of features,
   the L1 distance between its class-conditional joint counts and the counts that the already
   released one-way marginals predict under independence. One record moves one cell of each
   pair's joint table by 1, so each score moves by at most 1 and the vector of all
   ``d (d - 1) / 2`` scores by at most ``sqrt(d (d - 1) / 2)`` in L2.
2. **A maximum spanning forest** on the noisy scores minus the expected L1 noise of measuring
   each pair (post-processing): a pair is worth measuring only if its dependence exceeds the
   noise its table would carry.
3. **Edge tables** (Gaussian, sensitivity ``sqrt(d - 1)``): the class-conditional joint counts
   of every chosen (parent, child) pair; one record is one cell of each of at most ``d - 1``
   tables.

Numeric features enter the pair tables through coarse cells (``coarse_cells``) so a table
stays small; the fine one-way marginal still decides the value within a coarse cell.

A tree knows pairs only: a label that is the XOR of three columns shows in no pair. Optionally
two more releases look for such interactions, as AIM's selection step does:

4. **Interaction scores** (Gaussian, sensitivity 1 per triple): for every triple of features,
   the L1 distance between its class-conditional joint counts and what rows drawn from the
   released tree predict (``interaction_scores``).
5. **Clique tables**: the class-conditional joint counts of the best disjoint triples
   (``disjoint_best``), in groups of coarse cells; each becomes a ``Clique`` drawn jointly, and
   the forest keeps only the pairs that close no cycle through a clique.

Everything after the releases is post-processing.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from networkx.utils import UnionFind
from scipy import special

EXPECTED_ABS_GAUSSIAN = math.sqrt(2.0 / math.pi)
"""E|Z| for a standard normal Z: the expected L1 noise per cell is this times sigma."""

_PRIOR_FLOOR = 1e-3
"""Smallest prior mean of a cell in ``posterior_counts`` (a cell the prior rules out)."""

_LOG_FLOOR = 1e-9
"""Probabilities are floored at this before logs in a Gibbs step (a cell no table allows)."""

MONOTONE_FIT = 0.5
"""A tree edge between two ordered features is drawn as a monotone relation (``monotone_direction``)
when the monotone coupling of its released marginals is off its released joint by at most this
share of what independence is off it (both L1, classes summed). On the suite (seed 0) churn's
four minutes -- charge edges (charge is a fixed rate times minutes) score 0.20-0.32 and magic's
``FConc -- FConc1`` 0.35; every other numeric edge scores above 0.57 (spambase's 4 x 4 tables of
spiked columns, 0.57-0.69; magic's others above 1.2)."""

MONOTONE_MIN_CELLS = 3
"""A relation is called monotone only where each feature has at least this many coarse cells
holding ``MONOTONE_MIN_SHARE`` of the rows: any two cells of each lie on a monotone line, so a
pair whose data sits in two cells (zero or not, as spambase's word frequencies declared ten times
too wide) would always pass. With generous bounds three such spambase edges scored 0.28-0.50, and
coupling them cost accuracy (random forest 0.870 -> 0.856, seeds 0-2)."""

MONOTONE_MIN_SHARE = 0.05
"""The share of the rows a coarse cell must hold to count towards ``MONOTONE_MIN_CELLS``."""

SUPPRESSED_NOISE_MULTIPLE = 2.0
"""Noisy table cells below this many sigmas are set to 0 (post-processing) in a clique's table,
in a bin's sub-cells (``tabular.refined_within``) and, with the ``"suppress"`` estimate, in a
pair's: a cell of pure noise then rarely survives, so conditionals do not spread mass over
impossible pairs."""

PairEstimate = Literal["posterior", "suppress"]
"""How a pair's noisy table becomes a conditional: ``posterior`` means (``posterior_counts``) or
cells below ``SUPPRESSED_NOISE_MULTIPLE`` sigma set to 0."""


def coarse_cells(size: int, max_cells: int) -> np.ndarray:
    """Map each of ``size`` fine cells to one of at most ``max_cells`` contiguous coarse cells.

    A column with at most twice as many fine cells keeps them all: merging two of sixteen
    values would merge, say, two education levels that their number of years tells apart.
    """
    if size <= 2 * max_cells:
        return np.arange(size)
    return np.arange(size) * max_cells // size


def occupied_width_cells(mass: np.ndarray, max_cells: int) -> np.ndarray:
    """Map each fine cell to one of at most ``max_cells`` contiguous coarse cells of equal width
    over the fine cells from the first to the last that hold mass; the empty cells beyond either
    end join the coarse cell at that end.

    A column whose data fills a part of its range (a ratio in 0-1 of a range located to
    0.04-2.5) keeps ``max_cells`` cells across its data instead of a third of them. Without
    mass it falls back to ``coarse_cells`` over the whole range.
    """
    held = np.flatnonzero(np.asarray(mass, dtype=np.float64) > 0)
    if held.size == 0:
        return coarse_cells(len(mass), max_cells)
    first, last = int(held[0]), int(held[-1])
    inside = coarse_cells(last - first + 1, max_cells)
    return np.concatenate([np.zeros(first, dtype=np.int64), inside, np.full(len(mass) - last - 1, inside[-1])])


def equal_mass_cells(mass: np.ndarray, max_cells: int) -> np.ndarray:
    """Map each fine cell to one of at most ``max_cells`` contiguous coarse cells of about equal mass.

    Cells are taken in order; a coarse cell closes once the next cell's midpoint would carry it
    past an even share of the mass not yet assigned, so a spike (a capital gain's mass at 0) is a
    coarse cell alone and the rest is shared out again evenly. A column with at most twice as
    many fine cells keeps them all, as in ``coarse_cells``; without mass it falls back to it.
    """
    size = len(mass)
    mass = np.maximum(np.asarray(mass, dtype=np.float64), 0.0)
    if size <= 2 * max_cells or mass.sum() <= 0:
        return coarse_cells(size, max_cells)
    mapping = np.empty(size, dtype=np.int64)
    coarse, held, unassigned = 0, 0.0, float(mass.sum())
    for cell in range(size):
        mapping[cell] = coarse
        held += mass[cell]
        share = unassigned / (max_cells - coarse)
        if cell + 1 < size and coarse + 1 < max_cells and held > 0 and held + mass[cell + 1] / 2 > share:
            coarse, unassigned, held = coarse + 1, unassigned - held, 0.0
    return mapping


def feature_pairs(features: int) -> list[tuple[int, int]]:
    """Every unordered pair of feature indices, in a fixed order (the scores' order)."""
    return list(itertools.combinations(range(features), 2))


def feature_triples(features: int) -> list[tuple[int, int, int]]:
    """Every unordered triple of feature indices, in a fixed order (the interaction scores' order)."""
    return list(itertools.combinations(range(features), 3))


def joint_counts(columns: Sequence[np.ndarray], classes: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Counts of (class, cell of each column), shape ``shape`` = (classes, *cells per column)."""
    flat = classes.astype(np.int64)
    for cells, size in zip(columns, shape[1:], strict=True):
        flat = flat * size + cells
    return np.bincount(flat, minlength=math.prod(shape)).reshape(shape).astype(np.float64)


def query_tables(
    queries: Sequence[tuple[int, ...]], cells: np.ndarray, classes: np.ndarray, class_count: int, sizes: Sequence[int]
) -> list[np.ndarray]:
    """The class-conditional joint counts of each query's features, axes (class, *members).

    Args:
        queries: Groups of features (pairs, triples), each in its table's axis order.
        cells: Every row's cell in every feature, shape (rows, features).
        classes: Every row's class index.
        class_count: Number of classes.
        sizes: Cells of every feature.
    """
    columns = np.ascontiguousarray(np.asarray(cells, dtype=np.int64).T)  # contiguous: 4x faster than strided
    return [
        joint_counts(
            [columns[member] for member in query], classes, (class_count, *(sizes[member] for member in query))
        )
        for query in queries
    ]


def dependence_scores(pair_tables: Sequence[np.ndarray], expected_one_way: Sequence[np.ndarray]) -> np.ndarray:
    """L1 distance of every pair's class-conditional joint counts from independence.

    Args:
        pair_tables: The joint counts of every pair of ``feature_pairs(d)`` over the coarse
            cells, axes (class, first, second) (``query_tables``).
        expected_one_way: Per feature, the released expected counts, shape (classes, size):
            row c is the class's released count times its released one-way distribution.

    Returns:
        One score per pair; each moves by at most 1 when a record is added or removed (the
        expected counts are earlier releases, fixed here).
    """
    scores = []
    for (first, second), table in zip(feature_pairs(len(expected_one_way)), pair_tables, strict=True):
        totals = expected_one_way[first].sum(axis=1, keepdims=True)
        independent = (
            expected_one_way[first][:, :, None]
            * (expected_one_way[second] / np.maximum(expected_one_way[second].sum(axis=1, keepdims=True), 1e-12))[
                :, None, :
            ]
        )
        independent = np.where(totals[:, :, None] > 0, independent, 0.0)
        scores.append(np.abs(table - independent).sum())
    return np.asarray(scores)


def interaction_scores(
    triple_tables: Sequence[np.ndarray],
    model_cells: np.ndarray,
    model_classes: np.ndarray,
    class_totals: np.ndarray,
    sizes: Sequence[int],
) -> tuple[np.ndarray, np.ndarray]:
    """L1 distance of every triple's class-conditional joint counts from what a model predicts.

    Args:
        triple_tables: The joint counts of every triple of ``feature_triples(d)``, axes
            (class, *members) (``query_tables``).
        model_cells, model_classes: Rows drawn from a released model (public), in the same cells.
        class_totals: Released count of every class; the model's counts are scaled to them.
        sizes: Cells of every feature.

    Returns:
        ``(scores, expected)``, one of each per triple. A score moves by at most 1 when a record
        is added or removed (the model is an earlier release, fixed here). ``expected`` is
        public: about what the score would be if the model were exact, from the sampling
        fluctuation of each cell's count (Poisson, mean absolute deviation at most
        ``sqrt(2 lambda / pi)`` and ``2 lambda``) and of the model's own rows.
    """
    drawn = np.maximum(np.bincount(model_classes, minlength=len(class_totals)), 1).astype(np.float64)
    scale = class_totals / drawn
    inflation = 1.0 + float(scale.max(initial=0.0))
    scores, expected = [], []
    model_tables = query_tables(feature_triples(len(sizes)), model_cells, model_classes, len(class_totals), sizes)
    for counts, predicted in zip(triple_tables, model_tables, strict=True):
        predicted *= scale.reshape(-1, 1, 1, 1)
        scores.append(np.abs(counts - predicted).sum())
        expected.append(np.minimum(EXPECTED_ABS_GAUSSIAN * np.sqrt(predicted * inflation), 2.0 * predicted).sum())
    return np.asarray(scores), np.asarray(expected)


def disjoint_best(weights: np.ndarray, groups: Sequence[tuple[int, ...]], limit: int) -> list[int]:
    """Indices of at most ``limit`` groups of features, greedily by weight, that share no feature;
    a group of weight <= 0 is never taken."""
    taken: set[int] = set()
    chosen: list[int] = []
    for index in np.argsort(-weights, kind="stable"):
        if len(chosen) >= limit or weights[index] <= 0:
            break
        if taken.isdisjoint(groups[index]):
            taken.update(groups[index])
            chosen.append(int(index))
    return chosen


def maximum_spanning_forest(
    weights: np.ndarray,
    features: int,
    pairs: Sequence[tuple[int, int]] | None = None,
    merged: Sequence[tuple[int, ...]] = (),
) -> list[tuple[int, int]]:
    """Kruskal's algorithm with these weights, over networkx's union-find (its spanning-tree
    functions order equal weights by the graph's adjacency, not by ``pairs``); pairs of weight
    <= 0 are never taken, so the result may be a forest.

    Args:
        weights: One weight per pair.
        features: Number of features.
        pairs: The pairs the weights belong to; default ``feature_pairs(features)``.
        merged: Groups of features already joined (an interaction clique): no pair inside a
            group, and no pair that would close a cycle through one, is taken.

    Returns:
        The chosen pairs, heaviest first.
    """
    components = UnionFind(range(features))
    for group in merged:
        components.union(*group)
    chosen = []
    pairs = feature_pairs(features) if pairs is None else list(pairs)
    for index in np.argsort(-np.asarray(weights, dtype=np.float64), kind="stable"):
        if weights[index] <= 0:
            break
        first, second = pairs[index]
        if components[first] != components[second]:
            components.union(first, second)
            chosen.append((first, second))
    return chosen


def lost_edge_weight(
    weighted_edges: Sequence[tuple[tuple[int, int], float]], features: int, group: Sequence[int]
) -> float:
    """The summed weight of the forest's edges that a clique over ``group`` would drop.

    ``DependencyTree.from_noisy_tables`` joins a clique's members and keeps the forest's edges
    heaviest first, dropping one that would close a cycle through the clique: a clique whose
    members the forest links only through other features (magic's `FLength` and `FSize`, both
    tied to `FConc`) costs the forest an edge. ``weighted_edges`` are the forest's edges with
    their weights, heaviest first; an edge inside ``group`` is not lost (the clique's table
    holds it).
    """
    components = UnionFind(range(features))
    components.union(*group)
    lost = 0.0
    for (first, second), weight in weighted_edges:
        if first in group and second in group:
            continue
        if components[first] == components[second]:
            lost += weight
        else:
            components.union(first, second)
    return lost


def monotone_coupling(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The joint distribution of two ordered distributions that puts them in the same order:
    cell (i, j) holds the overlap of the i-th quantile interval of ``first`` with the j-th of
    ``second`` (the north-west corner rule). Both marginals are kept, and the cells with mass
    form a staircase. Written here: it is three lines, and POT's ``emd_1d`` (the same plan) is not
    a dependency."""
    upper_first, upper_second = np.cumsum(first), np.cumsum(second)
    lower_first, lower_second = upper_first - first, upper_second - second
    overlap = np.minimum(upper_first[:, None], upper_second[None, :]) - np.maximum(
        lower_first[:, None], lower_second[None, :]
    )
    return np.maximum(overlap, 0.0)


def monotone_direction(counts: np.ndarray) -> int:
    """1 (increasing) or -1 (decreasing) when the joint counts of two ordered features, shape
    (first, second), are a monotone relation up to noise, else 0.

    The counts' L1 distance from the monotone coupling of their own marginals
    (``monotone_coupling``, in each direction) against their L1 distance from independence: the
    relation is monotone when the better direction is off by at most ``MONOTONE_FIT`` of what
    independence is, and each feature spreads over ``MONOTONE_MIN_CELLS`` cells. Post-processing
    of released tables.
    """
    counts = np.maximum(counts, 0.0)
    total = counts.sum()
    if total <= 0:
        return 0
    rows, columns = counts.sum(axis=1) / total, counts.sum(axis=0) / total
    spread = min(np.count_nonzero(rows >= MONOTONE_MIN_SHARE), np.count_nonzero(columns >= MONOTONE_MIN_SHARE))
    if spread < MONOTONE_MIN_CELLS:
        return 0
    dependence = np.abs(counts - total * np.outer(rows, columns)).sum()
    misfit = {
        1: np.abs(counts - total * monotone_coupling(rows, columns)).sum(),
        -1: np.abs(counts - total * monotone_coupling(rows, columns[::-1])[:, ::-1]).sum(),
    }
    direction = min(misfit, key=misfit.__getitem__)
    return direction if dependence > 0 and misfit[direction] <= MONOTONE_FIT * dependence else 0


@dataclass(frozen=True)
class Clique:
    """Features drawn jointly within each class from a released table (an interaction).

    Attributes:
        members: The features, in the table's axis order.
        joint: P(coarse cells of the members | class), shape (classes, *member cells).
    """

    members: tuple[int, ...]
    joint: np.ndarray

    def draw(self, klass: int, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` joint draws of the members' coarse cells, shape (size, members)."""
        table = self.joint[klass]
        flat = rng.choice(table.size, size=size, p=table.ravel())
        return np.column_stack(np.unravel_index(flat, table.shape))

    def conditional(self, member: int, klass: int, coarse: Sequence[np.ndarray], rows: np.ndarray) -> np.ndarray:
        """P(cell of ``member`` | class, the other members' current coarse cells) for ``rows``,
        shape (rows, cells); a row is all zero where the table gives the others no mass."""
        axis = self.members.index(member)
        table = np.moveaxis(self.joint[klass], axis, -1)
        others = tuple(coarse[other][rows] for other in self.members if other != member)
        return table[others]


@dataclass(frozen=True)
class NoisyClique:
    """A released interaction table, before ``DependencyTree.from_noisy_tables`` turns it into a ``Clique``.

    Attributes:
        members: The features, disjoint from every other clique's, in the table's axis order.
        noisy: Noisy joint counts with axes (class, *members) over groups of coarse cells.
        groups: Each member's map from its coarse cells to its groups.
        prior: A public prior over the members' coarse cells with axes (class, *members) that
            spreads each group's probability over its coarse cells; positive everywhere.
    """

    members: tuple[int, ...]
    noisy: np.ndarray
    groups: tuple[np.ndarray, ...]
    prior: np.ndarray


@dataclass(frozen=True)
class DependencyTree:
    """A released forest over the features, its class-conditional conditionals, and the
    released interaction cliques that the forest grows from.

    Attributes:
        parents: ``parents[j]``: the parent feature of feature j, or -1 for a root or a member
            of a clique.
        order: Every feature once, each after its parent (a clique's members together, first
            in their tree).
        conditionals: ``conditionals[j]`` for a feature with a parent: P(coarse cell of j |
            class, coarse cell of its parent), shape (classes, parent cells, cells); a row the
            noisy table left empty is filled in by ``from_noisy_tables`` from the one-way marginal.
        coarse: ``coarse[j]`` maps each fine cell of feature j to its coarse cell, as measured
            (a resumed run keeps them even if ``pair_cells`` changed).
        one_way: ``one_way[j]``: the released class-conditional distribution of feature j over
            its coarse cells, shape (classes, cells); a root's draws and redraws start from it.
        cliques: Released interactions, disjoint groups of features drawn jointly.
        monotone: ``monotone[j]``: 1 or -1 where feature j and its parent are drawn as an
            increasing or decreasing relation (``with_monotone``), else 0; empty: none.
    """

    parents: tuple[int, ...]
    order: tuple[int, ...]
    conditionals: dict[int, np.ndarray]
    coarse: tuple[np.ndarray, ...]
    one_way: tuple[np.ndarray, ...]
    cliques: tuple[Clique, ...] = ()
    monotone: tuple[int, ...] = ()

    def children(self, feature: int) -> list[int]:
        """The features whose parent is ``feature``."""
        return [child for child, parent in enumerate(self.parents) if parent == feature]

    def clique_of(self, feature: int) -> Clique | None:
        """The clique that holds ``feature``, if any."""
        return next((clique for clique in self.cliques if feature in clique.members), None)

    def with_monotone(self, ordered: Sequence[bool], class_totals: np.ndarray) -> DependencyTree:
        """This tree with every edge between two ``ordered`` features whose released joint is a
        monotone relation (``monotone_direction`` of the class totals times the parent's
        distribution times the child's conditional, summed over the classes) marked in
        ``monotone`` (post-processing).

        Reason: a pair's coarse cells hold its relation only to within a cell; drawn in them, a
        deterministic relation (a charge that is a fixed rate times the minutes) is spread over
        the whole block, while the monotone coupling keeps it a line.
        """
        monotone = [0] * len(self.parents)
        for child, parent in enumerate(self.parents):
            if parent >= 0 and ordered[parent] and ordered[child]:
                joint = class_totals[:, None, None] * self.one_way[parent][:, :, None] * self.conditionals[child]
                monotone[child] = monotone_direction(joint.sum(axis=0))
        return dataclasses.replace(self, monotone=tuple(monotone))

    def couple_monotone(self, values: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
        """Rows drawn along the tree, every class together (each feature's ``values``), with each
        child marked in ``monotone`` put in the order of its parent: the child's values are handed
        out so that the row with the k-th smallest parent value (ties in random order) gets the
        k-th smallest (``monotone`` 1) or largest (-1) of them.

        Every feature keeps its values, and the pair's joint becomes the monotone coupling that
        ``with_monotone`` found to match the released joint, the same in every class (coupled
        class by class, each class's noisy marginals gave each class its own line, which the
        classifiers learnt: on churn, logistic regression's macro-F1 fell from 0.60 to 0.56). What
        was drawn below the child in the tree keeps the draws made for the child's former cell,
        which its new value is near: the coupling moves a value by about its distance to the line.
        """
        values = list(values)
        rows = len(values[0]) if values else 0
        for child in self.order:
            direction = self.monotone[child] if self.monotone else 0
            if not direction:
                continue
            parent_rank = np.empty(rows, dtype=np.int64)
            parent_rank[np.lexsort((rng.random(rows), values[self.parents[child]]))] = np.arange(rows)
            coupled = np.empty_like(values[child])
            coupled[np.argsort(direction * parent_rank)] = np.sort(values[child])
            values[child] = coupled
        return values

    def draw_coarse(self, klass: int, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` rows of coarse cells of class index ``klass``, shape (size, features): a
        clique jointly, a root from its one-way distribution, every other feature given its parent."""
        drawn = np.zeros((size, len(self.parents)), dtype=np.int64)
        done: set[int] = set()
        for feature in self.order:
            if feature in done:
                continue
            clique = self.clique_of(feature)
            if clique is not None:
                drawn[:, list(clique.members)] = clique.draw(klass, size, rng)
                done.update(clique.members)
                continue
            parent = self.parents[feature]
            if parent < 0:
                drawn[:, feature] = rng.choice(
                    len(self.one_way[feature][klass]), size=size, p=self.one_way[feature][klass]
                )
            else:
                drawn[:, feature] = draw_rows(self.conditionals[feature][klass][drawn[:, parent]], rng)
            done.add(feature)
        return drawn

    def gibbs_weights(self, feature: int, klass: int, coarse: Sequence[np.ndarray], rows: np.ndarray) -> np.ndarray:
        """Unnormalised P(coarse cell of ``feature`` | class, all other features) for ``rows``
        (``coarse``: every feature's current cells): its clique, parent or one-way distribution,
        times the conditional of each child. Shape (rows, cells)."""
        one_way = self.one_way[feature][klass]
        clique, parent = self.clique_of(feature), self.parents[feature]
        if clique is not None:
            base = clique.conditional(feature, klass, coarse, rows)
            base = np.where(base.sum(axis=1, keepdims=True) > 0, base, one_way)
        elif parent >= 0:
            base = self.conditionals[feature][klass][coarse[parent][rows]]
        else:
            base = np.broadcast_to(one_way, (len(rows), len(one_way)))
        log_probabilities = np.log(np.maximum(base, _LOG_FLOOR))
        for child in self.children(feature):
            given = self.conditionals[child][klass][:, coarse[child][rows]].T
            log_probabilities = log_probabilities + np.log(np.maximum(given, _LOG_FLOOR))
        return np.exp(log_probabilities - log_probabilities.max(axis=1, keepdims=True))

    @classmethod
    def from_noisy_tables(
        cls,
        edges: Sequence[tuple[int, int]],
        noisy_tables: Sequence[np.ndarray],
        one_way: Sequence[np.ndarray],
        sigma: float,
        coarse: Sequence[np.ndarray],
        cliques: Sequence[NoisyClique] = (),
        clique_sigma: float = 0.0,
        estimate: PairEstimate = "posterior",
    ) -> DependencyTree:
        """Orient the released forest around the released cliques and normalise its noisy
        tables (post-processing).

        Args:
            edges: The chosen pairs, heaviest first; ``noisy_tables[i]`` has axes (class, first,
                second) of ``edges[i]``. A pair inside a clique, or one that would close a cycle
                through a clique, is dropped (the heavier pairs are kept).
            noisy_tables: Released joint counts of each pair.
            one_way: Per feature, released class-conditional coarse distributions, shape
                (classes, cells), used where a conditional row has no mass left (and kept).
            sigma: Noise of the pair tables.
            coarse: Fine -> coarse cell map of every feature.
            cliques: Released interactions, disjoint.
            clique_sigma: Noise of the clique tables; cells below ``SUPPRESSED_NOISE_MULTIPLE``
                sigma become 0.
            estimate: How a pair's table becomes a conditional (``PairEstimate``).
        """
        features = len(one_way)
        kept = set(
            maximum_spanning_forest(np.ones(len(edges)), features, edges, [clique.members for clique in cliques])
        )
        neighbours: dict[int, list[tuple[int, int]]] = {feature: [] for feature in range(features)}
        for index, (first, second) in enumerate(edges):
            if (first, second) in kept:
                neighbours[first].append((second, index))
                neighbours[second].append((first, index))
        released = tuple(
            Clique(clique.members, _spread(_normalised(clique.noisy, clique_sigma), clique.groups, clique.prior))
            for clique in cliques
        )
        parents = [-1] * features
        order: list[int] = []
        conditionals: dict[int, np.ndarray] = {}
        seen: set[int] = set()
        starts = [list(clique.members) for clique in released]
        starts += [[feature] for feature in sorted(range(features), key=lambda feature: -len(neighbours[feature]))]
        for start in starts:
            if seen.intersection(start):
                continue
            seen.update(start)
            queue = list(start)
            while queue:
                parent = queue.pop(0)
                order.append(parent)
                for child, index in neighbours[parent]:
                    if child in seen:
                        continue
                    seen.add(child)
                    queue.append(child)
                    parents[child] = parent
                    table = noisy_tables[index] if edges[index][0] == parent else noisy_tables[index].transpose(0, 2, 1)
                    conditionals[child] = _conditional(table, one_way[child], sigma, estimate)
        return cls(
            parents=tuple(parents),
            order=tuple(order),
            conditionals=conditionals,
            coarse=tuple(coarse),
            one_way=tuple(one_way),
            cliques=released,
        )


def suppressed(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Noisy counts with every cell below ``SUPPRESSED_NOISE_MULTIPLE`` sigma set to 0."""
    return np.where(noisy >= SUPPRESSED_NOISE_MULTIPLE * sigma, noisy, 0.0)


def _normalised(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """P(cells | class) from a noisy (class, *cells) table; a class left empty is uniform."""
    kept = suppressed(noisy, sigma).reshape(len(noisy), -1)
    totals = kept.sum(axis=1, keepdims=True)
    return np.where(totals > 0, kept / np.where(totals > 0, totals, 1.0), 1.0 / kept.shape[1]).reshape(noisy.shape)


def _spread(joint: np.ndarray, groups: Sequence[np.ndarray], prior: np.ndarray) -> np.ndarray:
    """A (class, *groups) distribution spread over the members' coarse cells in proportion to a
    positive (class, *cells) prior: each coarse cell gets its group's probability times its share
    of the group under the prior."""
    grouped_prior, expanded = prior, joint
    for axis, group in enumerate(groups):
        indicator = np.eye(int(group.max()) + 1)[group]
        grouped_prior = np.moveaxis(np.tensordot(grouped_prior, indicator, axes=([axis + 1], [0])), -1, axis + 1)
        expanded = np.take(expanded, group, axis=axis + 1)
    for axis, group in enumerate(groups):
        grouped_prior = np.take(grouped_prior, group, axis=axis + 1)
    return expanded * prior / grouped_prior


def posterior_counts(noisy: np.ndarray, prior_mean: np.ndarray, sigma: float) -> np.ndarray:
    """Posterior mean of non-negative counts observed with N(0, sigma^2) noise, under an
    exponential prior of mean ``prior_mean`` per cell (post-processing).

    The posterior of a count x >= 0 is a normal of mean ``noisy - sigma^2 / prior_mean``
    truncated at 0, so a cell far above its noise keeps about its noisy value, and a small or
    negative one shrinks towards 0 without ever reaching it: rare combinations stay possible,
    in proportion to what the prior expects of them, instead of being zeroed or inflated by
    clipping.
    """
    shifted = noisy - sigma**2 / np.maximum(prior_mean, _PRIOR_FLOOR)
    z = shifted / sigma
    hazard = np.exp(-0.5 * z**2 - 0.5 * math.log(2 * math.pi) - special.log_ndtr(z))
    return np.maximum(shifted + sigma * hazard, 0.0)


def _conditional(noisy: np.ndarray, child_one_way: np.ndarray, sigma: float, estimate: PairEstimate) -> np.ndarray:
    """P(child | class, parent) from a noisy (class, parent, child) table, normalised per row:
    ``posterior``: the posterior mean of each cell (``posterior_counts``) under a prior that the
    child follows its one-way distribution within the noisy row total; ``suppress``: the cells
    at or above ``SUPPRESSED_NOISE_MULTIPLE`` sigma. A row left empty is the one-way distribution."""
    if estimate == "posterior":
        rows = np.maximum(noisy.sum(axis=2, keepdims=True), 0.0)
        counts = posterior_counts(noisy, rows * child_one_way[:, None, :], sigma)
    else:
        counts = suppressed(noisy, sigma)
    totals = counts.sum(axis=2, keepdims=True)
    fallback = np.broadcast_to(child_one_way[:, None, :], counts.shape)
    return np.where(totals > 0, counts / np.where(totals > 0, totals, 1.0), fallback)


def draw_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of a (rows, cells) matrix of probabilities (rows need not be normalised)."""
    cumulative = np.cumsum(probabilities, axis=1)
    targets = rng.random(len(probabilities)) * cumulative[:, -1]
    drawn = (cumulative <= targets[:, None]).sum(axis=1)
    return np.minimum(drawn, probabilities.shape[1] - 1)

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
Everything after the two releases is post-processing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EXPECTED_ABS_GAUSSIAN = math.sqrt(2.0 / math.pi)
"""E|Z| for a standard normal Z: the expected L1 noise per cell is this times sigma."""

SUPPRESSED_NOISE_MULTIPLE = 2.0
"""Noisy edge-table cells below this many sigmas are set to 0 (post-processing): a cell of
pure noise then rarely survives, so conditionals do not spread mass over impossible pairs."""


def coarse_cells(size: int, max_cells: int) -> np.ndarray:
    """Map each of ``size`` fine cells to one of at most ``max_cells`` contiguous coarse cells.

    A column with at most twice as many fine cells keeps them all: merging two of sixteen
    values would merge, say, two education levels that their number of years tells apart.
    """
    if size <= 2 * max_cells:
        return np.arange(size)
    return np.arange(size) * max_cells // size


def feature_pairs(features: int) -> list[tuple[int, int]]:
    """Every unordered pair of feature indices, in a fixed order (the scores' order)."""
    return list(itertools.combinations(range(features), 2))


def joint_counts(first: np.ndarray, second: np.ndarray, classes: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Counts of (class, first cell, second cell), shape ``shape``."""
    flat = (classes * shape[1] + first) * shape[2] + second
    return np.bincount(flat, minlength=math.prod(shape)).reshape(shape).astype(np.float64)


def dependence_scores(
    cells: np.ndarray, classes: np.ndarray, sizes: Sequence[int], expected_one_way: Sequence[np.ndarray]
) -> np.ndarray:
    """L1 distance of every pair's class-conditional joint counts from independence.

    Args:
        cells: Coarse cell of every record in every feature, shape (n, d).
        classes: Class index of every record, shape (n,).
        sizes: Coarse cells of every feature.
        expected_one_way: Per feature, the released expected counts, shape (classes, size):
            row c is the class's released count times its released one-way distribution.

    Returns:
        One score per pair of ``feature_pairs(d)``; each moves by at most 1 when a record is
        added or removed (the expected counts are earlier releases, fixed here).
    """
    scores = []
    for first, second in feature_pairs(len(sizes)):
        totals = expected_one_way[first].sum(axis=1, keepdims=True)
        independent = (
            expected_one_way[first][:, :, None]
            * (expected_one_way[second] / np.maximum(expected_one_way[second].sum(axis=1, keepdims=True), 1e-12))[:, None, :]
        )
        independent = np.where(totals[:, :, None] > 0, independent, 0.0)
        shape = (len(expected_one_way[first]), sizes[first], sizes[second])
        scores.append(np.abs(joint_counts(cells[:, first], cells[:, second], classes, shape) - independent).sum())
    return np.asarray(scores)


def maximum_spanning_forest(weights: np.ndarray, features: int) -> list[tuple[int, int]]:
    """Kruskal's algorithm on ``feature_pairs(features)`` with these weights; pairs of weight
    <= 0 are never taken, so the result may be a forest."""
    component = list(range(features))

    def root(node: int) -> int:
        while component[node] != node:
            component[node] = component[component[node]]
            node = component[node]
        return node

    chosen = []
    pairs = feature_pairs(features)
    for index in np.argsort(-weights, kind="stable"):
        if weights[index] <= 0:
            break
        first, second = pairs[index]
        if root(first) != root(second):
            component[root(first)] = root(second)
            chosen.append((first, second))
    return chosen


@dataclass(frozen=True)
class DependencyTree:
    """A released forest over the features and its class-conditional conditionals.

    Attributes:
        parents: ``parents[j]``: the parent feature of feature j, or -1 for a root.
        order: Every feature once, each after its parent (a root first in its tree).
        conditionals: ``conditionals[j]`` for a non-root j: P(coarse cell of j | class, coarse
            cell of its parent), shape (classes, parent cells, cells); a row the noisy table left
            empty is filled in by ``from_noisy_tables`` from the one-way marginal.
        coarse: ``coarse[j]`` maps each fine cell of feature j to its coarse cell, as measured
            (a resumed run keeps them even if ``pair_cells`` changed).
        one_way: ``one_way[j]``: the released class-conditional distribution of feature j over
            its coarse cells, shape (classes, cells); a root's redraws start from it.
    """

    parents: tuple[int, ...]
    order: tuple[int, ...]
    conditionals: dict[int, np.ndarray]
    coarse: tuple[np.ndarray, ...]
    one_way: tuple[np.ndarray, ...]

    def children(self, feature: int) -> list[int]:
        """The features whose parent is ``feature``."""
        return [child for child, parent in enumerate(self.parents) if parent == feature]

    @classmethod
    def from_noisy_tables(
        cls,
        edges: Sequence[tuple[int, int]],
        noisy_tables: Sequence[np.ndarray],
        one_way: Sequence[np.ndarray],
        sigma: float,
        coarse: Sequence[np.ndarray],
    ) -> DependencyTree:
        """Orient the released forest and normalise its noisy tables (post-processing).

        Args:
            edges: The chosen pairs; ``noisy_tables[i]`` has axes (class, first, second) of
                ``edges[i]``.
            noisy_tables: Released joint counts of each pair.
            one_way: Per feature, released class-conditional coarse distributions, shape
                (classes, cells), used where a conditional row has no mass left (and kept).
            sigma: Noise of the tables; cells below ``SUPPRESSED_NOISE_MULTIPLE`` sigma become 0.
            coarse: Fine -> coarse cell map of every feature.
        """
        features = len(one_way)
        neighbours: dict[int, list[tuple[int, int]]] = {feature: [] for feature in range(features)}
        for index, (first, second) in enumerate(edges):
            neighbours[first].append((second, index))
            neighbours[second].append((first, index))
        parents = [-1] * features
        order: list[int] = []
        conditionals: dict[int, np.ndarray] = {}
        seen: set[int] = set()
        for start in sorted(range(features), key=lambda feature: -len(neighbours[feature])):
            if start in seen:
                continue
            seen.add(start)
            queue = [start]
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
                    conditionals[child] = _conditional(table, one_way[child], sigma)
        return cls(
            parents=tuple(parents), order=tuple(order), conditionals=conditionals, coarse=tuple(coarse), one_way=tuple(one_way)
        )


def _conditional(noisy: np.ndarray, child_one_way: np.ndarray, sigma: float) -> np.ndarray:
    """P(child | class, parent) from a noisy (class, parent, child) table."""
    kept = np.where(noisy >= SUPPRESSED_NOISE_MULTIPLE * sigma, noisy, 0.0)
    totals = kept.sum(axis=2, keepdims=True)
    fallback = np.broadcast_to(child_one_way[:, None, :], kept.shape)
    return np.where(totals > 0, kept / np.where(totals > 0, totals, 1.0), fallback)


def draw_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of a (rows, cells) matrix of probabilities (rows need not be normalised)."""
    cumulative = np.cumsum(probabilities, axis=1)
    targets = rng.random(len(probabilities)) * cumulative[:, -1]
    drawn = (cumulative <= targets[:, None]).sum(axis=1)
    return np.minimum(drawn, probabilities.shape[1] - 1)

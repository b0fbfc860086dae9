"""Tabular modality: random and variation APIs over a public schema, and the row embedding.

Every bound and category comes from the ``TableSchema``. Optionally the generator is
informed by DP statistics: class-conditional one-way marginals of every feature, with
``refine_cells`` > 1 the counts of sub-cells of every binned feature's bins, and, with
``structure="tree"``, a dependency tree over the features (``dependency_tree``), measured once
with the Gaussian mechanism (``measure_statistics``) and paid from the run's budget. With them,
the random API draws each feature from its noisy marginal (given its tree parent) instead of
uniformly, at the released sub-cells, the variation API redraws cells from it (given its tree
neighbours), and the release is re-weighted to match the marginals.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dp_synth.modalities.tabular.dependency_tree import (
    EXPECTED_ABS_GAUSSIAN,
    SUPPRESSED_NOISE_MULTIPLE,
    DependencyTree,
    check_pair_estimate,
    coarse_cells,
    dependence_scores,
    disjoint_best,
    draw_rows,
    equal_mass_cells,
    feature_pairs,
    feature_triples,
    interaction_scores,
    joint_counts,
    maximum_spanning_forest,
    posterior_counts,
    suppressed,
)
from dp_synth.pe.interfaces import PublicSchemaFacts
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.modalities.tabular.schema import Column, TableSchema, category_codes

logger = logging.getLogger(__name__)

EXACT_INTEGER_CELLS = 128
"""Integer columns with at most this many values get one marginal cell per value."""

MARGINAL_PRIOR_GROUPS = 8
"""Groups of contiguous cells in which a binned numeric column's noisy marginal is denoised
(``denoised_marginal``)."""

RAKING_SWEEPS = 10
"""Sweeps of iterative proportional fitting when the release is re-weighted to the marginals."""

MARGINAL_ESTIMATES = ("denoise", "clip")
"""How a binned numeric column's noisy marginal becomes counts: ``denoised_marginal``, or
negative cells set to 0 (categorical and integer columns are always clipped)."""

PAIR_SPLITS = ("auto", "mass", "width")
"""How a numeric feature's fine cells are grouped into the tree's ``pair_cells`` coarse cells:
``mass``: of about equal mass in the released marginals (``dependency_tree.equal_mass_cells``);
``width``: of equal width (``dependency_tree.coarse_cells``); ``auto``: by mass for a feature
whose marginals have a spike (``has_spike``), by width otherwise."""

STRUCTURES = ("independent", "tree")
"""Generator structures: features drawn independently within a class, or along a DP tree."""

TREE_BUDGET = {"one_way": 0.4, "scores": 0.1, "edges": 0.5}
"""How the tree generator splits the statistics' budget (shares of its mu squared) among its
three Gaussian releases: one-way marginals, dependence scores, edge tables."""

INTERACTION_BUDGET = {"one_way": 0.38, "scores": 0.05, "edges": 0.47, "interaction_scores": 0.02, "cliques": 0.08}
"""The split when the tree also looks for 3-way interactions (``interactions`` > 0): two more
releases, the interaction score of every triple and the chosen cliques' tables."""

REFINEMENT_SHARE = 0.15
"""Share of the statistics' mu squared spent on the sub-cells of binned numeric columns when
``refine_cells`` > 1; the other releases' shares shrink in proportion."""

INTERACTION_NUMERIC_CELLS = 4
"""A numeric feature enters an interaction table in at most this many groups of its coarse cells
(a categorical keeps every category): a 3-way table must stay small to rise above its noise."""

INTERACTION_MODEL_ROWS = 100_000
"""Rows drawn from the released tree to predict every triple's counts (public post-processing)."""

_PRIOR_TRACE = 1e-6
"""Weight of the one-way product in a clique's prior, so a cell the tree's rows missed stays possible."""


@dataclass(frozen=True)
class CellGrid:
    """The public grid of marginal cells of one column.

    Categorical: one cell per category. Integer with at most ``EXACT_INTEGER_CELLS`` values:
    one cell per value. Other numeric columns: a cell for the exact lower bound, ``bins``
    equal-width cells, a cell for the exact upper bound (censored columns such as a capital
    gain put much mass exactly on a bound).
    """

    column: Column
    bins: int

    @property
    def exact(self) -> bool:
        """Whether each integer value has its own cell."""
        return self.column.kind == "integer" and self.column.high - self.column.low < EXACT_INTEGER_CELLS

    @property
    def size(self) -> int:
        """Number of cells."""
        if not self.column.is_numeric:
            return len(self.column.categories)
        return int(self.column.high - self.column.low) + 1 if self.exact else self.bins + 2

    def cells(self, values: pd.Series) -> np.ndarray:
        """Cell index of each value."""
        column = self.column
        if not column.is_numeric:
            return category_codes(values, column)
        numbers = values.to_numpy(dtype=np.float64)
        if self.exact:
            return (numbers - column.low).astype(np.int64)
        inner = np.clip(((numbers - column.low) / column.span * self.bins).astype(np.int64), 0, self.bins - 1) + 1
        return np.where(numbers <= column.low, 0, np.where(numbers >= column.high, self.bins + 1, inner))

    @property
    def binned(self) -> bool:
        """Whether this is a numeric column cut into equal-width bins (not one cell per value)."""
        return self.column.is_numeric and not self.exact

    def values(self, cells: np.ndarray, rng: np.random.Generator, within: np.ndarray | None = None) -> np.ndarray:
        """A value for each cell index: the category, the integer, or for a bin a uniform draw
        in it; with ``within`` (shape (cells, sub-cells), each row a distribution over the bin's
        equal-width sub-cells, see ``sub_cells``), the midpoint of a sub-cell drawn from it."""
        column = self.column
        if not column.is_numeric:
            return np.asarray(column.categories, dtype=object)[cells]
        if self.exact:
            return (cells + int(column.low)).astype(np.int64)
        width = column.span / self.bins
        lower = column.low + (cells - 1) * width
        if within is None:
            drawn = rng.uniform(lower, lower + width)
        else:
            parts = within.shape[1]
            drawn = lower + (draw_rows(within[cells], rng) + 0.5) * width / parts
        drawn = np.where(cells == 0, column.low, np.where(cells == self.bins + 1, column.high, drawn))
        return np.round(drawn).astype(np.int64) if column.kind == "integer" else drawn

    def sub_cells(self, values: pd.Series, parts: int) -> tuple[np.ndarray, np.ndarray]:
        """The bin of each value and its sub-cell among ``parts`` equal-width ones, for the
        values strictly inside the bounds (a value on a bound has a cell of its own)."""
        cells = self.cells(values)
        inside = (cells >= 1) & (cells <= self.bins)
        position = (values.to_numpy(dtype=np.float64)[inside] - self.column.low) / self.column.span * self.bins
        return cells[inside], np.clip(((position - (cells[inside] - 1)) * parts).astype(np.int64), 0, parts - 1)

    def uniform(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` values drawn uniformly from the column's public domain."""
        column = self.column
        if not column.is_numeric:
            return np.asarray(column.categories, dtype=object)[rng.integers(len(column.categories), size=size)]
        if column.kind == "integer":
            return rng.integers(int(column.low), int(column.high), endpoint=True, size=size)
        return rng.uniform(column.low, column.high, size=size)


def encode_rows(table: pd.DataFrame, columns: Sequence[Column], categorical_weight: float) -> np.ndarray:
    """Rows as float32 vectors: numeric columns min-max scaled on their public bounds,
    categoricals one-hot on their declared categories, times ``categorical_weight``.

    Raises:
        SchemaError: if a categorical value is not a declared category.
    """
    blocks = []
    for column in columns:
        values = table[column.name]
        if column.is_numeric:
            blocks.append(((values.to_numpy(dtype=np.float32) - column.low) / column.span)[:, None])
            continue
        codes = category_codes(values, column)
        one_hot = np.zeros((len(values), len(column.categories)), dtype=np.float32)
        one_hot[np.arange(len(values)), codes] = categorical_weight
        blocks.append(one_hot)
    return np.hstack(blocks)


def _move_numeric(values: np.ndarray, column: Column, degree: float, rng: np.random.Generator) -> np.ndarray:
    moved = np.clip(values + rng.uniform(-degree, degree, size=len(values)) * column.span, column.low, column.high)
    return np.round(moved).astype(np.int64) if column.kind == "integer" else moved


def denoised_marginal(noisy: np.ndarray, sigma: float, groups: int) -> np.ndarray:
    """Non-negative counts from the noisy marginal of a binned numeric column (post-processing).

    Clipping the noise at 0 leaves about 0.4 sigma in every empty cell: on Adult it gave the
    <=50K class 400 rows of capital gains above 8,000 (the real table has 14), which teaches a
    classifier that a large gain says little. Instead the cells are pooled into ``groups``
    contiguous groups: a group whose noisy total is below ``SUPPRESSED_NOISE_MULTIPLE`` times
    its noise (sigma sqrt(members)) is empty, and every cell of another group gets its
    posterior mean under an exponential prior of the group's mean count (``posterior_counts``).
    """
    size = len(noisy)
    group = np.arange(size) * groups // size
    members = np.bincount(group, minlength=groups)
    totals = np.bincount(group, weights=noisy, minlength=groups)
    kept = np.where(totals >= SUPPRESSED_NOISE_MULTIPLE * sigma * np.sqrt(np.maximum(members, 1)), totals, 0.0)
    prior = (kept / np.maximum(members, 1))[group]
    return np.where(prior > 0, posterior_counts(noisy, prior, sigma), 0.0)


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


def _distribution(cells: np.ndarray, size: int) -> np.ndarray:
    counts = np.bincount(cells, minlength=size)
    return counts / max(counts.sum(), 1e-300)


@dataclass(frozen=True)
class TabularModality(PublicSchemaFacts):
    """PE over rows of a table with a public schema.

    Attributes:
        schema: The public domain of every column.
        schedule: Variation degree over iterations.
        categorical_weight: Scale of one-hot blocks in the embedding (numeric columns span [0, 1]).
        marginal_bins: Equal-width bins of a numeric column's marginal cells (see ``CellGrid``).
        marginal_estimate: How a binned numeric column's noisy marginal becomes counts, one of
            ``MARGINAL_ESTIMATES``.
        local_numeric_share: A numeric feature whose released marginals keep every cell at or
            below this share of a class varies by small moves (see ``moves_locally``); above
            it, the feature has a spike (``has_spike``).
        structure: ``"independent"``: features drawn independently within a class; ``"tree"``:
            along a DP dependency tree (``dependency_tree``) measured with the marginals.
        pair_cells: Coarse cells of a numeric feature in the tree's pair tables (one with at most
            twice as many cells keeps them all, see ``dependency_tree.coarse_cells``).
        pair_split: How those coarse cells group a numeric feature's fine cells, one of
            ``PAIR_SPLITS``.
        pair_estimate: How the tree turns a noisy pair table into a conditional (see
            ``dependency_tree.PAIR_ESTIMATES``).
        interactions: With the tree (the independent generator ignores it), at most this many
            disjoint triples of features whose joint distribution in each class departs from the
            tree's prediction by more than their table's noise are measured and drawn jointly
            (0: none).
        refine_cells: With more than 1, every bin of a binned numeric feature is cut into this
            many equal-width sub-cells whose class-conditional counts are released too
            (``refined_counts``), and a value drawn in a bin is the midpoint of a sub-cell drawn
            from ``refined_within``; with 1, a uniform draw in the bin.
        marginals: Noisy class-conditional marginals, ``marginals[label][column]`` a probability
            vector over the column's cells; ``None`` until ``with_statistics`` sets them.
        tree: The released dependency tree (``structure="tree"``), ``None`` until then.
        refined: With ``refine_cells`` > 1, ``refined[label][column]`` of every binned feature,
            shape (cells, refine_cells): a distribution over each cell's sub-cells (rows of the
            bounds' cells unused); ``None`` until ``with_statistics`` sets it.
    """

    schema: TableSchema
    schedule: VariationSchedule
    categorical_weight: float = 1.0 / 3.0
    marginal_bins: int = 32
    marginal_estimate: str = "denoise"
    local_numeric_share: float = 0.2
    structure: str = "independent"
    pair_cells: int = 12
    pair_split: str = "auto"
    pair_estimate: str = "posterior"
    interactions: int = 0
    refine_cells: int = 1
    marginals: Mapping[str, Mapping[str, np.ndarray]] | None = None
    tree: DependencyTree | None = None
    refined: Mapping[str, Mapping[str, np.ndarray]] | None = None

    def __post_init__(self) -> None:
        if self.marginal_estimate not in MARGINAL_ESTIMATES:
            raise ValueError(f"generator.marginal_estimate must be one of {MARGINAL_ESTIMATES}, got {self.marginal_estimate!r}")
        if self.structure not in STRUCTURES:
            raise ValueError(f"generator.structure must be one of {STRUCTURES}, got {self.structure!r}")
        if not isinstance(self.pair_cells, int) or self.pair_cells < 2:
            raise ValueError(f"generator.pair_cells must be an integer >= 2, got {self.pair_cells!r}")
        if self.pair_split not in PAIR_SPLITS:
            raise ValueError(f"generator.pair_split must be one of {PAIR_SPLITS}, got {self.pair_split!r}")
        check_pair_estimate(self.pair_estimate)
        if not isinstance(self.interactions, int) or self.interactions < 0:
            raise ValueError(f"generator.interactions must be an integer >= 0, got {self.interactions!r}")
        if not isinstance(self.refine_cells, int) or self.refine_cells < 1:
            raise ValueError(f"generator.refine_cells must be an integer >= 1, got {self.refine_cells!r}")

    @property
    def label_column(self) -> str:
        """The schema's label column."""
        return self.schema.label_column

    @property
    def grids(self) -> tuple[CellGrid, ...]:
        """The marginal cell grid of every feature."""
        return tuple(CellGrid(column, self.marginal_bins) for column in self.schema.features)

    @property
    def refined_grids(self) -> tuple[CellGrid, ...]:
        """The grids whose bins are refined: every binned feature, with ``refine_cells`` > 1."""
        return tuple(grid for grid in self.grids if grid.binned) if self.refine_cells > 1 else ()

    @property
    def statistics_sensitivity(self) -> float:
        """L2 sensitivity of ``marginal_counts``: a record adds 1 to one cell of each feature."""
        return math.sqrt(len(self.schema.features))

    def marginal_counts(self, private: pd.DataFrame) -> np.ndarray:
        """Class-conditional one-way counts of every feature, concatenated (class-major).

        One record falls in exactly one class and in one cell of each of the d features, so
        adding or removing it changes this vector by exactly sqrt(d) in L2 norm.
        """
        labels = private[self.label_column].to_numpy()
        blocks = []
        for label in self.classes:
            rows = private[labels == label]
            blocks.extend(np.bincount(grid.cells(rows[grid.column.name]), minlength=grid.size) for grid in self.grids)
        return np.concatenate(blocks).astype(np.float64)

    def refined_counts(self, private: pd.DataFrame) -> np.ndarray:
        """Class-conditional counts of every refined feature's sub-cells, concatenated
        (class-major, then feature, bin, sub-cell).

        A record falls in at most one sub-cell of each refined feature (none when the value is
        on a bound), so adding or removing it changes this vector by at most sqrt(refined
        features) in L2 norm.
        """
        labels = private[self.label_column].to_numpy()
        blocks = []
        for label in self.classes:
            rows = private[labels == label]
            for grid in self.refined_grids:
                cells, parts = grid.sub_cells(rows[grid.column.name], self.refine_cells)
                flat = (cells - 1) * self.refine_cells + parts
                blocks.append(np.bincount(flat, minlength=grid.bins * self.refine_cells))
        return np.concatenate(blocks).astype(np.float64) if blocks else np.zeros(0)

    def measure_statistics(self, private: pd.DataFrame, sigma: float, rng: np.random.Generator) -> dict[str, Any]:
        """Release the generator's statistics with the Gaussian mechanism.

        ``sigma`` is the noise the plan grants a release of L2 sensitivity
        ``statistics_sensitivity``. The independent generator spends it all on
        ``marginal_counts(private) + N(0, sigma^2)``. The tree generator splits it over three
        releases by ``TREE_BUDGET`` (``release_noise``), so their mu squared adds up to the same
        total: the marginals, then the dependence scores, then the chosen edge tables. With
        ``refine_cells`` > 1, ``REFINEMENT_SHARE`` of it goes to ``refined_counts``.

        Negative cells of a categorical or integer marginal are set to 0; a binned numeric
        marginal is denoised (``denoised_marginal``), or clipped too with ``marginal_estimate``
        ``"clip"``; each marginal is normalised (uniform if nothing is left): post-processing.
        Returns ``{"marginals": {label: {column: probabilities}}}``, plus ``"tree"`` for the tree
        generator and ``"refined"`` (see ``refined_within``) with ``refine_cells`` > 1.
        """
        noise = self.release_noise(sigma)
        counts = self.marginal_counts(private)
        noisy = counts + rng.normal(0.0, noise["one_way"], size=counts.size)
        marginals: dict[str, dict[str, np.ndarray]] = {}
        offset = 0
        for label in self.classes:
            marginals[label] = {}
            for grid in self.grids:
                cells = noisy[offset : offset + grid.size]
                cells = (
                    denoised_marginal(cells, noise["one_way"], MARGINAL_PRIOR_GROUPS)
                    if self.marginal_estimate == "denoise" and grid.binned
                    else np.maximum(cells, 0.0)
                )
                offset += grid.size
                total = cells.sum()
                marginals[label][grid.column.name] = cells / total if total > 0 else np.full(grid.size, 1.0 / grid.size)
        class_totals = np.maximum(noisy.reshape(len(self.classes), -1).sum(axis=1) / len(self.grids), 0.0)
        statistics: dict[str, Any] = {"marginals": marginals}
        if "refinement" in noise:
            statistics["refined"] = self._measure_refinement(private, marginals, class_totals, noise["refinement"], rng)
        if "edges" in noise:
            statistics["tree"] = self._measure_tree(private, marginals, class_totals, noise, rng)
        return statistics

    def _measure_refinement(
        self,
        private: pd.DataFrame,
        marginals: Mapping[str, Mapping[str, np.ndarray]],
        class_totals: np.ndarray,
        sigma: float,
        rng: np.random.Generator,
    ) -> dict[str, dict[str, np.ndarray]]:
        """Release ``refined_counts`` with noise ``sigma``; turn each bin's sub-cells into a
        distribution (``refined_within``) given the bin's released count. Rows of the bounds'
        cells are uniform (a value there is the bound)."""
        counts = self.refined_counts(private)
        noisy = counts + rng.normal(0.0, sigma, size=counts.size)
        refined: dict[str, dict[str, np.ndarray]] = {}
        kept = {grid.column.name: 0 for grid in self.refined_grids}
        offset = 0
        for label, total in zip(self.classes, class_totals, strict=True):
            refined[label] = {}
            for grid in self.refined_grids:
                size = grid.bins * self.refine_cells
                sub_counts = noisy[offset : offset + size].reshape(grid.bins, self.refine_cells)
                within = np.full((grid.size, self.refine_cells), 1.0 / self.refine_cells)
                cell_counts = total * marginals[label][grid.column.name][1 : grid.bins + 1]
                within[1 : grid.bins + 1] = refined_within(sub_counts, cell_counts, sigma)
                kept[grid.column.name] += np.count_nonzero(suppressed(sub_counts, sigma))
                offset += size
                refined[label][grid.column.name] = within
        logger.info(
            "DP sub-cells kept, over the classes (a release: safe to show): %s",
            ", ".join(f"{name} {count}" for name, count in kept.items()),
        )
        return refined

    def release_noise(self, sigma: float) -> dict[str, float]:
        """The noise of each statistics release, given the plan's ``sigma`` for sensitivity
        ``statistics_sensitivity`` = S.

        A release of sensitivity D_k and share f_k gets ``sigma * D_k / (S sqrt(f_k))``, so its
        (D_k / sigma_k)^2 is f_k (S / sigma)^2 and the shares add up to the plan's total.
        """
        features = len(self.schema.features)
        sensitivities = {"one_way": math.sqrt(features)}
        shares: Mapping[str, float] = {"one_way": 1.0}
        if self.structure == "tree" and features >= 2:
            sensitivities["scores"] = math.sqrt(len(feature_pairs(features)))
            sensitivities["edges"] = math.sqrt(features - 1)
            shares = TREE_BUDGET
            if self.interactions and features >= 3:
                sensitivities["interaction_scores"] = math.sqrt(len(feature_triples(features)))
                sensitivities["cliques"] = math.sqrt(min(self.interactions, features // 3))
                shares = INTERACTION_BUDGET
        if self.refined_grids:
            sensitivities["refinement"] = math.sqrt(len(self.refined_grids))
            shares = {**{name: share * (1.0 - REFINEMENT_SHARE) for name, share in shares.items()}, "refinement": REFINEMENT_SHARE}
        return {
            name: sigma * sensitivity / (self.statistics_sensitivity * math.sqrt(shares[name]))
            for name, sensitivity in sensitivities.items()
        }

    def has_spike(self, grid: CellGrid, marginals: Mapping[str, Mapping[str, np.ndarray]]) -> bool:
        """Whether released marginals put more than ``local_numeric_share`` of a class in one cell
        of this feature (a capital gain's mass at 0, hours at 40): post-processing."""
        return max(float(marginal[grid.column.name].max()) for marginal in marginals.values()) > self.local_numeric_share

    def _pair_cell_maps(self, marginals: Mapping[str, Mapping[str, np.ndarray]], class_totals: np.ndarray) -> list[np.ndarray]:
        """Fine cell -> coarse cell of every feature for a new tree: categoricals keep their
        categories; a numeric feature gets at most ``pair_cells`` contiguous cells, split as
        ``pair_split`` says. Equal mass is taken in the released marginals pooled over classes
        (post-processing): a spike at 0 becomes a coarse cell of its own instead of sharing one
        with the smallest positive values, and the rest is split evenly."""
        maps = []
        for grid in self.grids:
            if not grid.column.is_numeric:
                maps.append(np.arange(grid.size))
            elif self.pair_split == "mass" or (self.pair_split == "auto" and self.has_spike(grid, marginals)):
                pooled = sum(total * marginals[label][grid.column.name] for label, total in zip(self.classes, class_totals, strict=True))
                maps.append(equal_mass_cells(pooled, self.pair_cells))
            else:
                maps.append(coarse_cells(grid.size, self.pair_cells))
        return maps

    def _coarse_one_way(self, marginals: Mapping[str, Mapping[str, np.ndarray]], maps: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per feature, the released class-conditional distributions over coarse cells."""
        return [
            np.stack([np.bincount(mapping, weights=marginals[label][grid.column.name]) for label in self.classes])
            for grid, mapping in zip(self.grids, maps, strict=True)
        ]

    def _coarse_cells_of(self, table: pd.DataFrame, maps: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The coarse cell of every row in every feature."""
        return [mapping[grid.cells(table[grid.column.name])] for grid, mapping in zip(self.grids, maps, strict=True)]

    def _measure_tree(
        self,
        private: pd.DataFrame,
        marginals: Mapping[str, Mapping[str, np.ndarray]],
        class_totals: np.ndarray,
        noise: Mapping[str, float],
        rng: np.random.Generator,
    ) -> DependencyTree:
        """Release the dependence scores, choose the forest, release its edge tables; with
        ``interactions``, then release the interaction scores and the chosen cliques' tables."""
        maps = self._pair_cell_maps(marginals, class_totals)
        sizes = [int(mapping.max()) + 1 for mapping in maps]
        cells = np.column_stack(self._coarse_cells_of(private, maps))
        classes = category_codes(private[self.label_column], self.schema.label)
        one_way = self._coarse_one_way(marginals, maps)
        expected = [distribution * class_totals[:, None] for distribution in one_way]
        scores = dependence_scores(cells, classes, sizes, expected)
        noisy_scores = scores + rng.normal(0.0, noise["scores"], size=scores.size)
        table_noise = [self._table_noise(sizes, pair, noise["edges"]) for pair in feature_pairs(len(sizes))]
        edges = maximum_spanning_forest(noisy_scores - np.asarray(table_noise), len(sizes))
        tables = [self._noisy_table(cells, classes, sizes, pair, noise["edges"], rng) for pair in edges]
        names = [grid.column.name for grid in self.grids]
        logger.info(
            "DP dependency tree (a release: safe to show): %s",
            ", ".join(f"{names[first]} -- {names[second]}" for first, second in edges) or "no pair beats its noise",
        )
        tree = DependencyTree.from_noisy_tables(edges, tables, one_way, noise["edges"], maps, estimate=self.pair_estimate)
        if "cliques" not in noise:
            return tree
        cliques = self._measure_interactions(tree, cells, classes, sizes, class_totals, noise, rng)
        if not cliques:
            return tree
        return DependencyTree.from_noisy_tables(
            edges, tables, one_way, noise["edges"], maps, cliques, noise["cliques"], self.pair_estimate
        )

    def _measure_interactions(
        self,
        tree: DependencyTree,
        cells: np.ndarray,
        classes: np.ndarray,
        sizes: Sequence[int],
        class_totals: np.ndarray,
        noise: Mapping[str, float],
        rng: np.random.Generator,
    ) -> list[tuple[tuple[int, ...], np.ndarray, list[np.ndarray], np.ndarray]]:
        """Release the interaction score of every triple against rows drawn from ``tree``, choose
        the best disjoint triples, release their tables (in groups of coarse cells).

        Returns:
            Per chosen triple, what ``DependencyTree.from_noisy_tables`` takes as a clique:
            (members, noisy grouped table, each member's groups, the tree's prior over its cells).
        """
        triples = feature_triples(len(sizes))
        groups = [
            coarse_cells(size, INTERACTION_NUMERIC_CELLS) if grid.column.is_numeric else np.arange(size)
            for grid, size in zip(self.grids, sizes, strict=True)
        ]
        group_sizes = [int(group.max()) + 1 for group in groups]
        grouped = np.column_stack([group[cells[:, feature]] for feature, group in enumerate(groups)])
        model = [tree.draw_coarse(klass, int(rows), rng) for klass, rows in enumerate(self._model_rows(class_totals))]
        model_classes = np.repeat(np.arange(len(model)), [len(rows) for rows in model])
        model_cells = np.vstack(model)
        model_grouped = np.column_stack([group[model_cells[:, feature]] for feature, group in enumerate(groups)])
        scores, sampling = interaction_scores(grouped, classes, group_sizes, model_grouped, model_classes, class_totals)
        noisy_scores = scores + rng.normal(0.0, noise["interaction_scores"], size=scores.size)
        table_noise = np.asarray([self._table_noise(group_sizes, triple, noise["cliques"]) for triple in triples])
        chosen = [triples[index] for index in disjoint_best(noisy_scores - sampling - table_noise, triples, self.interactions)]
        names = [grid.column.name for grid in self.grids]
        logger.info(
            "DP interactions (a release: safe to show): %s",
            "; ".join(" x ".join(names[member] for member in triple) for triple in chosen) or "no triple beats its noise",
        )
        return [
            (
                triple,
                self._noisy_table(grouped, classes, group_sizes, triple, noise["cliques"], rng),
                [groups[member] for member in triple],
                self._clique_prior(triple, model_cells, model_classes, sizes, tree.one_way),
            )
            for triple in chosen
        ]

    def _table_noise(self, sizes: Sequence[int], members: Sequence[int], sigma: float) -> float:
        """Expected L1 noise of a class-conditional table over these features (public)."""
        return len(self.classes) * math.prod(sizes[member] for member in members) * sigma * EXPECTED_ABS_GAUSSIAN

    def _noisy_table(
        self,
        cells: np.ndarray,
        classes: np.ndarray,
        sizes: Sequence[int],
        members: Sequence[int],
        sigma: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """The class-conditional joint counts of these features plus N(0, sigma^2) per cell."""
        shape = (len(self.classes), *(sizes[member] for member in members))
        counts = joint_counts([cells[:, member] for member in members], classes, shape)
        return counts + rng.normal(0.0, sigma, size=shape)

    @staticmethod
    def _clique_prior(
        members: Sequence[int], model_cells: np.ndarray, model_classes: np.ndarray, sizes: Sequence[int], one_way: Sequence[np.ndarray]
    ) -> np.ndarray:
        """How a clique spreads a group over its coarse cells: the tree's own joint law of the
        members (counts of the rows drawn from it), plus a trace of the one-way product so that
        no cell is impossible. Public post-processing of earlier releases."""
        shape = (len(one_way[0]), *(sizes[member] for member in members))
        counts = joint_counts([model_cells[:, member] for member in members], model_classes, shape)
        product = one_way[members[0]]
        for member in members[1:]:
            product = product[..., None] * one_way[member].reshape(len(product), *([1] * (product.ndim - 1)), -1)
        return counts / np.maximum(counts.sum(axis=tuple(range(1, len(shape))), keepdims=True), 1.0) + _PRIOR_TRACE * product + 1e-300

    @staticmethod
    def _model_rows(class_totals: np.ndarray) -> np.ndarray:
        """Rows per class drawn from the tree to predict interaction counts: ``INTERACTION_MODEL_ROWS``
        split in proportion to the released class counts (at least 1 each)."""
        shares = class_totals / class_totals.sum() if class_totals.sum() > 0 else np.full(len(class_totals), 1 / len(class_totals))
        return np.maximum(np.round(shares * INTERACTION_MODEL_ROWS), 1).astype(np.int64)

    def with_statistics(self, statistics: Mapping[str, Any]) -> TabularModality:
        """Return a copy whose generator draws from released statistics (``measure_statistics``)."""
        return dataclasses.replace(
            self, marginals=statistics["marginals"], tree=statistics.get("tree"), refined=statistics.get("refined")
        )

    def moves_locally(self, grid: CellGrid) -> bool:
        """Whether a numeric feature varies by small moves rather than marginal redraws.

        Small moves keep a value on its side of a threshold that an interaction depends on, but
        scatter a spike (a capital gain's mass at 0, hours at 40). So a numeric feature moves
        locally unless a released marginal puts more than ``local_numeric_share`` of a class
        in one cell (post-processing of the DP marginals); without statistics every numeric
        feature moves locally.
        """
        if not grid.column.is_numeric:
            return False
        return self.marginals is None or not self.has_spike(grid, self.marginals)

    def _draw(self, grid: CellGrid, label: str, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` values of one feature for class ``label``: from its marginal, else uniform."""
        if self.marginals is None:
            return grid.uniform(size, rng)
        probabilities = self.marginals[label][grid.column.name]
        return self._values(grid, label, rng.choice(grid.size, size=size, p=probabilities), rng)

    def _values(self, grid: CellGrid, label: str, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Values of class ``label`` in the given cells (``CellGrid.values``), at the released
        sub-cells of a refined feature."""
        within = self.refined[label].get(grid.column.name) if self.refined is not None else None
        return grid.values(cells, rng, within)

    def random_population(self, class_sizes: Mapping[str, int], rng: np.random.Generator) -> pd.DataFrame:
        """Draw ``class_sizes[c]`` rows per class: each feature independently from its public
        domain (uniformly, or from its noisy class-conditional marginal), or along the released
        dependency tree (a root from its marginal, every other feature given its parent)."""
        parts = []
        for label, size in class_sizes.items():
            if self.tree is None:
                columns = {grid.column.name: self._draw(grid, label, size, rng) for grid in self.grids}
            else:
                columns = self._draw_along_tree(label, size, rng)
            columns[self.label_column] = np.repeat(np.array([label], dtype=object), size)
            parts.append(pd.DataFrame(columns))
        return pd.concat(parts, ignore_index=True)[self.schema.names]

    def _draw_along_tree(self, label: str, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``size`` rows of class ``label``: coarse cells along the tree (``DependencyTree.draw_coarse``),
        then a fine cell within each from the fine marginal."""
        assert self.tree is not None
        coarse = self.tree.draw_coarse(self.classes.index(label), size, rng)
        return {
            grid.column.name: self._values(grid, label, self._fine_within(feature, label, coarse[:, feature], rng), rng)
            for feature, grid in enumerate(self.grids)
        }

    def _fine_within(self, feature: int, label: str, coarse: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A fine cell inside each given coarse cell, from the fine marginal of class ``label``
        restricted to it (uniform over the coarse cell if the marginal gives it no mass)."""
        assert self.marginals is not None
        assert self.tree is not None
        grid, mapping = self.grids[feature], self.tree.coarse[feature]
        probabilities = self.marginals[label][grid.column.name]
        fine = np.empty(len(coarse), dtype=np.int64)
        for cell in np.unique(coarse):
            members = np.flatnonzero(mapping == cell)
            weights = probabilities[members]
            at = coarse == cell
            fine[at] = rng.choice(members, size=int(at.sum()), p=weights / weights.sum() if weights.sum() > 0 else None)
        return fine

    def _redraw_in_tree(
        self, feature: int, label: str, coarse: Sequence[np.ndarray], rows: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Fine cells of ``feature`` for ``rows`` of class ``label``, drawn given its clique or parent
        and its children in the tree (one Gibbs step; ``coarse``: every feature's current cells)."""
        assert self.tree is not None
        weights = self.tree.gibbs_weights(feature, self.classes.index(label), coarse, rows)
        return self._fine_within(feature, label, draw_rows(weights, rng), rng)

    def vary(
        self, survivors: pd.DataFrame, iteration: int, iterations: int, rng: np.random.Generator
    ) -> pd.DataFrame:
        """Return one variation per survivor; the label is never changed.

        A categorical cell, and a numeric cell whose marginal has a spike, is redrawn with
        probability r(t): from its marginal with statistics (given its tree neighbours with a
        tree), else uniformly; every other numeric cell moves by U(-r, r) x span (Tab-PE's
        operator, see ``moves_locally``).
        """
        degree = self.schedule.degree(iteration, iterations)
        labels = survivors[self.label_column].to_numpy()
        grids = self.grids
        coarse = self._coarse_cells_of(survivors, self.tree.coarse) if self.tree is not None else []
        varied = {}
        for feature in self.tree.order if self.tree is not None else range(len(grids)):
            grid = grids[feature]
            values = survivors[grid.column.name].to_numpy()
            if self.moves_locally(grid):
                values = _move_numeric(values, grid.column, degree, rng)
            else:
                values = values.copy()
                redraw = rng.random(len(values)) < degree
                for label in self.classes:
                    chosen = np.flatnonzero(redraw & (labels == label))
                    if self.tree is None:
                        values[chosen] = self._draw(grid, label, len(chosen), rng)
                    else:
                        values[chosen] = self._values(grid, label, self._redraw_in_tree(feature, label, coarse, chosen, rng), rng)
            if self.tree is not None:
                coarse[feature] = self.tree.coarse[feature][grid.cells(pd.Series(values))]
            varied[grid.column.name] = values
        varied[self.label_column] = labels
        return pd.DataFrame(varied)[self.schema.names]

    def reweight(self, population: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
        """Re-weight a population so its class-conditional marginals match the noisy ones.

        Iterative proportional fitting from ``weights`` (the released histogram), over the
        cells the population covers; without statistics the weights are returned unchanged.
        Post-processing: it reads only DP releases and the public population.
        """
        if self.marginals is None:
            return weights
        fitted = np.asarray(weights, dtype=np.float64).copy()
        labels = population[self.label_column].to_numpy()
        members = {label: np.flatnonzero(labels == label) for label in self.classes}
        cells = {grid.column.name: grid.cells(population[grid.column.name]) for grid in self.grids}
        for _ in range(RAKING_SWEEPS):
            for label, rows in members.items():
                for grid in self.grids:
                    row_cells = cells[grid.column.name][rows]
                    current = np.bincount(row_cells, weights=fitted[rows], minlength=grid.size)
                    covered = current > 0
                    target = self.marginals[label][grid.column.name] * covered
                    if target.sum() == 0:
                        continue
                    target *= current.sum() / target.sum()
                    fitted[rows] *= np.where(covered, target / np.where(covered, current, 1.0), 1.0)[row_cells]
        return fitted

    def embed(self, population: pd.DataFrame) -> np.ndarray:
        """Numeric features min-max scaled on public bounds; categoricals one-hot x weight."""
        return encode_rows(population, self.schema.features, self.categorical_weight)

    def summarise_reference(self, reference: pd.DataFrame) -> dict[str, np.ndarray]:
        """One-way distributions of the held-out reference table over every feature's cells."""
        return {grid.column.name: _distribution(grid.cells(reference[grid.column.name]), grid.size) for grid in self.grids}

    def quality(self, population: pd.DataFrame, reference_summary: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Mean one-way total variation distance to the reference over the features' cells."""
        distances = [
            0.5 * np.abs(_distribution(grid.cells(population[grid.column.name]), grid.size) - reference_summary[grid.column.name]).sum()
            for grid in self.grids
        ]
        return {"tvd_1way": float(np.mean(distances))}

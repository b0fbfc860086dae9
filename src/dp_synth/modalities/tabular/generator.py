"""Sampling from the released tabular statistics: the random API, the variation API, the raking.

Without statistics the random API draws every feature uniformly from its public domain and the
variation API redraws or moves cells. With them (``statistics.TabularStatistics``) the random
API draws each feature from its noisy marginal (given its tree parent) instead of uniformly, at
the released sub-cells, the variation API redraws cells from it (given its tree neighbours), and
the release is re-weighted to match the marginals. Everything here is post-processing of DP
releases and public knowledge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dp_synth.modalities.tabular.cells import CellGrid, TableLayout
from dp_synth.modalities.tabular.dependency_tree import DependencyTree, draw_rows
from dp_synth.modalities.tabular.estimation import has_spike
from dp_synth.modalities.tabular.schema import Column
from dp_synth.modalities.tabular.statistics import TabularStatistics
from dp_synth.pe.schedule import VariationSchedule

RAKING_SWEEPS = 10
"""Sweeps of iterative proportional fitting when the release is re-weighted to the marginals."""


def _move_numeric(values: np.ndarray, column: Column, degree: float, rng: np.random.Generator) -> np.ndarray:
    """Each value moved by U(-degree, degree) x span, kept within the public bounds."""
    moved = np.clip(values + rng.uniform(-degree, degree, size=len(values)) * column.span, column.low, column.high)
    return np.round(moved).astype(np.int64) if column.kind == "integer" else moved


@dataclass(frozen=True)
class TabularGenerator:
    """The random and variation APIs over a table's public cells, informed by released statistics.

    Attributes:
        layout: The classes and every feature's grid of cells.
        schedule: Variation degree over iterations.
        local_numeric_share: A numeric feature whose released marginals keep every cell at or
            below this share of a class varies by small moves (see ``moves_locally``).
        statistics: The released statistics, or ``None`` for a generator that knows only the
            public domain.
    """

    layout: TableLayout
    schedule: VariationSchedule
    local_numeric_share: float
    statistics: TabularStatistics | None

    @property
    def tree(self) -> DependencyTree | None:
        """The released dependency tree, if the statistics have one."""
        return self.statistics.tree if self.statistics is not None else None

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
        return self.statistics is None or not has_spike(grid, self.statistics.marginals, self.local_numeric_share)

    def _draw(self, grid: CellGrid, label: str, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` values of one feature for class ``label``: from its marginal, else uniform."""
        if self.statistics is None:
            return grid.uniform(size, rng)
        probabilities = self.statistics.marginals[label][grid.column.name]
        return self._values(grid, label, rng.choice(grid.size, size=size, p=probabilities), rng)

    def _values(self, grid: CellGrid, label: str, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Values of class ``label`` in the given cells (``CellGrid.values``): at the released
        sub-cells of a refined feature, else along the frequency polygon of its released marginal."""
        if self.statistics is None:
            return grid.values(cells, rng)
        refined = self.statistics.refined
        within = refined[label].get(grid.column.name) if refined is not None else None
        return grid.values(cells, rng, within, self.statistics.marginals[label][grid.column.name])

    def random_population(self, class_sizes: Mapping[str, int], rng: np.random.Generator) -> pd.DataFrame:
        """Draw ``class_sizes[c]`` rows per class: each feature independently from its public
        domain (uniformly, or from its noisy class-conditional marginal), or along the released
        dependency tree (a root from its marginal, every other feature given its parent; its
        monotone relations then put in order, ``DependencyTree.couple_monotone``)."""
        tree = self.tree
        parts = []
        for label, size in class_sizes.items():
            if tree is None:
                columns = {grid.column.name: self._draw(grid, label, size, rng) for grid in self.layout.grids}
            else:
                columns = self._draw_along_tree(label, size, rng)
            columns[self.layout.label_column] = np.repeat(np.array([label], dtype=object), size)
            parts.append(pd.DataFrame(columns))
        population = pd.concat(parts, ignore_index=True)[self.layout.schema.names]
        if tree is None or not any(tree.monotone):
            return population
        names = [grid.column.name for grid in self.layout.grids]
        coupled = tree.couple_monotone([population[name].to_numpy() for name in names], rng)
        return population.assign(**{names[child]: coupled[child] for child in np.flatnonzero(tree.monotone)})

    def _draw_along_tree(self, label: str, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """``size`` rows of class ``label``: coarse cells along the tree (``DependencyTree.draw_coarse``),
        then a fine cell within each from the fine marginal."""
        assert self.tree is not None
        coarse = self.tree.draw_coarse(self.layout.classes.index(label), size, rng)
        return {
            grid.column.name: self._values(grid, label, self._fine_within(feature, label, coarse[:, feature], rng), rng)
            for feature, grid in enumerate(self.layout.grids)
        }

    def _fine_within(self, feature: int, label: str, coarse: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A fine cell inside each given coarse cell, from the fine marginal of class ``label``
        restricted to it (uniform over the coarse cell if the marginal gives it no mass)."""
        assert self.statistics is not None and self.statistics.tree is not None
        grid, mapping = self.layout.grids[feature], self.statistics.tree.coarse[feature]
        probabilities = self.statistics.marginals[label][grid.column.name]
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
        weights = self.tree.gibbs_weights(feature, self.layout.classes.index(label), coarse, rows)
        return self._fine_within(feature, label, draw_rows(weights, rng), rng)

    def vary(self, survivors: pd.DataFrame, iteration: int, iterations: int, rng: np.random.Generator) -> pd.DataFrame:
        """Return one variation per survivor; the label is never changed.

        A categorical cell, and a numeric cell whose marginal has a spike, is redrawn with
        probability r(t): from its marginal with statistics (given its tree neighbours with a
        tree), else uniformly; every other numeric cell moves by U(-r, r) x span (Tab-PE's
        operator, see ``moves_locally``).
        """
        degree = self.schedule.degree(iteration, iterations)
        label_column = self.layout.label_column
        labels = survivors[label_column].to_numpy()
        grids = self.layout.grids
        tree = self.tree
        coarse = self.layout.coarse_cells_of(survivors, tree.coarse) if tree is not None else []
        varied = {}
        for feature in tree.order if tree is not None else range(len(grids)):
            grid = grids[feature]
            values = survivors[grid.column.name].to_numpy()
            if self.moves_locally(grid):
                values = _move_numeric(values, grid.column, degree, rng)
            else:
                values = values.copy()
                redraw = rng.random(len(values)) < degree
                for label in self.layout.classes:
                    chosen = np.flatnonzero(redraw & (labels == label))
                    if tree is None:
                        values[chosen] = self._draw(grid, label, len(chosen), rng)
                    else:
                        values[chosen] = self._values(
                            grid, label, self._redraw_in_tree(feature, label, coarse, chosen, rng), rng
                        )
            if tree is not None:
                coarse[feature] = tree.coarse[feature][grid.cells(pd.Series(values))]
            varied[grid.column.name] = values
        varied[label_column] = labels
        return pd.DataFrame(varied)[self.layout.schema.names]

    def reweight(self, population: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
        """Re-weight a population so its class-conditional marginals match the noisy ones.

        Iterative proportional fitting from ``weights`` (the released histogram), over the
        cells the population covers; without statistics the weights are returned unchanged.
        Post-processing: it reads only DP releases and the public population.
        """
        if self.statistics is None:
            return weights
        fitted = np.asarray(weights, dtype=np.float64).copy()
        labels = population[self.layout.label_column].to_numpy()
        members = {label: np.flatnonzero(labels == label) for label in self.layout.classes}
        grids = self.layout.grids
        cells = {grid.column.name: grid.cells(population[grid.column.name]) for grid in grids}
        for _ in range(RAKING_SWEEPS):
            for label, rows in members.items():
                for grid in grids:
                    row_cells = cells[grid.column.name][rows]
                    current = np.bincount(row_cells, weights=fitted[rows], minlength=grid.size)
                    covered = current > 0
                    target = self.statistics.marginals[label][grid.column.name] * covered
                    if target.sum() == 0:
                        continue
                    target *= current.sum() / target.sum()
                    fitted[rows] *= np.where(covered, target / np.where(covered, current, 1.0), 1.0)[row_cells]
        return fitted

"""The public cells of a table: every feature's grid of marginal cells, the classes, and the row embedding.

Every bound and category comes from the ``TableSchema``: the statistics count private rows in
these cells and the generator draws values in them, but no cell is derived from a private row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dp_synth.modalities.tabular.dependency_tree import draw_rows
from dp_synth.modalities.tabular.schema import Column, TableSchema, category_codes

EXACT_INTEGER_CELLS = 128
"""Integer columns with at most this many values get one marginal cell per value."""


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
        if self.exact:  # a value beyond located bounds (``bounds.located_schema``) counts on the bound
            return np.clip(numbers - column.low, 0, self.size - 1).astype(np.int64)
        inner = np.clip(((numbers - column.low) / column.span * self.bins).astype(np.int64), 0, self.bins - 1) + 1
        return np.where(numbers <= column.low, 0, np.where(numbers >= column.high, self.bins + 1, inner))

    @property
    def binned(self) -> bool:
        """Whether this is a numeric column cut into equal-width bins (not one cell per value)."""
        return self.column.is_numeric and not self.exact

    def values(
        self,
        cells: np.ndarray,
        rng: np.random.Generator,
        within: np.ndarray | None = None,
        marginal: np.ndarray | None = None,
    ) -> np.ndarray:
        """A value for each cell index: the category, the integer, or for a bin a draw in it.

        A bin's value is uniform in it; with ``marginal`` (a distribution over this grid's
        cells), from the frequency polygon through the neighbouring bins' densities
        (``polygon_slopes``), which keeps the bin's mass; with ``within`` (shape (cells,
        sub-cells), each row a distribution over the bin's equal-width sub-cells, see
        ``sub_cells``), the midpoint of a sub-cell drawn from it.
        """
        column = self.column
        if not column.is_numeric:
            return np.asarray(column.categories, dtype=object)[cells]
        if self.exact:
            return (cells + int(column.low)).astype(np.int64)
        width = column.span / self.bins
        lower = column.low + (cells - 1) * width
        if within is None:
            position = rng.uniform(size=len(cells))
            if marginal is not None:
                position = linear_positions(position, polygon_slopes(marginal)[cells])
            drawn = (
                self._integers_within(cells, lower, lower + width, position)
                if column.kind == "integer"
                else lower + position * width
            )
        else:
            parts = within.shape[1]
            drawn = lower + (draw_rows(within[cells], rng) + 0.5) * width / parts
        drawn = np.where(cells == 0, column.low, np.where(cells == self.bins + 1, column.high, drawn))
        return np.round(drawn).astype(np.int64) if column.kind == "integer" else drawn

    def _integers_within(
        self, cells: np.ndarray, lower: np.ndarray, upper: np.ndarray, position: np.ndarray
    ) -> np.ndarray:
        """For each bin of an integer column (from ``lower`` to ``upper``), the integer that
        ``cells`` puts in it at ``position`` (in [0, 1]) along them: uniform positions draw each
        equally often (the midpoint, rounded, for a bin that holds none).

        A uniform value rounded would favour some integers: a bin 5.6 wide holds five or six of
        them, and the two at its edges would each get a share of it by rounding, which shows as
        a comb in any finer histogram of the release.
        """
        first = np.ceil(lower)
        first = np.where(self.cells(pd.Series(first)) < cells, first + 1, first)  # a lower edge counted below
        last = np.floor(upper)
        last = np.where(self.cells(pd.Series(last)) > cells, last - 1, last)  # an upper edge counted above
        count = last - first + 1
        drawn = first + np.minimum(np.floor(position * np.maximum(count, 1)), np.maximum(count, 1) - 1)
        return np.where(count >= 1, drawn, np.round((lower + upper) / 2))

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


def polygon_slopes(marginal: np.ndarray) -> np.ndarray:
    """Per cell of a binned grid (``CellGrid``), the slope a of the density 1 + a (u - 1/2) that
    its values follow across the bin (u from 0 to 1; 0 for the cells on the bounds).

    The slope is the frequency polygon's: the line through the two neighbouring bins' densities,
    (right - left) / (2 x this bin's), limited to [-2, 2] so that the density stays non-negative;
    a bin at an end of the range takes its own density for the missing neighbour. A bin keeps its
    mass, so every count in the grid's cells is unchanged; what changes is where values fall
    inside a bin: a skewed column (sizes bunched near the lower end of a wide bin) is no longer
    spread flat across each bin. A frequency polygon estimates a smooth density with less error
    than the histogram it is drawn through (Scott, 1985). Written here because scipy's
    ``rv_histogram`` is the flat histogram and no library draws from a mass-keeping polygon.
    """
    inner = np.asarray(marginal[1:-1], dtype=np.float64)
    padded = np.concatenate([inner[:1], inner, inner[-1:]])
    slopes = np.divide(padded[2:] - padded[:-2], 2 * inner, out=np.zeros_like(inner), where=inner > 0)
    return np.concatenate([[0.0], np.clip(slopes, -2.0, 2.0), [0.0]])


def linear_positions(uniform: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """Positions in [0, 1] drawn from the densities 1 + slope (u - 1/2), from ``uniform`` draws:
    the inverse of the cumulative u + slope (u^2 - u) / 2, in the form stable at slope 0."""
    half = 1.0 - slopes / 2
    root = np.sqrt(np.maximum(half * half + 2 * slopes * uniform, 0.0))
    return np.clip(2 * uniform / np.maximum(half + root, np.finfo(np.float64).tiny), 0.0, 1.0)


@dataclass(frozen=True)
class TableLayout:
    """The public layout that the statistics and the generator share: the classes, and the
    ``CellGrid`` of every feature.

    Attributes:
        schema: The public domain of every column.
        bins: Equal-width bins of a numeric feature's marginal cells (see ``CellGrid``).
    """

    schema: TableSchema
    bins: int

    @property
    def label_column(self) -> str:
        """The schema's label column."""
        return self.schema.label_column

    @property
    def classes(self) -> tuple[str, ...]:
        """The schema's declared classes."""
        return self.schema.classes

    @property
    def grids(self) -> tuple[CellGrid, ...]:
        """The marginal cell grid of every feature."""
        return tuple(CellGrid(column, self.bins) for column in self.schema.features)

    def rows_by_class(self, table: pd.DataFrame) -> list[pd.DataFrame]:
        """The rows of each class, in the order of ``classes``."""
        labels = table[self.label_column].to_numpy()
        return [table[labels == label] for label in self.classes]

    def coarse_cells_of(self, table: pd.DataFrame, maps: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The coarse cell of every row in every feature, given each feature's fine -> coarse map."""
        return [mapping[grid.cells(table[grid.column.name])] for grid, mapping in zip(self.grids, maps, strict=True)]


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

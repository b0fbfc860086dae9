"""Tabular modality: random and variation APIs over a public schema, and the row embedding.

Nothing here reads private rows: every bound and category comes from the ``TableSchema``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dp_synth.core.schema import Column, TableSchema

_QUALITY_BINS = 20


@dataclass(frozen=True)
class VariationSchedule:
    """Degree of variation over iterations: r(t) = r0 - (r0 - rf) (t / T) ** gamma.

    A categorical cell is redrawn with probability r(t); a numeric cell moves by
    U(-r(t), r(t)) x (max - min), then is clipped (and rounded for integers).
    """

    r0: float = 0.5
    rf: float = 0.01
    gamma: float = 0.2

    def degree(self, iteration: int, iterations: int) -> float:
        """Return r(t) for iteration ``iteration`` of ``iterations``."""
        return self.r0 - (self.r0 - self.rf) * (iteration / iterations) ** self.gamma


def _draw_column(column: Column, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``size`` values uniformly from a column's public domain."""
    if column.kind == "categorical":
        return np.asarray(column.categories, dtype=object)[rng.integers(len(column.categories), size=size)]
    if column.kind == "integer":
        return rng.integers(int(column.low), int(column.high), endpoint=True, size=size)
    return rng.uniform(column.low, column.high, size=size)


def _move_numeric(values: np.ndarray, column: Column, degree: float, rng: np.random.Generator) -> np.ndarray:
    moved = np.clip(values + rng.uniform(-degree, degree, size=len(values)) * column.span, column.low, column.high)
    return np.round(moved).astype(np.int64) if column.kind == "integer" else moved


def _category_codes(values: pd.Series, column: Column) -> np.ndarray:
    return pd.Categorical(values, categories=column.categories).codes


def _marginal(values: pd.Series, column: Column) -> np.ndarray:
    """Empirical distribution of one column over its public domain (numeric: equal-width bins)."""
    if column.is_numeric:
        edges = np.linspace(column.low, column.high, _QUALITY_BINS + 1)
        counts, _ = np.histogram(values.to_numpy(dtype=float), bins=edges)
    else:
        counts = np.bincount(_category_codes(values, column), minlength=len(column.categories))
    return counts / max(counts.sum(), 1)


@dataclass(frozen=True)
class TabularModality:
    """PE over rows of a table with a public schema.

    Attributes:
        schema: The public domain of every column.
        schedule: Variation degree over iterations.
        categorical_weight: Scale of one-hot blocks in the embedding (numeric columns span [0, 1]).
    """

    schema: TableSchema
    schedule: VariationSchedule
    categorical_weight: float = 1.0 / 3.0

    @property
    def label_column(self) -> str:
        """The schema's label column."""
        return self.schema.label_column

    @property
    def classes(self) -> tuple[str, ...]:
        """The schema's declared classes."""
        return self.schema.classes

    @property
    def public_row_count(self) -> int | None:
        """The row count if the schema declares it public."""
        return self.schema.public_row_count

    @property
    def public_class_proportions(self) -> Mapping[str, float] | None:
        """Class proportions if the schema declares them public."""
        return self.schema.class_proportions

    def random_population(self, class_sizes: Mapping[str, int], rng: np.random.Generator) -> pd.DataFrame:
        """Draw every feature uniformly from its public domain, ``class_sizes[c]`` rows per class."""
        size = sum(class_sizes.values())
        columns = {column.name: _draw_column(column, size, rng) for column in self.schema.features}
        columns[self.label_column] = np.repeat(list(class_sizes), list(class_sizes.values()))
        return pd.DataFrame(columns)[self.schema.names]

    def vary(
        self, survivors: pd.DataFrame, iteration: int, iterations: int, rng: np.random.Generator
    ) -> pd.DataFrame:
        """Return one variation per survivor; the label is never changed."""
        degree = self.schedule.degree(iteration, iterations)
        size = len(survivors)
        varied = {}
        for column in self.schema.features:
            values = survivors[column.name].to_numpy()
            if column.is_numeric:
                varied[column.name] = _move_numeric(values, column, degree, rng)
            else:
                redraw = rng.random(size) < degree
                values = values.copy()
                values[redraw] = _draw_column(column, int(redraw.sum()), rng)
                varied[column.name] = values
        varied[self.label_column] = survivors[self.label_column].to_numpy()
        return pd.DataFrame(varied)[self.schema.names]

    def embed(self, population: pd.DataFrame) -> np.ndarray:
        """Numeric features min-max scaled on public bounds; categoricals one-hot x weight."""
        blocks = []
        for column in self.schema.features:
            values = population[column.name]
            if column.is_numeric:
                blocks.append(((values.to_numpy(dtype=np.float32) - column.low) / column.span)[:, None])
            else:
                one_hot = np.zeros((len(values), len(column.categories)), dtype=np.float32)
                one_hot[np.arange(len(values)), _category_codes(values, column)] = self.categorical_weight
                blocks.append(one_hot)
        return np.hstack(blocks).astype(np.float32, copy=False)

    def summarise_reference(self, reference: pd.DataFrame) -> dict[str, np.ndarray]:
        """One-way marginals of the held-out reference table, per column."""
        return {column.name: _marginal(reference[column.name], column) for column in self.schema.columns}

    def quality(self, population: pd.DataFrame, reference_summary: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Mean one-way total variation distance to the reference (lower is better)."""
        distances = [
            0.5 * np.abs(_marginal(population[column.name], column) - reference_summary[column.name]).sum()
            for column in self.schema.columns
        ]
        return {"tvd_1way": float(np.mean(distances))}

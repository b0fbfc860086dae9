"""DP bounds: where a numeric column's data lies inside a generously declared range.

Users declare bounds from public knowledge, often far wider than the data (a credit amount
"0 to 100,000" for amounts of 250 to 18,000). Equal-width cells over such a range leave the
data in a few of them and the generator drawing values where there are none. Before the other
statistics, one Gaussian release counts every binned numeric column's rows in cells that grow
geometrically from each declared bound towards the middle, and from 0 outwards when the range
is declared across it (``geometric_edges``): fine near the bounds and near 0, where a loose
declaration leaves the data, coarse in between. From the noisy counts,
``located_range`` reads where the data begins and ends (a noisy cumulative count crossing its
noise), and the column's domain shrinks to that range when it is at most ``NARROWING`` of the
declared one. Every later statistic, the generator's draws and the embedding then use the
located domain, which lies inside the declared one: the release stays inside the declaration.
A column so narrowed gets a warning that says what would help (``loose_bounds_warnings``).

A record falls in one cell of each located column, so the release's L2 sensitivity is
sqrt(located columns) under add/remove. Everything here except ``locate_counts`` reads only the
public schema and the noisy release.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from functools import partial

import numpy as np
import pandas as pd

from dp_synth.modalities.tabular.schema import Column, TableSchema, readable_number
from dp_synth.pe.engine import PrivateRows, private_rows

HALVINGS = 8
"""Geometric cells per side of a located column: the innermost spans half the declared range,
the outermost 1/2^HALVINGS of it (2 x HALVINGS cells in all)."""
DETECTION_Z = 3.0
"""A side's cumulative noisy count marks data when it exceeds this many standard deviations of
its own noise (sigma x sqrt(cells summed)). With 2, one column in ten of the generously declared
suite tables crossed on noise alone before reaching its data, and kept its declared bounds."""
NARROWING = 0.5
"""The located range replaces the declared one only when it is at most this share of it: a
declaration about right is kept (no tail is clamped for a small gain). At 0.25 (suite tables
whose bounds are located, seeds 0-2) documented bounds gain (Adult's gradient-boosting accuracy
0.849 -> 0.853, ann_thyroid's 0.948 -> 0.950) and generous ones lose (Adult 0.848 -> 0.844),
and one loose column of amounts (250-18,000 declared 0-100,000, located 0-50,000) is no longer
narrowed."""
MAX_UNDETECTED_SHARE = 0.2
"""The plan locates bounds only when the detection threshold of a whole side stays below this
share of the rows: the most rows a side can hold unnoticed before the data is found. At 0.2 a
table of 800 rows with one loosely declared column (amounts log-uniform over 250-18,000 declared
0-100,000) is located, with 1.9% of its rows beyond the located bounds on average (9.4% at
worst, 20 noise draws); with two such columns the threshold is 23% and 7.3% fall beyond
(27% at worst): not located."""


def bounds_threshold(sigma: float) -> float:
    """Rows a side of a located column must hold before its data is detected, at most: the
    detection threshold over all ``HALVINGS`` cells of the side, for noise ``sigma``."""
    return DETECTION_Z * sigma * math.sqrt(HALVINGS)


def geometric_edges(column: Column, halvings: int = HALVINGS) -> np.ndarray:
    """The cell edges of ``column``'s declared range, ascending: from each bound, cells
    1/2^halvings, ..., 1/4, 1/2 of the span wide towards the middle (2 x ``halvings`` cells).

    A range declared across 0 (-6,000 to 6,000 for data within +-500) also gets edges growing
    from 0 towards each bound (bound / 2^halvings, ..., bound / 2): signed measurements lie
    about 0, where cells grown from the bounds alone are a quarter of the span wide and the
    located range could not narrow.
    """
    steps = column.span * 0.5 ** np.arange(halvings, 0, -1)
    edges = [[column.low], column.low + steps, column.high - steps[::-1][1:], [column.high]]
    if column.low < 0.0 < column.high:
        from_zero = 0.5 ** np.arange(1, halvings + 1)
        edges += [[0.0], column.low * from_zero, column.high * from_zero]
    return np.unique(np.concatenate(edges))


def _cells(column: Column) -> int:
    """How many geometric cells ``column`` is counted in."""
    return len(geometric_edges(column)) - 1


def located_columns(schema: TableSchema, features: Sequence[int]) -> tuple[Column, ...]:
    """The columns of these features."""
    return tuple(schema.features[feature] for feature in features)


def locate_counts(columns: Sequence[Column], private: pd.DataFrame) -> np.ndarray:
    """The rows in each geometric cell (``geometric_edges``) of every column, concatenated.

    One record falls in exactly one cell of each column (values outside the declared range in
    the outermost cells), so adding or removing it changes this vector by sqrt(columns) in L2
    norm.
    """
    blocks = []
    for column in columns:
        edges = geometric_edges(column)
        cells = np.clip(
            np.searchsorted(edges, private[column.name].to_numpy(np.float64), side="right") - 1, 0, len(edges) - 2
        )
        blocks.append(np.bincount(cells, minlength=len(edges) - 1))
    return np.concatenate(blocks).astype(np.float64) if blocks else np.zeros(0)


def measure_locate_counts(columns: Sequence[Column], private: pd.DataFrame | PrivateRows) -> np.ndarray:
    """``locate_counts``, counted where the engine holds the rows."""
    return private_rows(private).total(partial(locate_counts, tuple(columns)))


def _first_crossing(counts: np.ndarray, sigma: float) -> int | None:
    """The first cell at which the running sum of ``counts`` exceeds ``DETECTION_Z`` x its noise."""
    running = np.cumsum(counts)
    noise = DETECTION_Z * sigma * np.sqrt(np.arange(1, len(counts) + 1))
    crossed = np.flatnonzero(running > noise)
    return int(crossed[0]) if crossed.size else None


def located_range(column: Column, noisy: np.ndarray, sigma: float) -> tuple[float, float]:
    """Where ``column``'s data lies, from its noisy geometric counts (post-processing).

    From each bound, the first cell at which the noisy cumulative count crosses
    ``DETECTION_Z`` x its noise holds data; the located bound is the outer edge of the cell
    beyond it (towards the declared bound), since the rows before the crossing, fewer than the
    threshold, are the data's tail: on the generously declared churn table, 4.8% of a column's
    rows fell beyond its located bounds without that cell (up to 17%), 0.3% with it (up to 2.1%;
    5 noise draws). Rows beyond it fall in the bound's own cell. A side that never crosses keeps
    its declared bound. The declared range is returned when the located one is not at most
    ``NARROWING`` of it. An integer column's located range is widened to whole numbers.
    """
    edges = geometric_edges(column)
    low, high = column.low, column.high
    first = _first_crossing(noisy, sigma)
    last = _first_crossing(noisy[::-1], sigma)
    if first is not None:
        low = float(edges[max(first - 1, 0)])
    if last is not None:
        high = float(edges[len(edges) - 1 - max(last - 1, 0)])
    if column.kind == "integer":
        low, high = float(math.floor(low)), float(math.ceil(high))
    if high <= low or high - low > NARROWING * column.span:
        return column.low, column.high
    return low, high


def located_schema(schema: TableSchema, features: Sequence[int], noisy: np.ndarray, sigma: float) -> TableSchema:
    """``schema`` with each located feature's bounds replaced by its ``located_range``.

    ``noisy`` is the release of ``locate_counts`` over these features, in order. An integer
    column located to few values (calls per day declared 0 to 200 for data from 0 to 20) gets
    a cell per value (``cells.CellGrid``) instead of bins several values wide, inside which every
    value would be drawn equally often.
    """
    columns = located_columns(schema, features)
    ends = np.cumsum([_cells(column) for column in columns])
    replaced = {}
    for column, counts in zip(columns, np.split(noisy, ends[:-1]), strict=True):
        low, high = located_range(column, counts, sigma)
        replaced[column.name] = dataclasses.replace(column, low=low, high=high)
    return dataclasses.replace(schema, columns=tuple(replaced.get(column.name, column) for column in schema.columns))


def loose_bounds_warnings(declared: TableSchema, located: TableSchema) -> tuple[str, ...]:
    """What would help where a numeric column's declared bounds are far wider than the DP
    estimate of its data's range: its range in ``located`` (``located_schema``) at most
    ``NARROWING`` of its declared one. Both ranges are public, the located one a DP release, so
    they may be printed; the warning holds no other value.
    """
    return tuple(
        f"declare tighter bounds for column {column.name!r}: the DP estimate of its range is "
        f"{readable_number(estimate.low)} to {readable_number(estimate.high)}, declared "
        f"{readable_number(column.low)} to {readable_number(column.high)} (the release is drawn within the estimate, "
        "which may cut the data's tails; the fidelity metrics bin and scale the column on the declared bounds)"
        for column, estimate in zip(declared.columns, located.columns, strict=True)
        if column.is_numeric and estimate != column and estimate.span <= NARROWING * column.span
    )

"""Contribution bounding: user-level DP when one person (a privacy unit) has several rows.

The schema may name a column that identifies the person, household or account behind each row
(``"privacy_unit": "customer_id"``). Neighbouring datasets then differ by one unit's whole
contribution, and each unit keeps at most ``dp.max_rows_per_unit`` rows, drawn at random, before
anything is counted: every release's sensitivity is that bound times a row's
(``accounting.count_sensitivity``, ``accounting.statistics_sensitivity_factor``). The unit column
is dropped here, so nothing downstream (the statistics, the embedding, the generator, the
release) sees it.

Each row gets an independent uniform key and a unit keeps its rows with the smallest keys: a
uniform random subset of its rows, drawn independently of every other unit's. The bounded data
of two datasets that differ in one unit can therefore be coupled to differ in that unit's kept
rows alone (at most ``max_rows_per_unit``), which is what the sensitivities assume. Rows with no
unit value count as one unit (the safe side). On Spark the keys are drawn and the rows grouped
in the executors: nothing is collected to the driver.

Nothing about the bounding is logged or returned beyond the public bound: how many units had
more rows, or how many rows were dropped, would be private counts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

_KEY = "__dp_synth_unit_key"


def bounded_contributions(private: Any, unit: str, max_rows: int, rng: np.random.Generator) -> Any:
    """The private rows with at most ``max_rows`` of each unit of column ``unit``, drawn at
    random, without that column.

    Args:
        private: The private rows: a pandas or a Spark DataFrame.
        unit: The column identifying each row's privacy unit.
        max_rows: The most rows a unit keeps, >= 1.
        rng: Draws the keys on pandas, and the seed of Spark's per-row keys.

    Raises:
        KeyError: when the rows have no column ``unit``.
    """
    if unit not in private.columns:  # a pandas or a Spark DataFrame's column names
        raise KeyError(unit)
    if isinstance(private, pd.DataFrame):
        keyed = private.assign(**{_KEY: rng.random(len(private))})
        kept = keyed.sort_values(_KEY, kind="stable").groupby(unit, sort=False, dropna=False).head(max_rows)
        return kept.sort_index().drop(columns=[unit, _KEY])
    return _bounded_spark(private, unit, max_rows, int(rng.integers(2**31)))


def _bounded_spark(private: Any, unit: str, max_rows: int, seed: int) -> Any:
    """``bounded_contributions`` on a Spark DataFrame: keys and grouping in the executors."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    order = Window.partitionBy(unit).orderBy(F.col(_KEY))
    return (
        private.withColumn(_KEY, F.rand(seed))
        .withColumn("__dp_synth_rank", F.row_number().over(order))
        .where(F.col("__dp_synth_rank") <= max_rows)
        .drop(unit, _KEY, "__dp_synth_rank")
    )

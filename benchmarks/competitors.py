"""Competitor synthesisers, MST and AIM from smartnoise-synth, run on a public schema.

Privacy hygiene: the competitors never see a bound or a category list taken from the
private rows. smartnoise's default transformers infer bounds and category lists from the
data they are fitted on, so this module does its own encoding from the public schema:

* a categorical column becomes the index of its value in the declared ``categories``;
* a numeric column becomes the index of its equal-width bin on the public ``[min, max]``
  (``NUMERIC_BINS`` bins; an integer column with fewer values gets one bin per value);

and hands smartnoise a ``TableTransformer`` of ``DeclaredCodes`` column transformers, whose
cardinality is declared up front, so nothing is fitted on the private rows and no
preprocessing budget is spent. Synthetic codes are mapped back: categories to their labels,
bins to a uniform draw inside the bin (a uniform integer of the bin for integer columns).
The whole ``(epsilon, delta)`` budget goes to the synthesiser (both convert it to zCDP).
As in their reference implementations, MST and AIM treat the private row count as public.

Installation (smartnoise-sql pins ``pandas<3``; it runs with pandas 3 for this use)::

    pip install torch==2.13.0
    pip install "Faker>=17" "disjoint-set>=0.9,<0.10" "mbi>=1.1,<2" "opacus>=0.14,<0.15" \\
        "pac-synth>=0.0.8,<0.0.9" "PyYAML>=6.0.1,<7" "antlr4-python3-runtime==4.9.3" \\
        "graphviz>=0.17,<1" "opendp>=0.14.1,<0.15" "sqlalchemy>=2,<3"
    pip install --no-deps smartnoise-synth==1.0.8 smartnoise-sql==1.0.10

Usage::

    python benchmarks/competitors.py mst --rows 2000 --epsilon 1
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
from snsynth.aim import AIMSynthesizer
from snsynth.mst import MSTSynthesizer
from snsynth.transform.base import ColumnTransformer
from snsynth.transform.definitions import ColumnType
from snsynth.transform.table import TableTransformer

from dp_synth.evaluation.tabular import classifier_utility
from dp_synth.modalities.tabular.schema import Column, TableSchema, category_codes, conform, parse_schema

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ADULT = PROJECT_ROOT / "data" / "01_raw" / "adult"

NUMERIC_BINS = 32
"""Equal-width bins per numeric column on its public bounds. Two binned columns make 1,024
cells, well under AIM's default limit of 10,000 cells per marginal; finer bins spread the
Gaussian noise of MST's and AIM's measurements over more, emptier cells."""

SYNTHESIZERS = {"mst": MSTSynthesizer, "aim": AIMSynthesizer}


class DeclaredCodes(ColumnTransformer):
    """Integer codes ``0 .. cardinality - 1`` passed through, with the cardinality declared.

    The transformer is complete at construction, so smartnoise never fits it on data.
    """

    def __init__(self, cardinality: int) -> None:
        """Declare the number of codes of the column."""
        self._cardinality = cardinality
        super().__init__()

    @property
    def output_type(self) -> ColumnType:
        """Always categorical."""
        return ColumnType.CATEGORICAL

    @property
    def cardinality(self) -> list[int]:
        """The declared number of codes."""
        return [self._cardinality]

    def _clear_fit(self) -> None:
        self._fit_complete = True
        self.output_width = 1

    def _fit(self, val: int) -> None:
        """Nothing is learnt from the data."""

    def _transform(self, val: int) -> int:
        return int(val)

    def _inverse_transform(self, val: int) -> int:
        return int(val)


def bin_count(column: Column) -> int:
    """Number of codes of a column: categories, or bins of a numeric column."""
    if not column.is_numeric:
        return len(column.categories)
    if column.kind == "integer":
        return min(NUMERIC_BINS, int(column.high - column.low) + 1)
    return NUMERIC_BINS


def _integer_bin_starts(column: Column) -> np.ndarray:
    """First integer of each bin of an integer column, plus one past the last (``max + 1``)."""
    values = int(column.high - column.low) + 1
    bins = bin_count(column)
    return int(column.low) + np.ceil(np.arange(bins + 1) * values / bins).astype(np.int64)


def encode(table: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Integer codes of a conformed table: category indices and numeric bin indices."""
    codes = {}
    for column in schema.columns:
        values = table[column.name]
        if not column.is_numeric:
            codes[column.name] = category_codes(values, column)
        elif column.kind == "integer":
            starts = _integer_bin_starts(column)
            codes[column.name] = np.searchsorted(starts, values.to_numpy(), side="right") - 1
        else:
            scaled = (values.to_numpy(dtype=np.float64) - column.low) / column.span
            codes[column.name] = np.clip(np.floor(scaled * NUMERIC_BINS), 0, NUMERIC_BINS - 1).astype(np.int64)
    return pd.DataFrame(codes)


def decode(codes: pd.DataFrame, schema: TableSchema, rng: np.random.Generator) -> pd.DataFrame:
    """Values from codes: category labels, and a uniform draw inside each numeric bin."""
    table = {}
    for column in schema.columns:
        code = codes[column.name].to_numpy(dtype=np.int64)
        if not column.is_numeric:
            table[column.name] = np.asarray(column.categories)[code]
        elif column.kind == "integer":
            starts = _integer_bin_starts(column)
            table[column.name] = rng.integers(starts[code], starts[code + 1])
        else:
            width = column.span / NUMERIC_BINS
            drawn = column.low + (code + rng.random(len(code))) * width
            table[column.name] = np.clip(drawn, column.low, column.high)
    return conform(pd.DataFrame(table), schema)


@contextlib.contextmanager
def _sampling_independently(synthesizer: Any) -> Iterator[None]:
    """Make the fitted graphical model sample rows i.i.d. instead of by randomized rounding.

    mbi 1.1.0's default ``synthetic_data(method="round")`` draws each column's uniforms from
    the rows' rank inside their parent group, in row order, so every sampled column becomes
    correlated with the row index and so with each other (on the binary XOR table, MST's
    output had |correlation| 0.98 between independent columns, 2-way TVD 0.18). ``"sample"``
    draws from the same fitted model without that defect.
    """
    model_type = type(synthesizer.synthesizer)
    draw = model_type.synthetic_data
    with mock.patch.object(
        model_type, "synthetic_data", lambda model, rows=None: draw(model, rows=rows, method="sample")
    ):
        yield


def run_competitor(
    name: str, train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, delta: float, seed: int | None = None
) -> tuple[pd.DataFrame, float]:
    """Fit MST or AIM on ``train`` at ``(epsilon, delta)`` and sample a synthetic table.

    The synthetic table has the schema's ``public_row_count`` rows when the schema declares
    one, else ``len(train)``.

    Args:
        name: ``"mst"`` or ``"aim"``.
        train: The private rows; they must conform to the schema.
        schema_json: The public schema, in the project's JSON form.
        epsilon: Privacy budget epsilon, all of it spent by the synthesiser.
        delta: Privacy budget delta, passed to the synthesiser.
        seed: Seeds numpy's global generator (used by smartnoise and mbi for selection and
            sampling) and the decoding draws. OpenDP draws the Gaussian noise from its own
            secure generator, so runs are never exactly reproducible.

    Returns:
        The synthetic table conformed to the schema, and the wall time in seconds of the
        whole run (encoding, fitting, sampling, decoding).
    """
    if name not in SYNTHESIZERS:
        raise ValueError(f"name must be one of {sorted(SYNTHESIZERS)}, got {name!r}")
    schema = parse_schema(schema_json)
    started = time.perf_counter()
    codes = encode(conform(train, schema), schema)
    transformer = TableTransformer([DeclaredCodes(bin_count(column)) for column in schema.columns])
    synthesizer = SYNTHESIZERS[name](epsilon=float(epsilon), delta=delta)
    if seed is not None:
        np.random.seed(seed)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Pandas dataframe inputs are deprecated")
        synthesizer.fit(codes, transformer=transformer)
        with _sampling_independently(synthesizer):
            synthetic_codes = synthesizer.sample(schema.public_row_count or len(train))
    synthetic = decode(synthetic_codes, schema, np.random.default_rng(seed))
    return synthetic, time.perf_counter() - started


def main() -> None:
    """Run one competitor on (a prefix of) Adult; print its time and gradient-boosting accuracy."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(SYNTHESIZERS))
    parser.add_argument("--rows", type=int, default=None, help="use the first ROWS training rows")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    schema_json = json.loads((ADULT / "schema.json").read_text())
    schema = parse_schema(schema_json)
    train = pd.read_csv(ADULT / "adult_train.csv").iloc[: arguments.rows]
    if arguments.rows is not None:
        schema_json = {**schema_json, "public_row_count": len(train)}
    test = conform(pd.read_csv(ADULT / "adult_test.csv"), schema)
    synthetic, seconds = run_competitor(
        arguments.name, train, schema_json, arguments.epsilon, arguments.delta, arguments.seed
    )
    real = classifier_utility(conform(train, schema), test, schema, seed=arguments.seed)["accuracy"]
    fake = classifier_utility(synthetic, test, schema, seed=arguments.seed)["accuracy"]
    print(f"{arguments.name} on {len(train)} Adult rows, epsilon {arguments.epsilon}, delta {arguments.delta}")
    print(f"  wall time                                  {seconds:8.1f} s")
    print(f"  gradient boosting, trained on real rows    {real:8.4f}")
    print(f"  gradient boosting, trained on synthetic    {fake:8.4f}")


if __name__ == "__main__":
    main()

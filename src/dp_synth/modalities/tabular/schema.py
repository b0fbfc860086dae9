"""The declared public domain of a table, and validation of private rows against it.

A schema is public knowledge: category lists, numeric bounds, the label column and
(optionally) the public row count and class proportions. It is never derived from the
private rows. JSON form::

    {
      "label_column": "class",
      "public_row_count": 32561,                     # optional
      "class_proportions": {"<=50K": 0.76, ...},     # optional, only if public
      "columns": {
        "age": {"type": "integer", "min": 17, "max": 90},
        "hours": {"type": "float", "min": 0.0, "max": 99.5},
        "sex": {"type": "categorical", "categories": ["Female", "Male"]}
      }
    }
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dp_synth.pe.engine import ON_INVALID, OnInvalid
from dp_synth.pe.schema import SchemaError, parse_privacy_unit

NUMERIC_TYPES = ("integer", "float")
COLUMN_TYPES = (*NUMERIC_TYPES, "categorical")
PROBLEMS = ("missing", "non-numeric", "outside", "fractional")
"""The kinds of problems of a value, in the order of ``problem_counts``' columns."""


@dataclass(frozen=True)
class Column:
    """One column's public domain.

    Attributes:
        name: Column name.
        kind: ``"integer"``, ``"float"`` or ``"categorical"``.
        low: Lower bound of a numeric column.
        high: Upper bound of a numeric column.
        categories: Allowed values of a categorical column, in declared order.
    """

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    categories: tuple[str, ...] = ()

    @property
    def is_numeric(self) -> bool:
        """Whether the column is integer or float."""
        return self.kind in NUMERIC_TYPES

    @property
    def span(self) -> float:
        """Width of a numeric domain (1 for a single-point domain, to avoid division by 0)."""
        return (self.high - self.low) or 1.0


@dataclass(frozen=True)
class TableSchema:
    """The public domain of a labelled table.

    Attributes:
        columns: Every released column, the label included.
        label_column: The label's name.
        public_row_count: The private row count, if declared public.
        class_proportions: Class proportions, if declared public.
        privacy_unit: The private file's column naming each row's person (``parse_privacy_unit``).
        public_unit_count: With a privacy unit, the number of persons, if declared public (the
            adaptive plan sizes the generator for the rows a run reads).
    """

    columns: tuple[Column, ...]
    label_column: str
    public_row_count: int | None = None
    class_proportions: Mapping[str, float] | None = None
    privacy_unit: str | None = None
    public_unit_count: int | None = None

    @property
    def names(self) -> list[str]:
        """All column names, label included, in declared order."""
        return [column.name for column in self.columns]

    @property
    def label(self) -> Column:
        """The label column."""
        return self.column(self.label_column)

    @property
    def classes(self) -> tuple[str, ...]:
        """The declared classes (the label column's categories)."""
        return self.label.categories

    @property
    def features(self) -> tuple[Column, ...]:
        """Every column except the label."""
        return tuple(column for column in self.columns if column.name != self.label_column)

    def column(self, name: str) -> Column:
        """Return the column called ``name``."""
        for column in self.columns:
            if column.name == name:
                return column
        raise SchemaError(f"schema has no column {name!r}")


def _parse_column(name: str, spec: Mapping[str, Any]) -> Column:
    kind = spec.get("type")
    if kind not in COLUMN_TYPES:
        raise SchemaError(f"column {name!r}: type must be one of {COLUMN_TYPES}, got {kind!r}")
    if kind == "categorical":
        categories = spec.get("categories")
        if not isinstance(categories, Sequence) or isinstance(categories, str) or not categories:
            raise SchemaError(f"column {name!r}: categorical needs a non-empty 'categories' list")
        categories = tuple(str(category) for category in categories)
        if len(set(categories)) != len(categories):
            raise SchemaError(f"column {name!r}: 'categories' has duplicates")
        return Column(name=name, kind=kind, categories=categories)
    low, high = spec.get("min"), spec.get("max")
    if not all(isinstance(bound, (int, float)) and math.isfinite(bound) for bound in (low, high)):
        raise SchemaError(f"column {name!r}: numeric needs finite 'min' and 'max'")
    if low > high:
        raise SchemaError(f"column {name!r}: min {low} is above max {high}")
    if kind == "integer" and math.ceil(low) > math.floor(high):
        raise SchemaError(f"integer column {name!r}: no whole number lies in [{low}, {high}]")
    return Column(name=name, kind=kind, low=float(low), high=float(high))


def parse_schema(raw: Mapping[str, Any]) -> TableSchema:
    """Build a ``TableSchema`` from its JSON form, with clear errors for malformed input."""
    columns_spec = raw.get("columns")
    if not isinstance(columns_spec, Mapping) or not columns_spec:
        raise SchemaError("schema needs a non-empty 'columns' mapping")
    columns = tuple(_parse_column(name, spec) for name, spec in columns_spec.items())
    label_column = raw.get("label_column")
    schema = TableSchema(
        columns=columns,
        label_column=label_column,
        public_row_count=raw.get("public_row_count"),
        class_proportions=raw.get("class_proportions"),
        privacy_unit=parse_privacy_unit(raw, "schema", tuple(columns_spec)),
        public_unit_count=raw.get("public_unit_count"),
    )
    if label_column not in schema.names:
        raise SchemaError(f"label_column {label_column!r} is not one of the schema's columns")
    if schema.label.is_numeric:
        raise SchemaError(f"label column {label_column!r} must be categorical")
    if schema.public_row_count is not None and (
        not isinstance(schema.public_row_count, int) or schema.public_row_count < 1
    ):
        raise SchemaError(f"public_row_count must be a positive integer, got {schema.public_row_count!r}")
    if schema.public_unit_count is not None and (
        schema.privacy_unit is None or not isinstance(schema.public_unit_count, int) or schema.public_unit_count < 1
    ):
        raise SchemaError(
            f"public_unit_count must be a positive integer, with a privacy_unit, got {schema.public_unit_count!r}"
        )
    if schema.class_proportions is not None:
        _check_class_proportions(schema)
    return schema


def _check_class_proportions(schema: TableSchema) -> None:
    proportions = schema.class_proportions or {}
    if set(proportions) != set(schema.classes):
        raise SchemaError(
            f"class_proportions must name exactly the classes {list(schema.classes)}, got {sorted(proportions)}"
        )
    if any(not isinstance(p, (int, float)) or p <= 0 for p in proportions.values()):
        raise SchemaError("class_proportions must all be positive numbers")


def check_columns(table: pd.DataFrame, schema: TableSchema) -> None:
    """Raise ``SchemaError`` naming the schema's columns the table lacks and those it has
    besides (names only: the file's header, not a record)."""
    missing = [name for name in schema.names if name not in table.columns]
    extra = [name for name in table.columns if name not in schema.names]
    if missing or extra:
        raise SchemaError(f"table columns do not match the schema: missing {missing}, extra {extra}")


def _numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A numeric column's values as float64 (NaN where missing or not a number), and where missing."""
    return pd.to_numeric(values, errors="coerce").astype(np.float64), values.isna()


def problem_counts(table: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """How many values of each column have each kind of problem (``PROBLEMS``), shape
    (columns, kinds), int64: a sum over rows, so the Spark engine adds up its partitions'.

    Raises:
        SchemaError: for missing or extra columns.
    """
    check_columns(table, schema)
    counts = np.zeros((len(schema.columns), len(PROBLEMS)), dtype=np.int64)
    for row, column in enumerate(schema.columns):
        values = table[column.name]
        if column.is_numeric:
            numbers, missing = _numbers(values)
            found = {
                "missing": missing,
                "non-numeric": numbers.isna() & ~missing,
                "outside": (numbers < column.low) | (numbers > column.high),
                "fractional": (numbers != np.round(numbers)) & numbers.notna() & np.isfinite(numbers)
                if column.kind == "integer"
                else pd.Series(False, index=values.index),
            }
        else:
            missing = values.isna()
            found = {
                "missing": missing,
                "outside": ~missing & ~_category_text(values).str.strip().isin(column.categories),
            }
        for kind, where in found.items():
            counts[row, PROBLEMS.index(kind)] = int(np.count_nonzero(where))
    return counts


def describe_problems(counts: np.ndarray, schema: TableSchema) -> str:
    """The problems ``problem_counts`` found, each as its column, its kind and its count (never a
    value: the values are private); ``""`` when there is none."""
    found = []
    for (row, kind), count in np.ndenumerate(counts):
        if count:
            column = schema.columns[row]
            found.append(f"column {column.name!r} has {count} {_problem_text(kind, column)}")
    return "; ".join(found)


def _problem_text(kind: int, column: Column) -> str:
    name = PROBLEMS[kind]
    if name == "outside":
        if column.is_numeric:
            return f"values outside the declared domain [{column.low:g}, {column.high:g}]"
        return "values outside the declared categories"
    if name == "fractional":
        return "fractional values in an integer column"
    return f"{name} values"


def conform(table: pd.DataFrame, schema: TableSchema, on_invalid: OnInvalid = "stop") -> pd.DataFrame:
    """Fit ``table`` to ``schema`` and return it with canonical dtypes.

    Integers become int64, floats float64, categoricals str, columns in schema order. An
    invalid value (missing, not a number, outside the declared domain, fractional in an
    integer column) is handled as ``on_invalid`` says (see ``ON_INVALID``). ``clamp`` and
    ``drop`` change or remove each row on its own values alone, so the result differs by at most
    one row between neighbouring tables.

    Raises:
        SchemaError: for missing or extra columns; with ``stop``, for invalid values, naming
            each column, the kind of problem and its count, never a value.
    """
    if on_invalid not in ON_INVALID:
        raise ValueError(f"on_invalid must be one of {ON_INVALID}, got {on_invalid!r}")
    if on_invalid == "stop":
        problems = describe_problems(problem_counts(table, schema), schema)
        if problems:
            raise SchemaError(f"the table does not fit its declared schema: {problems}")
    check_columns(table, schema)
    conformed, valid = {}, np.ones(len(table), dtype=bool)
    for column in schema.columns:
        fit = _conform_numeric if column.is_numeric else _conform_categorical
        conformed[column.name], column_valid = fit(table[column.name], column, clamp=on_invalid == "clamp")
        valid &= column_valid
    frame = pd.DataFrame(conformed, index=pd.RangeIndex(len(table)))
    return frame if valid.all() else frame[valid].reset_index(drop=True)


def _conform_numeric(values: pd.Series, column: Column, *, clamp: bool) -> tuple[np.ndarray, np.ndarray]:
    """A numeric column's values in its dtype, and which are valid. ``clamp``: a number outside
    the bounds is clipped into them (an integer column's rounded first, to the nearest whole
    number in bounds), so only missing and non-numeric values are invalid."""
    numbers, _ = _numbers(values)
    integer = column.kind == "integer"
    low, high = (math.ceil(column.low), math.floor(column.high)) if integer else (column.low, column.high)
    if clamp:
        numbers = (np.round(numbers) if integer else numbers).clip(low, high)
        valid = numbers.notna()
    else:
        valid = (numbers >= column.low) & (numbers <= column.high)
        if integer:
            valid &= numbers == np.round(numbers)
    numbers = numbers.where(valid, low)
    return numbers.to_numpy(dtype=np.int64 if integer else np.float64), valid.to_numpy()


def _conform_categorical(values: pd.Series, column: Column, *, clamp: bool) -> tuple[np.ndarray, np.ndarray]:
    """A categorical column's values as text, and which are declared categories. A missing or
    undeclared value is invalid even with ``clamp``: categories have no nearest one to move
    it to (its row is dropped)."""
    del clamp
    text = _category_text(values).str.strip()
    valid = (values.notna() & text.isin(column.categories)).to_numpy()
    return text.where(valid, column.categories[0]).to_numpy(dtype=object), valid


def _category_text(values: pd.Series) -> pd.Series:
    """The values of a categorical column as text, the form of its declared categories.

    A CSV reader that guesses types turns categories that look like numbers (``"0"``, ``"1"``)
    into integers; their text is the declared category again.
    """
    return values if pd.api.types.is_string_dtype(values) else values.astype(str)


def readable_number(value: float) -> str:
    """A numeric value as a reader writes it: whole numbers with thousands separators from 100 up
    (``12,500``, never ``1.25e+04``), three significant digits below."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def category_codes(values: pd.Series, column: Column) -> np.ndarray:
    """Index of each value in the column's declared categories (int64); values read back as
    numbers (``0`` for the category ``"0"``) count as their text.

    Raises:
        SchemaError: if a value is not a declared category.
    """
    codes = pd.Categorical(_category_text(values), categories=column.categories).codes.astype(np.int64)
    if (codes < 0).any():
        raise SchemaError(f"column {column.name!r} has values outside the declared categories")
    return codes


def spark_columns(schema: TableSchema) -> str:
    """The conformed table's columns as a Spark DDL string (``conform``'s dtypes)."""
    kinds = {"integer": "bigint", "float": "double"}
    return ", ".join(f"`{column.name}` {kinds.get(column.kind, 'string')}" for column in schema.columns)

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

NUMERIC_TYPES = ("integer", "float")
COLUMN_TYPES = (*NUMERIC_TYPES, "categorical")
_SHOWN_VALUES = 5


class SchemaError(ValueError):
    """Raised when a schema is malformed or a table does not fit its schema."""


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
    """The public domain of a labelled table."""

    columns: tuple[Column, ...]
    label_column: str
    public_row_count: int | None = None
    class_proportions: Mapping[str, float] | None = None

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
    )
    if label_column not in schema.names:
        raise SchemaError(f"label_column {label_column!r} is not one of the schema's columns")
    if schema.label.is_numeric:
        raise SchemaError(f"label column {label_column!r} must be categorical")
    if schema.public_row_count is not None and (
        not isinstance(schema.public_row_count, int) or schema.public_row_count < 1
    ):
        raise SchemaError(f"public_row_count must be a positive integer, got {schema.public_row_count!r}")
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


def _describe(values: pd.Series) -> str:
    shown = values.drop_duplicates().head(_SHOWN_VALUES).tolist()
    more = values.nunique() - len(shown)
    return ", ".join(repr(value) for value in shown) + (f" and {more} more" if more > 0 else "")


def conform(table: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Check ``table`` against ``schema`` and return it with canonical dtypes.

    Integers become int64, floats float64, categoricals str, columns in schema order.

    Raises:
        SchemaError: naming the column and offending values, for missing or extra columns,
            missing values, non-numeric or out-of-bound numbers, undeclared categories and
            non-integer values in an integer column.
    """
    missing = [name for name in schema.names if name not in table.columns]
    extra = [name for name in table.columns if name not in schema.names]
    if missing or extra:
        raise SchemaError(f"table columns do not match the schema: missing {missing}, extra {extra}")
    conformed = {}
    for column in schema.columns:
        values = table[column.name]
        if values.isna().any():
            raise SchemaError(
                f"column {column.name!r} has {int(values.isna().sum())} missing values; "
                "declare an explicit category (e.g. '?') or fill them before the run"
            )
        conformed[column.name] = (
            _conform_numeric(values, column) if column.is_numeric else _conform_categorical(values, column)
        )
    return pd.DataFrame(conformed, index=pd.RangeIndex(len(table)))


def _conform_numeric(values: pd.Series, column: Column) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    not_numbers = values[numbers.isna()]
    if len(not_numbers):
        raise SchemaError(f"column {column.name!r} has non-numeric values: {_describe(not_numbers)}")
    outside = values[(numbers < column.low) | (numbers > column.high)]
    if len(outside):
        raise SchemaError(
            f"column {column.name!r} has {len(outside)} values outside the declared domain "
            f"[{column.low:g}, {column.high:g}]: {_describe(outside)}"
        )
    if column.kind == "integer":
        fractional = values[numbers != np.round(numbers)]
        if len(fractional):
            raise SchemaError(f"integer column {column.name!r} has fractional values: {_describe(fractional)}")
        return numbers.astype(np.int64).reset_index(drop=True)
    return numbers.astype(np.float64).reset_index(drop=True)


def _conform_categorical(values: pd.Series, column: Column) -> pd.Series:
    text = values.astype(str).str.strip()
    undeclared = text[~text.isin(column.categories)]
    if len(undeclared):
        raise SchemaError(
            f"column {column.name!r} has {len(undeclared)} values outside the declared categories: "
            f"{_describe(undeclared)}"
        )
    return text.reset_index(drop=True)


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


def check_every_class_present(present: Iterable[str], classes: Sequence[str], column: str) -> None:
    """Raise ``SchemaError`` if a declared class is not among the classes ``present`` in the
    private rows.

    Per-class PE cannot vote for a class with no private records; the data owner must drop
    the class from the schema (the check's outcome is shown only to the owner).
    """
    found = set(present)
    absent = [label for label in classes if label not in found]
    if absent:
        raise SchemaError(
            f"label column {column!r}: classes {absent} have no private rows; remove them from the schema's classes"
        )


def spark_columns(schema: TableSchema) -> str:
    """The conformed table's columns as a Spark DDL string (``conform``'s dtypes)."""
    kinds = {"integer": "bigint", "float": "double"}
    return ", ".join(f"`{column.name}` {kinds.get(column.kind, 'string')}" for column in schema.columns)


@dataclass(frozen=True)
class DeclaredClasses:
    """The entries every schema of labelled records declares.

    Attributes:
        classes: Each class name with its public note (a description, a glyph), in order.
        public_row_count: The private record count, if declared public.
        class_proportions: Class proportions, if declared public.
    """

    classes: Mapping[str, str]
    public_row_count: int | None
    class_proportions: Mapping[str, float] | None


def parse_declared_classes(raw: Mapping[str, Any], what: str, required: Sequence[str], note: str) -> DeclaredClasses:
    """Check a schema's required keys and its class entries.

    Args:
        raw: The schema's JSON form.
        what: The kind of schema, for messages (``"text schema"``).
        required: Keys besides ``classes`` that must be present.
        note: What each class maps to, for messages (``"a short public description"``).

    Raises:
        SchemaError: naming the missing or malformed entry.
    """
    for key in ("classes", *required):
        if key not in raw:
            raise SchemaError(f"{what}: missing {key!r}")
    classes = raw["classes"]
    if not isinstance(classes, Mapping) or len(classes) < 1:
        raise SchemaError(f"{what}: 'classes' must map each class name to {note}")
    count = raw.get("public_row_count")
    if count is not None and (not isinstance(count, int) or count < 2):
        raise SchemaError(f"{what}: 'public_row_count' must be an integer >= 2, got {count!r}")
    proportions = raw.get("class_proportions")
    if proportions is not None and set(proportions) != set(classes):
        raise SchemaError(f"{what}: 'class_proportions' must name exactly the declared classes")
    return DeclaredClasses({str(name): str(value) for name, value in classes.items()}, count, proportions)

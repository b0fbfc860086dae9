"""Public deterministic relations a schema may declare, which every generated row honours.

A relation is public knowledge about the domain, not a fact read off the private rows: a
column that is a code of another (Adult's education-num is the Census code of education), or
a combination no record can hold (a husband who is female). Declared in the schema as::

    "relations": {
      "determined": [{"column": "education-num", "by": "education", "map": {"Bachelors": 13, ...}}],
      "forbidden": [{"relationship": "Husband", "sex": "Female"}],
      "reason": "why these are public knowledge"
    }

The generator writes a determined column from its map on every row it makes, and redraws (or,
for a variation, leaves unvaried) a row that holds a forbidden combination: post-processing of
public knowledge, which costs no privacy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from dp_synth.modalities.tabular.schema import SchemaError, TableSchema

REDRAW_ATTEMPTS = 20
"""Redraws of a row holding a forbidden combination from the statistics, then as many from the
public domain, before the run says the schema's relations leave a class nothing to draw."""


@dataclass(frozen=True)
class DeterminedColumn:
    """A column whose value is a function of a categorical column.

    Attributes:
        column: The determined column.
        by: The categorical column it is a function of.
        mapping: Each of ``by``'s categories to its value of ``column``.
    """

    column: str
    by: str
    mapping: Mapping[str, Any]


@dataclass(frozen=True)
class PublicRelations:
    """The relations a schema declares (none by default).

    Attributes:
        determined: Columns written from another column's value.
        forbidden: Combinations of categories no row may hold, each ``{column: category}``.
    """

    determined: tuple[DeterminedColumn, ...] = ()
    forbidden: tuple[Mapping[str, str], ...] = ()

    def forbidden_rows(self, table: pd.DataFrame) -> np.ndarray:
        """Which rows hold a forbidden combination."""
        mask = np.zeros(len(table), dtype=bool)
        for combination in self.forbidden:
            holds = np.ones(len(table), dtype=bool)
            for column, category in combination.items():
                holds &= table[column].astype(str).to_numpy() == category
            mask |= holds
        return mask

    def with_determined(self, table: pd.DataFrame) -> pd.DataFrame:
        """The table with every determined column written from its map."""
        if not self.determined:
            return table
        return table.assign(
            **{
                relation.column: table[relation.by].astype(str).map(relation.mapping).to_numpy()
                for relation in self.determined
            }
        )

    def honoured(
        self,
        table: pd.DataFrame,
        replacements: Callable[[np.ndarray], pd.DataFrame],
        fallback: Callable[[np.ndarray], pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        """The table with its forbidden rows replaced (``replacements`` gets their positions and
        returns as many new rows, in order, of the same classes) until none is left, and its
        determined columns written. Rows still forbidden after ``REDRAW_ATTEMPTS`` are replaced
        from ``fallback`` for as many attempts more, if given (noisy statistics of a class with
        few rows can put almost all its mass on forbidden rows; the public domain cannot).

        Raises:
            SchemaError: when rows still hold a forbidden combination after every attempt.
        """
        table = self.with_determined(table.reset_index(drop=True))
        sources = [replacements] * REDRAW_ATTEMPTS + ([fallback] * REDRAW_ATTEMPTS if fallback is not None else [])
        for source in (*sources, None):
            bad = np.flatnonzero(self.forbidden_rows(table))
            if not len(bad):
                return table
            if source is None:
                break
            new = self.with_determined(source(bad).reset_index(drop=True))
            for column in table.columns:
                table.loc[bad, column] = new[column].to_numpy()
        raise SchemaError(
            f"{len(bad)} generated rows still hold a forbidden combination after {len(sources)} redraws: "
            "do the schema's relations leave a class any allowed row?"
        )


def parse_relations(raw: Mapping[str, Any] | None, schema: TableSchema) -> PublicRelations:
    """Check a schema's ``relations`` against its columns and build them.

    Raises:
        SchemaError: for an unknown key or column, a ``by`` column that is not categorical, a
            map that misses a category or gives a value outside the determined column's domain,
            or a forbidden category that is not declared.
    """
    if not raw:
        return PublicRelations()
    unknown = sorted(set(raw) - {"determined", "forbidden", "reason"})
    if unknown:
        raise SchemaError(f"relations: unknown keys {unknown}; valid: 'determined', 'forbidden', 'reason'")
    determined = tuple(_determined(relation, schema) for relation in raw.get("determined", ()))
    forbidden = tuple(_forbidden(combination, schema) for combination in raw.get("forbidden", ()))
    return PublicRelations(determined, forbidden)


def _feature(schema: TableSchema, name: str) -> Any:
    if name not in schema.names or name == schema.label_column:
        raise SchemaError(f"relations: {name!r} is not a feature of the schema")
    return schema.column(name)


def _determined(relation: Mapping[str, Any], schema: TableSchema) -> DeterminedColumn:
    column, by = _feature(schema, relation.get("column")), _feature(schema, relation.get("by"))
    if by.is_numeric:
        raise SchemaError(f"relations: {by.name!r} must be categorical to determine {column.name!r}")
    mapping = relation.get("map") or {}
    missing = sorted(set(by.categories) - set(mapping))
    if missing:
        raise SchemaError(f"relations: the map of {column.name!r} by {by.name!r} misses {missing}")
    for category, value in mapping.items():
        allowed = value in column.categories if not column.is_numeric else column.low <= value <= column.high
        if not allowed:
            raise SchemaError(f"relations: {by.name}={category!r} maps to {value!r}, outside {column.name!r}'s domain")
    return DeterminedColumn(column.name, by.name, dict(mapping))


def _forbidden(combination: Mapping[str, str], schema: TableSchema) -> Mapping[str, str]:
    for name, category in combination.items():
        column = _feature(schema, name)
        if column.is_numeric or category not in column.categories:
            raise SchemaError(f"relations: forbidden {name}={category!r} is not a declared category")
    return dict(combination)

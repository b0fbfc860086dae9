"""What every modality's schema declares: the labelled classes, the public row count and class
proportions, the privacy unit, and the error a malformed schema raises.

A schema is public knowledge, never derived from the private records. The tabular schema
(``modalities.tabular.schema``) adds its columns' domains; the text and image schemas add their
public descriptions of each class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class SchemaError(ValueError):
    """Raised when a schema is malformed or a table does not fit its schema."""


@dataclass(frozen=True)
class DeclaredClasses:
    """The entries every schema of labelled records declares.

    Attributes:
        classes: Each class name with its public note (a description, a glyph), in order.
        public_row_count: The private record count, if declared public.
        class_proportions: Class proportions, if declared public.
        privacy_unit: The column naming each record's person, if declared (``parse_privacy_unit``).
    """

    classes: Mapping[str, str]
    public_row_count: int | None
    class_proportions: Mapping[str, float] | None
    privacy_unit: str | None = None


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
    unit = parse_privacy_unit(raw, what, [str(raw["label_column"])] if "label_column" in raw else [])
    return DeclaredClasses({str(name): str(value) for name, value in classes.items()}, count, proportions, unit)


def parse_privacy_unit(raw: Mapping[str, Any], what: str, columns: Sequence[str]) -> str | None:
    """The schema's ``privacy_unit``: the column of the private file that names the person (or
    household, account...) behind each record, for user-level DP (``pe.contribution``); ``None``
    when the schema declares none (one record, one person).

    Raises:
        SchemaError: if it is not a non-empty string, or names a column the release holds.
    """
    unit = raw.get("privacy_unit")
    if unit is None:
        return None
    if not isinstance(unit, str) or not unit.strip():
        raise SchemaError(f"{what}: 'privacy_unit' must name the column that identifies each record's person")
    if unit in columns:
        raise SchemaError(
            f"{what}: the privacy unit {unit!r} is also a declared column; it must not be released: declare it "
            "only as 'privacy_unit'"
        )
    return unit

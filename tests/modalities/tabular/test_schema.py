"""The public schema and validation of private tables: clear errors that name the problem."""

from __future__ import annotations

import pandas as pd
import pytest

from dp_synth.modalities.tabular.schema import SchemaError, check_every_class_present, conform, parse_schema

from tests.conftest import ADULT_DIR, TINY_SCHEMA


def test_conform_returns_canonical_dtypes_in_schema_order(tiny_schema, tiny_table):
    table = conform(tiny_table[["label", "colour", "score", "age"]], tiny_schema)
    assert list(table.columns) == tiny_schema.names
    assert table["age"].dtype == "int64"
    assert table["score"].dtype == "float64"


def test_bundled_adult_data_fits_its_schema(adult_schema_json):
    schema = parse_schema(adult_schema_json)
    for name in ("adult_train.csv", "adult_test.csv"):
        table = conform(pd.read_csv(ADULT_DIR / name), schema)
        check_every_class_present(table[schema.label_column], schema.classes)
    assert schema.public_row_count == 32561


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.drop(columns="score"), r"missing \['score'\]"),
        (lambda t: t.assign(extra=1), r"extra \['extra'\]"),
        (lambda t: t.assign(age=[18, 40, 91, 33]), r"'age' has 1 values outside the declared domain \[18, 90\]: 91"),
        (lambda t: t.assign(age=[18, 40.5, 90, 33]), r"integer column 'age' has fractional values: 40.5"),
        (lambda t: t.assign(score=[0.0, "x", 0.0, 0.0]), r"'score' has non-numeric values: 'x'"),
        (lambda t: t.assign(colour=["red", "pink", "red", "red"]), r"'colour' has 1 values outside the declared categories: 'pink'"),
        (lambda t: t.assign(colour=["red", None, "red", "red"]), r"'colour' has 1 missing values"),
        (lambda t: t.assign(age=[18, None, 90, 33]), r"'age' has 1 missing values"),
    ],
)
def test_bad_tables_fail_with_an_error_naming_the_problem(tiny_schema, tiny_table, mutate, message):
    with pytest.raises(SchemaError, match=message):
        conform(mutate(tiny_table), tiny_schema)


def test_a_class_with_no_private_rows_is_an_error(tiny_schema, tiny_table):
    only_no = tiny_table.assign(label="no")
    with pytest.raises(SchemaError, match=r"classes \['yes'\] have no private rows"):
        check_every_class_present(only_no["label"], tiny_schema.classes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"label_column": "missing"}, "label_column 'missing'"),
        ({"label_column": "age"}, "must be categorical"),
        ({"columns": {}}, "non-empty 'columns'"),
        ({"public_row_count": -3}, "public_row_count"),
        ({"class_proportions": {"no": 0.5}}, "class_proportions must name exactly"),
        ({"columns": {**TINY_SCHEMA["columns"], "age": {"type": "integer", "min": 5, "max": 1}}}, "min 5 is above max 1"),
        ({"columns": {**TINY_SCHEMA["columns"], "age": {"type": "date"}}}, "type must be one of"),
        ({"columns": {**TINY_SCHEMA["columns"], "colour": {"type": "categorical", "categories": []}}}, "non-empty 'categories'"),
        ({"columns": {**TINY_SCHEMA["columns"], "age": {"type": "integer", "min": 0}}}, "finite 'min' and 'max'"),
    ],
)
def test_malformed_schemas_are_rejected(change, message):
    with pytest.raises(SchemaError, match=message):
        parse_schema({**TINY_SCHEMA, **change})

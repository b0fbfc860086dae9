"""The public schema and validation of private tables: clear errors that name the problem."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from dp_synth.modalities.tabular.schema import (
    SchemaError,
    category_codes,
    check_every_class_present,
    conform,
    parse_schema,
)
from tests.conftest import ADULT_DIR, TINY_SCHEMA


def test_conform_returns_canonical_dtypes_in_schema_order(tiny_schema, tiny_table):
    table = conform(tiny_table[["label", "colour", "score", "age"]], tiny_schema)
    assert list(table.columns) == tiny_schema.names
    assert table["age"].dtype == "int64"
    assert table["score"].dtype == "float64"


NUMBERED = parse_schema(
    {
        "label_column": "label",
        "columns": {
            "size": {"type": "integer", "min": 0, "max": 100},
            "code": {"type": "categorical", "categories": ["0", "1", "2"]},
            "area": {"type": "categorical", "categories": ["01", "02", "NA"]},
            "label": {"type": "categorical", "categories": ["0", "1"]},
        },
    }
)
NUMBERED_CSV = "size,code,area,label\n7,0,01,1\n12,2,NA,0\n0,1,02,0\n"


def test_categories_that_look_like_numbers_conform_from_a_csv_read_as_text():
    table = pd.read_csv(io.StringIO(NUMBERED_CSV), dtype=str, keep_default_na=False, na_values=[""])
    conformed = conform(table, NUMBERED)
    assert conformed["code"].tolist() == ["0", "2", "1"]
    assert conformed["area"].tolist() == ["01", "NA", "02"]
    assert conformed["label"].tolist() == ["1", "0", "0"]
    assert conformed["size"].dtype == "int64"


def test_categories_read_back_as_integers_keep_their_declared_codes():
    guessed = pd.read_csv(io.StringIO(NUMBERED_CSV))  # pandas guesses: code and label become integers
    assert guessed["code"].dtype == "int64"
    assert category_codes(guessed["code"], NUMBERED.column("code")).tolist() == [0, 2, 1]
    assert category_codes(guessed["label"], NUMBERED.label).tolist() == [1, 0, 0]
    assert conform(guessed.assign(area=["01", "NA", "02"]), NUMBERED)["code"].tolist() == ["0", "2", "1"]
    with pytest.raises(SchemaError, match="'code' has values outside the declared categories"):
        category_codes(pd.Series([0, 3]), NUMBERED.column("code"))


def test_bundled_adult_data_fits_its_schema(adult_schema_json):
    schema = parse_schema(adult_schema_json)
    for name in ("adult_train.csv", "adult_test.csv"):
        table = conform(pd.read_csv(ADULT_DIR / name), schema)
        check_every_class_present(table[schema.label_column].unique(), schema.classes, schema.label_column)
    assert schema.public_row_count == 32561


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t.drop(columns="score"), r"missing \['score'\]"),
        (lambda t: t.assign(extra=1), r"extra \['extra'\]"),
        (lambda t: t.assign(age=[18, 40, 91, 33]), r"'age' has 1 values outside the declared domain \[18, 90\]: 91"),
        (lambda t: t.assign(age=[18, 40.5, 90, 33]), r"integer column 'age' has fractional values: 40.5"),
        (lambda t: t.assign(score=[0.0, "x", 0.0, 0.0]), r"'score' has non-numeric values: 'x'"),
        (
            lambda t: t.assign(colour=["red", "pink", "red", "red"]),
            r"'colour' has 1 values outside the declared categories: 'pink'",
        ),
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
        check_every_class_present(only_no["label"].unique(), tiny_schema.classes, "label")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"label_column": "missing"}, "label_column 'missing'"),
        ({"label_column": "age"}, "must be categorical"),
        ({"columns": {}}, "non-empty 'columns'"),
        ({"public_row_count": -3}, "public_row_count"),
        ({"class_proportions": {"no": 0.5}}, "class_proportions must name exactly"),
        (
            {"columns": {**TINY_SCHEMA["columns"], "age": {"type": "integer", "min": 5, "max": 1}}},
            "min 5 is above max 1",
        ),
        ({"columns": {**TINY_SCHEMA["columns"], "age": {"type": "date"}}}, "type must be one of"),
        (
            {"columns": {**TINY_SCHEMA["columns"], "colour": {"type": "categorical", "categories": []}}},
            "non-empty 'categories'",
        ),
        ({"columns": {**TINY_SCHEMA["columns"], "age": {"type": "integer", "min": 0}}}, "finite 'min' and 'max'"),
    ],
)
def test_malformed_schemas_are_rejected(change, message):
    with pytest.raises(SchemaError, match=message):
        parse_schema({**TINY_SCHEMA, **change})

"""The public schema and validation of private tables: clear errors that name the problem."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from dp_synth.modalities.tabular.schema import category_codes, conform, describe_problems, parse_schema, problem_counts
from dp_synth.pe.schema import SchemaError
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
        assert set(table[schema.label_column]) == set(schema.classes)
    assert schema.public_row_count == 32561


@pytest.mark.parametrize(
    ("mutate", "message", "private"),
    [
        (lambda t: t.drop(columns="score"), r"missing \['score'\]", None),
        (lambda t: t.assign(extra=1), r"extra \['extra'\]", None),
        (
            lambda t: t.assign(age=[18, 40, 917, 33]),
            r"column 'age' has 1 values outside the declared domain \[18, 90\]$",
            "917",
        ),
        (
            lambda t: t.assign(age=[18, 40.25, 90, 33]),
            r"column 'age' has 1 fractional values in an integer column",
            "40.25",
        ),
        (lambda t: t.assign(score=[0.0, "xyzzy", 0.0, 0.0]), r"column 'score' has 1 non-numeric values", "xyzzy"),
        (
            lambda t: t.assign(colour=["red", "pink", "mauve", "red"]),
            r"column 'colour' has 2 values outside the declared categories",
            "mauve",
        ),
        (lambda t: t.assign(colour=["red", None, "red", "red"]), r"column 'colour' has 1 missing values", None),
        (lambda t: t.assign(age=[18, None, 90, 33]), r"column 'age' has 1 missing values", None),
    ],
)
def test_stop_fails_with_an_error_naming_column_kind_and_count_never_a_value(
    tiny_schema, tiny_table, mutate, message, private
):
    with pytest.raises(SchemaError, match=message) as error:
        conform(mutate(tiny_table), tiny_schema, on_invalid="stop")
    if private is not None:
        assert private not in str(error.value)


def test_problems_are_counted_per_column_and_kind(tiny_schema, tiny_table):
    bad = tiny_table.assign(age=[18, 95.5, None, 7], colour=["red", "pink", "red", None])
    counts = problem_counts(bad, tiny_schema)
    assert counts.shape == (4, 4) and counts.dtype == "int64"
    message = describe_problems(counts, tiny_schema)
    assert message == (
        "column 'age' has 1 missing values; column 'age' has 2 values outside the declared domain [18, 90]; "
        "column 'age' has 1 fractional values in an integer column; column 'colour' has 1 missing values; "
        "column 'colour' has 1 values outside the declared categories"
    )
    assert "95.5" not in message and "pink" not in message
    assert describe_problems(problem_counts(tiny_table, tiny_schema), tiny_schema) == ""


def test_clamp_clips_numbers_into_bounds_and_drops_rows_it_cannot_fit(tiny_schema, tiny_table):
    bad = tiny_table.assign(age=[17, 40.4, 150, "n/a"], score=[-3.0, 0.5, 1.0, 0.0])
    clamped = conform(bad, tiny_schema, on_invalid="clamp")
    assert clamped["age"].tolist() == [18, 40, 90]  # the non-numeric row is dropped
    assert clamped["score"].tolist() == [-1.0, 0.5, 1.0]
    assert clamped["age"].dtype == "int64" and clamped["score"].dtype == "float64"
    unknown = conform(tiny_table.assign(colour=["red", "pink", None, "red"]), tiny_schema, on_invalid="clamp")
    assert unknown["colour"].tolist() == ["red", "red"]  # no nearest category: the rows are dropped
    assert list(unknown.index) == [0, 1]


def test_drop_removes_every_row_with_an_invalid_value(tiny_schema, tiny_table):
    bad = tiny_table.assign(age=[17, 40.5, 90, 33], colour=["red", "blue", "green", "mauve"])
    dropped = conform(bad, tiny_schema, on_invalid="drop")
    assert dropped.to_dict("list") == {"age": [90], "score": [1.0], "colour": ["green"], "label": ["no"]}
    assert conform(tiny_table, tiny_schema, on_invalid="drop").equals(conform(tiny_table, tiny_schema))


@pytest.mark.parametrize("on_invalid", ["clamp", "drop"])
def test_clamp_and_drop_fit_each_row_on_its_own_values(tiny_schema, tiny_table, on_invalid):
    """Neighbouring tables stay neighbours: the table with one more row, fitted, is the fitted
    table with at most one more row, so every sensitivity holds."""
    bad_row = pd.DataFrame({"age": [500], "score": [0.2], "colour": ["mauve"], "label": ["yes"]})
    out_of_bounds = pd.DataFrame({"age": [500], "score": [0.2], "colour": ["red"], "label": ["yes"]})
    base = conform(tiny_table, tiny_schema, on_invalid=on_invalid)
    for row in (bad_row, out_of_bounds):
        grown = conform(pd.concat([tiny_table, row], ignore_index=True), tiny_schema, on_invalid=on_invalid)
        assert grown.iloc[: len(base)].equals(base) and len(grown) - len(base) <= 1
    kept = conform(pd.concat([tiny_table, out_of_bounds], ignore_index=True), tiny_schema, on_invalid=on_invalid)
    assert len(kept) == len(base) + (on_invalid == "clamp")


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
        (
            {"columns": {**TINY_SCHEMA["columns"], "age": {"type": "integer", "min": 0.2, "max": 0.8}}},
            "no whole number lies in",
        ),
    ],
)
def test_malformed_schemas_are_rejected(change, message):
    with pytest.raises(SchemaError, match=message):
        parse_schema({**TINY_SCHEMA, **change})

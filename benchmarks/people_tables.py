"""A benchmark table where one person has many rows: Adult's people, each with 1 to 30 records.

Each person is one row of Adult's training table; their records repeat that row with the weekly
hours of each record drawn anew around the person's own (a person's weeks differ, the person
does not). A per-row guarantee protects a record; a person with 30 records is protected 30
times less. The held-out table is Adult's own test table (one record per person), so the
learners' accuracy reads the same way as on Adult.

``people_table(seed)`` returns ``(train, test, schema_json)`` with the person column
``person`` declared as the schema's ``privacy_unit`` (and the number of persons as public); ``per_row(schema_json, train)`` gives
the same table as a per-row user would declare it (no unit, the person column dropped).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from compare import load_adult

PERSON = "person"
PEOPLE = 2000
"""Persons drawn from Adult's training rows."""
MAX_RECORDS = 30
"""A person has 1 to this many records, uniformly."""
HOURS = "hours-per-week"
HOURS_SPREAD = 5.0
"""Standard deviation of a record's weekly hours around the person's own."""


def people_table(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Adult's people with 1 to ``MAX_RECORDS`` records each (see the module docstring)."""
    rng = np.random.default_rng(seed)
    adult, test, schema_json = load_adult()
    persons = adult.sample(n=PEOPLE, random_state=seed).reset_index(drop=True)
    records = rng.integers(1, MAX_RECORDS + 1, size=PEOPLE)
    train = persons.loc[np.repeat(persons.index, records)].reset_index(drop=True)
    bounds = schema_json["columns"][HOURS]
    hours = train[HOURS].to_numpy(float) + rng.normal(0.0, HOURS_SPREAD, len(train))
    train[HOURS] = np.clip(np.rint(hours), bounds["min"], bounds["max"]).astype(int)
    train.insert(0, PERSON, np.repeat([f"p{index:05d}" for index in range(PEOPLE)], records))
    schema_json = {
        **schema_json,
        "dataset_id": "adult-people",
        "privacy_unit": PERSON,
        "public_row_count": len(train),
        "public_unit_count": PEOPLE,
    }
    return train, test, schema_json


def per_row(schema_json: dict[str, Any], train: pd.DataFrame) -> tuple[dict[str, Any], pd.DataFrame]:
    """The table declared without its privacy unit: a per-row guarantee."""
    unit = schema_json["privacy_unit"]
    schema = {key: value for key, value in schema_json.items() if key not in ("privacy_unit", "public_unit_count")}
    return schema, train.drop(columns=[unit])

"""Shared fixtures: the project's paths, the bundled Adult schema and a tiny schema."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dp_synth.core.schema import TableSchema, parse_schema

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ADULT_DIR = PROJECT_ROOT / "data" / "01_raw" / "adult"

TINY_SCHEMA = {
    "label_column": "label",
    "public_row_count": 100,
    "columns": {
        "age": {"type": "integer", "min": 18, "max": 90},
        "score": {"type": "float", "min": -1.0, "max": 1.0},
        "colour": {"type": "categorical", "categories": ["red", "green", "blue"]},
        "label": {"type": "categorical", "categories": ["no", "yes"]},
    },
}


@pytest.fixture
def tiny_schema() -> TableSchema:
    return parse_schema(TINY_SCHEMA)


@pytest.fixture
def tiny_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [18, 40, 90, 33],
            "score": [-1.0, 0.5, 1.0, 0.0],
            "colour": ["red", "blue", "green", "red"],
            "label": ["no", "yes", "no", "yes"],
        }
    )


@pytest.fixture(scope="session")
def adult_schema_json() -> dict:
    return json.loads((ADULT_DIR / "schema.json").read_text())

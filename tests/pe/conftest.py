"""Fixtures of the release-mechanism tests."""

from __future__ import annotations

import pandas as pd
import pytest

from dp_synth.modalities.tabular.settings import TabularSettings, plan_settings
from dp_synth.pipelines.tabular.nodes import build_modality, load_private_data
from tests.conftest import ADULT_DIR


@pytest.fixture(scope="module")
def adult_modality(adult_schema_json: dict):
    requested = TabularSettings.parse({"pe": {"iterations": 1, "population_size": 200}}, "tabular")
    modality = build_modality(adult_schema_json, plan_settings(requested, adult_schema_json)[0])
    table = load_private_data(pd.read_csv(ADULT_DIR / "adult_train.csv", dtype=str).head(600), modality, "stop")
    return modality, table.head(400), table.tail(200).reset_index(drop=True)

"""The tabular job's typed settings: defaults in code, every bad value named with what is expected."""

from __future__ import annotations

import re

import pytest

from dp_synth.modalities.tabular.settings import FIXED_PLAN, TabularSettings, plan_settings
from dp_synth.pe.settings import SettingsError


@pytest.mark.parametrize(
    ("generator", "message"),
    [
        ({"structure": "chain"}, "tabular.generator.structure: Input should be 'independent' or 'tree'"),
        ({"pair_cells": 1}, "tabular.generator.pair_cells: Input should be greater than or equal to 2"),
        ({"pair_split": "quantile"}, "tabular.generator.pair_split: Input should be 'auto', 'mass' or 'width'"),
        ({"pair_estimate": "clip"}, "tabular.generator.pair_estimate: Input should be 'posterior' or 'suppress'"),
        ({"interactions": -1}, "tabular.generator.interactions: Input should be greater than or equal to 0"),
        ({"refine_cells": 0}, "tabular.generator.refine_cells: Input should be greater than or equal to 1"),
        ({"marginal_estimate": "median"}, "tabular.generator.marginal_estimate: Input should be 'denoise' or 'clip'"),
        ({"variation": {"gama": 1}}, "unknown setting 'gama': did you mean 'gamma'?"),
    ],
)
def test_bad_generator_settings_are_named(generator, message):
    with pytest.raises(SettingsError, match=re.escape(message)):
        TabularSettings.parse({"generator": generator}, "tabular")


def test_auto_resolves_to_the_measured_defaults_on_adult(adult_schema_json):
    settings, plan = plan_settings(TabularSettings(), adult_schema_json)
    generator = settings.generator
    assert (settings.dp.generator_share, settings.pe.iterations, settings.pe.candidates_per_bin) == (0.8, 1, 50)
    assert (generator.marginal_bins, generator.structure, generator.pair_cells) == (32, "tree", 12)
    assert (generator.interactions, generator.refine_cells, settings.pe.population_size) == (1, 32, 30_000)
    assert plan.warnings == ()


def test_the_plan_coarsens_and_simplifies_as_rows_per_cell_fall_below_the_noise(adult_schema_json):
    few_rows = {**adult_schema_json, "public_row_count": 300}
    settings, plan = plan_settings(TabularSettings(), few_rows)
    assert settings.generator.marginal_bins < 32 and settings.generator.structure == "independent"
    assert settings.generator.interactions == 0 and settings.generator.refine_cells == 1
    assert settings.pe.population_size < 30_000
    assert any("mostly noise" in warning for warning in plan.warnings)
    wide = {**few_rows, "public_row_count": 300}
    generous, _ = plan_settings(TabularSettings.parse({"dp": {"epsilon": 50.0}}, "tabular"), wide)
    assert generous.generator.marginal_bins > settings.generator.marginal_bins  # more budget, finer cells


def test_explicit_settings_win_over_the_plan_and_no_row_count_means_the_fixed_defaults(adult_schema_json):
    chosen = TabularSettings.parse({"generator": {"marginal_bins": 8, "structure": "independent"}}, "tabular")
    settings, _ = plan_settings(chosen, adult_schema_json)
    assert (settings.generator.marginal_bins, settings.generator.structure) == (8, "independent")
    undeclared = {key: value for key, value in adult_schema_json.items() if key != "public_row_count"}
    settings, plan = plan_settings(TabularSettings.parse({"dp": {"delta": 1e-6}}, "tabular"), undeclared)
    assert plan == FIXED_PLAN and settings.generator.marginal_bins == 32


def test_the_plan_reads_no_private_row(adult_schema_json):
    """The plan is a node of public inputs only: two private tables give one plan."""
    import pandas as pd
    from kedro.io import DataCatalog
    from kedro.runner import SequentialRunner

    from dp_synth.pipelines.tabular.pipeline import create_pipeline
    from tests.conftest import ADULT_DIR

    pipeline = create_pipeline(1).to_outputs("tabular.generator_plan")
    assert pipeline.inputs() == {"params:tabular", "tabular.schema"}  # no private data among them
    plans = []
    for rows in (slice(0, 500), slice(500, 3000)):
        catalog = DataCatalog()
        catalog["params:tabular"] = {}
        catalog["tabular.schema"] = adult_schema_json
        catalog["tabular.private_data"] = pd.read_csv(ADULT_DIR / "adult_train.csv").iloc[rows]
        plans.append(SequentialRunner().run(pipeline, catalog)["tabular.generator_plan"].load())
    assert plans[0] == plans[1]


def test_the_evaluation_level_is_quick_by_default_and_a_bad_one_is_named():
    assert TabularSettings().evaluation.level == "quick"
    with pytest.raises(SettingsError, match=re.escape("tabular.evaluation.level: Input should be 'quick' or 'full'")):
        TabularSettings.parse({"evaluation": {"level": "fast"}}, "tabular")

"""The tabular job's typed settings: defaults in code, every bad value named with what is expected."""

from __future__ import annotations

import re

import pytest

from dp_synth.modalities.tabular.settings import TabularSettings
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


def test_defaults_are_the_measured_ones():
    settings = TabularSettings()
    assert (settings.dp.generator_share, settings.pe.iterations, settings.pe.candidates_per_bin) == (0.8, 1, 50)
    assert (settings.generator.structure, settings.generator.interactions, settings.generator.refine_cells) == (
        "tree",
        1,
        32,
    )
    assert settings.evaluation.plot_columns is None

"""The tabular evaluation's levels: ``quick`` (the default) is bounded and says so, ``full`` is
the whole evaluation, the report's keys mean the same at both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dp_synth.evaluation.tabular import (
    MODELS,
    classifier_utility,
    distance_to_closest_record,
    marginal_tvd,
    wasserstein_kway,
)
from dp_synth.modalities.tabular.schema import conform
from dp_synth.modalities.tabular.settings import (
    FIXED_PLAN,
    QUICK_DCR_ROWS,
    QUICK_LEARNER_ROWS,
    QUICK_MODELS,
    TabularSettings,
    evaluation_scope,
)
from dp_synth.pe.selection import allocate_class_sizes
from dp_synth.pipelines.tabular import nodes as tabular_nodes
from tests.conftest import PROJECT_ROOT


def leaf_paths(tree: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else key
        paths |= leaf_paths(value, path) if isinstance(value, dict) else {path}
    return paths


@pytest.fixture(scope="module")
def adult_tables(adult_schema_json):
    """The modality, 8,000 private rows, 6,000 held-out rows and 7,000 rows standing for a release."""
    modality = tabular_nodes.build_modality(adult_schema_json, TabularSettings())
    read = lambda name: pd.read_csv(  # noqa: E731
        PROJECT_ROOT / "data/01_raw/adult" / name, dtype=str, keep_default_na=False, na_values=[""]
    )
    train = conform(read("adult_train.csv"), modality.schema)
    reference = conform(read("adult_test.csv"), modality.schema).iloc[:6000]
    return modality, train.iloc[:8000], reference, train.iloc[8000:15000].reset_index(drop=True)


def evaluate(adult_tables, **evaluation) -> dict:
    modality, private, reference, synthetic = adult_tables
    settings = TabularSettings.parse({"evaluation": evaluation}, "tabular")
    return tabular_nodes.evaluate_synthetic_data(synthetic, private, reference, modality, settings, FIXED_PLAN, {})


def test_the_default_evaluation_is_quick_bounded_and_says_which_level_on_how_many_rows(adult_tables):
    report = evaluate(adult_tables)
    assert set(report) == {"rows", "evaluation", "fidelity", "utility", "privacy", "warnings"}
    assert report["evaluation"] == {
        "level": "quick",
        "learners": list(QUICK_MODELS),
        "rows": {
            "private": 8000,
            "synthetic": 7000,
            "reference": 6000,
            "learner_train": QUICK_LEARNER_ROWS,
            "learner_test": QUICK_LEARNER_ROWS,
            "dcr": QUICK_DCR_ROWS,
        },
    }
    assert report["rows"] == 7000  # the whole release, whatever the samples
    for table in ("synthetic", "real_train", "uniform_random"):
        assert set(report["utility"][table]) == set(QUICK_MODELS)
    assert 0.75 < report["utility"]["real_train"]["gbm"]["accuracy"] < 0.9
    # A quick report is the full report less the slow learner: every key means the same at both.
    full = evaluate(adult_tables, level="full")
    assert full["evaluation"]["level"] == "full" and full["evaluation"]["learners"] == list(MODELS)
    assert full["evaluation"]["rows"]["learner_train"] == 7000 and full["evaluation"]["rows"]["dcr"] == 5000
    quick_paths, full_paths = leaf_paths(report), leaf_paths(full)
    assert quick_paths <= full_paths
    assert {path for path in full_paths - quick_paths if ".rf." not in path} == set()
    # The same seeded samples: the one-way TVD (every subset at both levels) is the same number.
    assert report["fidelity"]["tvd_1way"] == full["fidelity"]["tvd_1way"]


def test_the_full_evaluation_is_the_whole_evaluation_of_before_the_levels(adult_tables):
    """``full`` computes what the evaluation computed before ``quick`` existed, with its draws."""
    modality, private, reference, synthetic = adult_tables
    schema = modality.schema
    report = evaluate(adult_tables, level="full", dcr_rows=3000)
    rng = np.random.default_rng(0)
    uniform = modality.random_population(allocate_class_sizes(len(synthetic), dict.fromkeys(schema.classes, 1.0)), rng)
    subsample = lambda table: table.iloc[rng.choice(len(table), size=3000, replace=False)]  # noqa: E731
    dcr_synthetic, dcr_reference = subsample(synthetic), subsample(reference)
    assert report["fidelity"] == {
        **{f"tvd_{k}way": marginal_tvd(private, synthetic, schema, k) for k in (1, 2, 3)},
        **{f"wasserstein_{k}way": wasserstein_kway(private, synthetic, schema, k, 500, rng=0) for k in (1, 2, 3)},
    }
    for name, train in (("synthetic", synthetic), ("real_train", private), ("uniform_random", uniform)):
        assert report["utility"][name] == {
            model: classifier_utility(train, reference, schema, model) for model in MODELS
        }
    assert report["privacy"] == distance_to_closest_record(dcr_synthetic, private, dcr_reference, schema)


def test_the_quick_bounds_never_exceed_what_the_settings_ask():
    scope = evaluation_scope(
        TabularSettings.parse({"evaluation": {"sample_rows": 1000, "dcr_rows": 500}}, "tabular").evaluation
    )
    assert (scope.learner_rows, scope.dcr_rows, scope.threads) == (1000, 500, 1)
    full = evaluation_scope(TabularSettings.parse({"evaluation": {"level": "full"}}, "tabular").evaluation)
    assert (full.learner_rows, full.tvd_subsets, full.threads, full.models) == (None, None, None, MODELS)

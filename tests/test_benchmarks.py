"""The benchmark's generated tables and its in-process dp-synth runner (competitors need the
bench extra and are exercised by `make bench-compare`, not here)."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pandas as pd
import pytest

from dp_synth.modalities.tabular.schema import conform, parse_schema
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def benchmarks():
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    try:
        yield importlib.import_module("interaction_tables"), importlib.import_module("compare")
    finally:
        sys.path.remove(str(PROJECT_ROOT / "benchmarks"))


@pytest.mark.parametrize("kind", ["binary", "mixed"])
def test_interaction_tables_hide_the_label_from_low_order_marginals(benchmarks, kind):
    tables, _ = benchmarks
    train, test, schema_json = tables.interaction_table(kind, n_train=4000, n_test=1000, seed=1)
    schema = parse_schema(schema_json)
    conform(train, schema)  # raises if a generated value is outside the declared domain
    conform(test, schema)
    assert schema.public_row_count == 4000
    # No single feature predicts the label: every class-conditional share stays near 1/2.
    for column in schema.features:
        shares = train.groupby(
            column.name if not column.is_numeric else train[column.name] > train[column.name].median()
        )[schema.label_column].apply(lambda labels: (labels == schema.classes[1]).mean())
        assert np.all(np.abs(shares - 0.5) < 0.08), column.name


def test_binary_label_is_the_xor_of_three_columns(benchmarks):
    tables, _ = benchmarks
    train, _, _ = tables.binary_table(n_train=4000, n_test=10, seed=2)
    xor = (train["b1"].astype(int) ^ train["b4"].astype(int) ^ train["b6"].astype(int)).astype(str)
    assert (xor == train["label"]).mean() == pytest.approx(1 - tables.LABEL_NOISE, abs=0.01)


def test_compare_runs_the_python_api_in_process(benchmarks, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the fit's privacy ledger (dp.ledger, relative) is the test's, not the project's
    tables, compare = benchmarks
    train, test, schema_json = tables.binary_table(n_train=2000, n_test=500, seed=3)
    variant = {"iterations": 2, "pe": {"population_size": 100}, "release": {"rows": 700}}
    synthetic, seconds = compare.run_dp_synth(train, schema_json, variant, seed=4)
    assert len(synthetic) == 700 and seconds > 0
    metrics = compare.score(
        synthetic, conform(train, parse_schema(schema_json)), conform(test, parse_schema(schema_json)), schema_json
    )
    assert set(metrics) == {"accuracy", "tvd1", "tvd2", "wsd1", "wsd2"}
    assert 0 <= metrics["tvd1"] <= metrics["tvd2"] <= 1


def test_the_suite_judges_every_method_on_one_table_in_its_own_process(benchmarks):
    suite = importlib.import_module("suite")
    train, test, schema_json = suite.load_table("titanic")
    release, seconds = suite.timed_release("uniform", "titanic", 1.0, 0, timeout=120)
    scores = suite.judge(release, train, test, schema_json)
    assert {f"{model}_{metric}" for model in ("gbm", "rf", "logreg") for metric in ("acc", "f1")} <= set(scores)
    assert 0 <= scores["tvd1"] <= scores["tvd2"] <= scores["tvd3"] <= 1 and seconds >= 0
    real = suite.judge(train, train, test, schema_json)
    assert real["tvd3"] == 0 and real["gbm_acc"] > scores["gbm_acc"]  # the judge tells real from uniform rows
    stopped, _ = suite.timed_release("dp-synth", "titanic", 1.0, 0, timeout=0.01)
    assert stopped is None  # a run past its time is stopped


def test_the_scale_benchmark_table_fits_adults_schema_and_relations(tmp_path, adult_schema_json):
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    try:
        bench_scale = importlib.import_module("bench_scale")
    finally:
        sys.path.remove(str(PROJECT_ROOT / "benchmarks"))
    path = bench_scale.scaled_adult(3000, seed=1, folder=tmp_path)
    assert bench_scale.scaled_adult(3000, seed=1, folder=tmp_path) == path  # written once
    table = conform(pd.read_parquet(path), parse_schema(adult_schema_json))  # raises outside the bounds
    assert len(table) == 3000
    pairs = table[["education", "education-num"]].drop_duplicates()
    assert pairs["education"].is_unique  # the declared relation education -> education-num holds
    log = (
        "x\nWall time per stage (nodes only, 3.00 s in all):\ntabular.dp_histogram   2.50 s\ntabular.plan   0.50 s\nend"
    )
    assert bench_scale.stage_seconds(log) == {"dp_histogram": 2.5, "plan": 0.5}


@pytest.mark.parametrize("epsilon", [1.0, 4.0])
def test_dp_finetune_noise_multiplier_spends_the_budget_by_pld_and_rdp(epsilon):
    import dp_accounting
    from dp_accounting.pld import pld_privacy_accountant
    from dp_accounting.rdp import rdp_privacy_accountant

    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    try:
        dp_finetune = importlib.import_module("dp_finetune")
    finally:
        sys.path.remove(str(PROJECT_ROOT / "benchmarks"))
    delta, sample_rate, steps = 1e-5, 32 / 2280, 71
    sigma = dp_finetune.noise_multiplier_for(epsilon, delta, sample_rate, steps)
    step = dp_accounting.PoissonSampledDpEvent(sample_rate, dp_accounting.GaussianDpEvent(sigma))
    add_or_remove = dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
    pld = pld_privacy_accountant.PLDAccountant(add_or_remove).compose(step, steps).get_epsilon(delta)
    assert epsilon * 0.99 <= pld <= epsilon
    # An independent accountant: RDP's bound is looser (about 1.5x at epsilon 1, 1.25x at 4), never tighter.
    rdp = rdp_privacy_accountant.RdpAccountant(neighboring_relation=add_or_remove).compose(step, steps)
    assert epsilon <= rdp.get_epsilon(delta) <= 1.6 * epsilon


def test_bench_reads_the_stage_times_of_the_runs_log():
    """``make bench`` times each stage from the log's last table (MLflow may lack them)."""
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    try:
        bench = importlib.import_module("bench")
    finally:
        sys.path.remove(str(PROJECT_ROOT / "benchmarks"))
    log = (
        "2026-12-07 11:00:00,000 INFO dp_synth.hooks.stage_timing: Wall time per stage (nodes only, 9.00 s in all):\n"
        "tabular.evaluate                                 80.00 s\n"
        "2026-12-07 11:01:00,000 INFO dp_synth.hooks.stage_timing: Wall time per stage (nodes only, 3.50 s in all):\n"
        "tabular.dp_histogram                              3.00 s\n"
        "tabular.evaluate                                  0.50 s\n"
        "2026-12-07 11:01:00,100 INFO kedro.runner: Pipeline execution completed successfully.\n"
    )
    assert bench.logged_stage_times(log) == {"time_tabular.dp_histogram_s": 3.0, "time_tabular.evaluate_s": 0.5}
    assert bench.pe_seconds("tabular", bench.logged_stage_times(log), bench.DIAGNOSTIC_STAGES) == 0.5

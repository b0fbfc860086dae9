"""The privacy ledger: every release recorded before its noise is drawn, never twice, and a
dataset's lifetime spend composed exactly (checked against dp-accounting's PLD accountant)."""

from __future__ import annotations

import logging
import math
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dp_accounting.pld import privacy_loss_distribution

from dp_synth.modalities.tabular.schema import SchemaError
from dp_synth.modalities.tabular.settings import TabularSettings, plan_settings
from dp_synth.pe.accounting import GaussianPrivacyPlan, calibrate, gdp_epsilon_for, gdp_mu_for
from dp_synth.pe.engine import content_fingerprint
from dp_synth.pe.ledger import (
    CLASS_COUNTS,
    HISTOGRAM,
    STATISTICS,
    Entry,
    LedgerError,
    LedgerRun,
    PrivacyLedger,
    declared_dataset_id,
)
from dp_synth.pe.report import PrivacyReport
from dp_synth.pipelines.pe import nodes as pe_nodes
from dp_synth.pipelines.tabular.nodes import build_modality, load_private_data
from tests.conftest import ADULT_DIR

DELTA = 1e-5


def admitted(ledger: Path, plan: GaussianPrivacyPlan, dataset: str = "d", budget: float | None = None) -> LedgerRun:
    """A run of ``plan`` admitted on ``dataset``."""
    run = LedgerRun(str(ledger), uuid.uuid4().hex, dataset, budget, DELTA)
    PrivacyLedger(ledger).open_run(run, fingerprint="f", plan=plan, job="test", requested_mu=plan.mu)
    return run


def spend_plan(ledger: Path, run: LedgerRun, plan: GaussianPrivacyPlan) -> None:
    """Record every release ``plan`` pays for (its statistics as one release)."""
    entries = [Entry(CLASS_COUNTS, plan.count_sensitivity, plan.sigma)] * bool(plan.preliminary_releases)
    entries += [Entry(HISTOGRAM, plan.count_sensitivity, plan.sigma, t) for t in range(1, plan.iterations + 1)]
    if plan.statistics_sensitivity:
        entries.append(Entry(STATISTICS, plan.statistics_sensitivity, plan.statistics_sigma))
    PrivacyLedger(ledger).record(run, entries)


def pld_epsilon(entries: list[Entry], delta: float) -> float:
    """Epsilon of the releases composed by dp-accounting's PLD accountant."""
    composed = None
    for entry in entries:
        pld = privacy_loss_distribution.from_gaussian_mechanism(
            standard_deviation=entry.sigma, sensitivity=entry.sensitivity, value_discretization_interval=1e-4
        )
        composed = pld if composed is None else composed.compose(pld)
    return composed.get_epsilon_for_delta(delta)


def test_the_lifetime_spend_is_the_exact_composition_of_every_run_and_matches_pld(tmp_path):
    ledger = tmp_path / "ledger.db"
    plans = [
        calibrate(1.0, DELTA, 3, 1, statistics_sensitivity=math.sqrt(14), statistics_share=0.8),
        calibrate(0.5, 1e-6, 2, 0),
        calibrate(2.0, DELTA, 1, 1, neighbouring="replace_one", statistics_sensitivity=3.0, statistics_share=0.5),
    ]
    for plan in plans:
        spend_plan(ledger, admitted(ledger, plan), plan)
    other = admitted(ledger, plans[0], dataset="another table")
    spend_plan(ledger, other, plans[0])

    lifetime = PrivacyLedger(ledger).lifetime(admitted(ledger, plans[1]))
    assert lifetime.runs == 3 and lifetime.dataset_id == "d"  # the run just admitted has released nothing
    assert lifetime.mu == pytest.approx(math.sqrt(sum(plan.mu**2 for plan in plans)), rel=1e-12)
    entries = [entry for run_id in _run_ids(ledger, "d") for entry in PrivacyLedger(ledger).entries(run_id)]
    assert len(entries) == 5 + 2 + 3
    assert lifetime.epsilon == pytest.approx(pld_epsilon(entries, DELTA), rel=2e-3)
    assert lifetime.epsilon > max(plan.epsilon for plan in plans)


def _run_ids(ledger: Path, dataset: str) -> list[str]:
    import sqlite3

    with sqlite3.connect(ledger) as connection:
        return [row[0] for row in connection.execute("SELECT run_id FROM runs WHERE dataset_id = ?", (dataset,))]


def test_a_run_past_the_lifetime_budget_is_refused_and_one_that_fits_exactly_is_admitted(tmp_path):
    ledger = tmp_path / "ledger.db"
    first = calibrate(1.0, DELTA, 2, 1)
    spend_plan(ledger, admitted(ledger, first, budget=1.5), first)
    remaining_mu = math.sqrt(gdp_mu_for(1.5, DELTA) ** 2 - first.mu**2)
    remaining = gdp_epsilon_for(remaining_mu, DELTA)
    assert 0.5 < remaining < 1.5  # composed exactly (Gaussian DP), not added: more than 1.5 - 1 is left

    with pytest.raises(LedgerError) as refused:
        admitted(ledger, calibrate(remaining * 1.01, DELTA, 2, 1), budget=1.5)
    message = str(refused.value)
    assert "lifetime budget (epsilon 1.5 at delta 1e-05): spent 1, this run requests" in message
    assert f"remaining {remaining:.4g}" in message and "before it reads the private data" in message
    assert len(_run_ids(ledger, "d")) == 1  # the refused run is not registered

    exact = calibrate(remaining, DELTA, 2, 1)
    spend_plan(ledger, admitted(ledger, exact, budget=1.5), exact)
    assert PrivacyLedger(ledger).lifetime(admitted(ledger, exact)).epsilon == pytest.approx(1.5, rel=1e-9)
    late = admitted(ledger, exact)  # no budget for this run: recorded, but a budgeted release is refused
    budgeted = LedgerRun(late.path, late.run_id, "d", 1.5, DELTA)
    with pytest.raises(LedgerError, match="this release requests"):
        PrivacyLedger(ledger).record(budgeted, [Entry(HISTOGRAM, 1.0, exact.sigma, 1)])


def test_a_release_is_never_recorded_twice(tmp_path):
    ledger = tmp_path / "ledger.db"
    plan = calibrate(1.0, DELTA, 2)
    run = admitted(ledger, plan)
    PrivacyLedger(ledger).record(run, [Entry(HISTOGRAM, 1.0, plan.sigma, 1)])
    with pytest.raises(LedgerError, match="releasing it again would spend the budget twice"):
        PrivacyLedger(ledger).record(run, [Entry(HISTOGRAM, 1.0, plan.sigma, 1)])
    assert PrivacyLedger(ledger).state(run.run_id).last_histogram == 1


def test_admission_checks_the_budget_then_the_rows_and_a_refused_run_leaves_no_run(tmp_path, adult_schema_json):
    """The budget is checked before a private row is read; the rows are checked before the run
    is opened; either refusal leaves no run in the ledger."""
    ledger = tmp_path / "ledger.db"
    requested = TabularSettings.parse({"pe": {"iterations": 1}, "dp": {"ledger": str(ledger)}}, "tabular")
    settings, _ = plan_settings(requested, adult_schema_json)
    modality = build_modality(adult_schema_json, settings)
    plan = pe_nodes.calibrate_privacy(modality, settings)
    raw = pd.read_csv(ADULT_DIR / "adult_train.csv", dtype=str).head(300)
    loads = []

    def refusing(private, public_modality, on_invalid):
        loads.append(on_invalid)
        raise SchemaError("column 'age' has 1 values outside the declared domain [17, 90]")

    with pytest.raises(SchemaError):
        pe_nodes.admit_run(adult_schema_json, raw, modality, plan, settings, job="tabular", load=refusing)
    assert loads == ["clamp"] and _run_ids(ledger, "uci-adult-1994-train") == []  # no run, nothing spent

    spent = settings.model_copy(update={"dp": settings.dp.model_copy(update={"lifetime_epsilon": 0.5})})
    with pytest.raises(LedgerError, match="lifetime budget"):
        pe_nodes.admit_run(adult_schema_json, raw, modality, plan, spent, job="tabular", load=refusing)
    assert loads == ["clamp"]  # refused before the rows were read

    run, saved_plan, table = pe_nodes.admit_run(
        adult_schema_json, raw, modality, plan, settings, job="tabular", load=load_private_data
    )
    assert saved_plan is plan and len(table) == 300 and _run_ids(ledger, run.dataset_id) == [run.run_id]


class Crash(Exception):
    """The process dies while drawing a release's noise."""


@pytest.fixture(scope="module")
def adult_job(adult_schema_json: dict) -> tuple:
    """The tabular job's public modality, settings and 2,000 private rows."""
    requested = TabularSettings.parse({"pe": {"iterations": 1, "population_size": 200}}, "tabular")
    settings, _ = plan_settings(requested, adult_schema_json)
    modality = build_modality(adult_schema_json, settings)
    private = load_private_data(pd.read_csv(ADULT_DIR / "adult_train.csv", dtype=str).head(2000), modality, "stop")
    return modality, settings, private


def test_every_release_is_in_the_ledger_before_its_noise_is_drawn(tmp_path, monkeypatch, adult_job):
    """A crash while the noise is drawn leaves the release recorded (counted), never unrecorded."""
    modality, settings, private = adult_job
    plan = pe_nodes.calibrate_privacy(modality, settings)
    ledger = PrivacyLedger(tmp_path / "ledger.db")
    run = admitted(tmp_path / "ledger.db", plan)
    recorded_when_drawn: list[list[str]] = []

    def crash(*_, **__):
        recorded_when_drawn.append([entry.name for entry in ledger.entries(run.run_id)])
        raise Crash

    monkeypatch.setattr(type(modality), "measure_statistics", crash)
    with pytest.raises(Crash):
        pe_nodes.measure_generator_statistics(modality, private, plan, run)
    embeddings = pe_nodes.embed_private_data(modality, private, settings)
    with monkeypatch.context() as patched:
        patched.setattr(GaussianPrivacyPlan, "noise_generator", crash)
        with pytest.raises(Crash):
            pe_nodes.measure_class_distribution(modality, private, plan, run)
    monkeypatch.setattr(pe_nodes.dp_hist, "release", crash)
    candidates = private.head(50)
    with pytest.raises(Crash):
        pe_nodes.dp_histogram(
            modality, candidates, modality.embed(candidates), embeddings, plan, settings, run, iteration=1
        )
    assert recorded_when_drawn == [[STATISTICS], [STATISTICS, CLASS_COUNTS], [STATISTICS, CLASS_COUNTS, HISTOGRAM]]
    spent = PrivacyLedger(run.path).lifetime(run)
    assert spent.mu == pytest.approx(math.sqrt(plan.statistics_mu_squared + 2 / plan.sigma**2), rel=1e-12)


def test_the_statistics_reservation_becomes_each_release_the_generator_made(tmp_path, adult_job):
    modality, settings, private = adult_job
    plan = pe_nodes.calibrate_privacy(modality, settings)
    run = admitted(tmp_path / "ledger.db", plan)
    statistics = pe_nodes.measure_generator_statistics(modality, private, plan, run)
    entries = PrivacyLedger(run.path).entries(run.run_id)
    assert [entry.name for entry in entries] == [
        f"{STATISTICS}: {measurement.name}" for measurement in statistics.measurements
    ]
    mu = math.sqrt(sum((entry.sensitivity / entry.sigma) ** 2 for entry in entries))
    assert mu == pytest.approx(math.sqrt(plan.statistics_mu_squared), rel=1e-9)


def test_the_report_lists_what_the_ledger_recorded_and_travels_as_json(tmp_path):
    plan = calibrate(1.0, DELTA, 3, 1, seed=4)
    run = admitted(tmp_path / "ledger.db", plan)
    spend_plan(tmp_path / "ledger.db", run, plan)
    report = PrivacyReport.from_dict(pe_nodes.report_privacy(run, plan, synthetic_data=None))
    assert report.epsilon == pytest.approx(1.0, rel=1e-9) and report.mu == pytest.approx(plan.mu, rel=1e-12)
    assert [(release.name, release.count) for release in report.releases] == [(CLASS_COUNTS, 1), (HISTOGRAM, 3)]
    assert report.seeded and not report.private and "NOT private" in str(report)
    assert report.lifetime.epsilon == pytest.approx(1.0, rel=1e-9) and report.run_id == run.run_id
    assert PrivacyLedger(run.path).state(run.run_id).finished
    assert PrivacyReport.from_dict(report.to_dict()) == report


def test_a_dataset_is_its_declared_id_else_its_catalog_entry(caplog):
    assert declared_dataset_id({"dataset_id": " adult-1994 "}, "tabular.private_data") == "adult-1994"
    with caplog.at_level(logging.WARNING):
        assert declared_dataset_id({}, "tabular.private_data") == "tabular.private_data"
    assert "declares no dataset_id" in caplog.text
    with pytest.raises(LedgerError, match="non-empty string"):
        declared_dataset_id({"dataset_id": 7}, "tabular.private_data")


def test_the_content_fingerprint_changes_with_any_value_but_not_with_the_row_order():
    table = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "image": [np.zeros(4), np.ones(4)]})
    assert content_fingerprint(table) == content_fingerprint(table.copy())
    assert content_fingerprint(table) == content_fingerprint(table.iloc[::-1])  # a partitioning's order
    assert content_fingerprint(table) != content_fingerprint(table.rename(columns={"a": "c"}))
    assert content_fingerprint(table) != content_fingerprint(pd.concat([table, table.head(1)]))
    assert content_fingerprint(table) != content_fingerprint(table.assign(b=["x", "z"]))
    assert content_fingerprint(table) != content_fingerprint(table.assign(image=[np.zeros(4), np.zeros(4)]))


def test_a_relative_ledger_path_is_the_projects(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "x"\n')
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert PrivacyLedger("privacy_ledger.db").path == tmp_path / "privacy_ledger.db"

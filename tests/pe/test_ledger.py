"""The privacy ledger: every release recorded before its noise is drawn, never twice, and a
dataset's lifetime spend composed exactly (checked against dp-accounting's PLD accountant)."""

from __future__ import annotations

import importlib
import json
import logging
import math
import multiprocessing
import shutil
import sqlite3
import stat
import tomllib
from contextlib import closing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dp_accounting.pld import privacy_loss_distribution

from dp_synth import TabularSynthesizer, ledger_command
from dp_synth.hooks.ledger_reservation import LedgerReservationHook
from dp_synth.modalities.tabular.settings import TabularSettings, plan_settings
from dp_synth.pe.accounting import GaussianPrivacyPlan, calibrate, gdp_epsilon_for, gdp_mu_for
from dp_synth.pe.engine import content_fingerprint
from dp_synth.pe.ledger import (
    CLASS_COUNTS,
    HISTOGRAM,
    STATISTICS,
    Admission,
    Entry,
    LedgerError,
    LedgerRun,
    PrivacyLedger,
    declared_dataset_id,
)
from dp_synth.pe.report import PrivacyReport
from dp_synth.pe.schema import SchemaError
from dp_synth.pipelines.pe import nodes as pe_nodes
from dp_synth.pipelines.tabular.nodes import build_modality, load_private_data
from tests.conftest import ADULT_DIR, PROJECT_ROOT

DELTA = 1e-5
KEY = bytes(32)
"""A fingerprint key for the tests (a ledger creates a random one)."""


def admitted(ledger: Path, plan: GaussianPrivacyPlan, dataset: str = "d", budget: float | None = None) -> LedgerRun:
    """A run of ``plan`` admitted on ``dataset`` (``budget``: its ``dp.lifetime_epsilon``)."""
    admission = Admission(dataset, plan, "test", lifetime_epsilon=budget, lifetime_delta=DELTA)
    return PrivacyLedger(ledger).open_run(admission, fingerprint=f"the data of {dataset}")


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
    assert (
        "lifetime budget (epsilon 1.5 at delta 1e-05): spent or reserved by other runs 1, this run requests" in message
    )
    assert f"remaining {remaining:.4g}" in message and "refused before it reads the private data" in message
    assert "dp-synth ledger set-lifetime d EPSILON" in message
    assert len(_run_ids(ledger, "d")) == 1  # the refused run is not registered

    exact = calibrate(remaining, DELTA, 2, 1)
    last = admitted(ledger, exact, budget=1.5)
    spend_plan(ledger, last, exact)
    assert PrivacyLedger(ledger).lifetime(last).epsilon == pytest.approx(1.5, rel=1e-9)


def test_the_lifetime_budget_belongs_to_the_dataset_and_only_the_command_raises_it(tmp_path):
    """Issue 24: a later run with the default (no limit) was admitted past a cap an earlier run set."""
    ledger = tmp_path / "ledger.db"
    plan = calibrate(1.0, DELTA, 2, 1)
    spend_plan(ledger, admitted(ledger, plan, budget=1.3), plan)
    with pytest.raises(LedgerError, match="would pass its lifetime budget \\(epsilon 1.3 at delta 1e-05\\)"):
        admitted(ledger, plan)  # no dp.lifetime_epsilon: the dataset's stored budget still holds
    with pytest.raises(
        LedgerError, match="would raise it, which only the data owner does: dp-synth ledger set-lifetime d 5"
    ):
        admitted(ledger, plan, budget=5.0)
    small = calibrate(0.1, DELTA, 1)
    spend_plan(ledger, admitted(ledger, small, budget=1.2), small)  # a lower setting lowers it, for good
    with pytest.raises(LedgerError, match="epsilon 1.2 at delta"):
        admitted(ledger, plan)

    PrivacyLedger(ledger).set_lifetime("d", 3.0)  # the data owner's command; the delta stays
    assert admitted(ledger, plan).lifetime_epsilon == 3.0
    runs, budgets = PrivacyLedger(ledger).history("d")
    assert [(change.budget.epsilon, change.set_by.split(" of ")[0]) for change in budgets] == [
        (1.3, "dp.lifetime_epsilon"),
        (1.2, "dp.lifetime_epsilon"),
        (3.0, "dp-synth ledger set-lifetime"),
    ]
    assert [run.status for run in runs] == ["in progress", "in progress", "in progress"]
    with pytest.raises(LedgerError, match="give its delta"):
        PrivacyLedger(ledger).set_lifetime("new", 1.0)


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


def test_the_content_fingerprint_is_keyed_and_changes_with_any_value_but_not_with_the_row_order():
    table = pd.DataFrame({"a": [1, 2], "b": ["x", "y"], "image": [np.zeros(4), np.ones(4)]})

    def fingerprint(data: pd.DataFrame) -> str:
        return content_fingerprint(data, KEY)

    assert fingerprint(table) == fingerprint(table.copy())
    assert fingerprint(table) == fingerprint(table.iloc[::-1])  # a partitioning's order
    assert fingerprint(table) != fingerprint(table.rename(columns={"a": "c"}))
    assert fingerprint(table) != fingerprint(pd.concat([table, table.head(1)]))
    assert fingerprint(table) != fingerprint(table.assign(b=["x", "z"]))
    assert fingerprint(table) != fingerprint(table.assign(image=[np.zeros(4), np.zeros(4)]))
    assert fingerprint(table) != content_fingerprint(table, bytes(range(32)))  # no key, no guess to test


def test_the_fingerprint_key_is_a_secret_created_beside_the_ledger(tmp_path):
    table = pd.DataFrame({"a": [1, 2]})
    path = tmp_path / "ledger.db"
    with pytest.raises(LedgerError, match="there is no privacy ledger at"):
        PrivacyLedger(path).fingerprint(table)  # only an admission creates a ledger
    admitted(path, calibrate(1.0, DELTA, 1))
    key = tmp_path / "ledger.db.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    fingerprint = PrivacyLedger(path).fingerprint(table)
    assert fingerprint == content_fingerprint(table, bytes.fromhex(key.read_text()))
    other = tmp_path / "other" / "ledger.db"
    admitted(other, calibrate(1.0, DELTA, 1))
    assert PrivacyLedger(other).fingerprint(table) != fingerprint

    kept = key.rename(tmp_path / "kept.key")
    with pytest.raises(LedgerError, match="ledger.db.key is missing: without it the ledger cannot recognise"):
        PrivacyLedger(path).fingerprint(table)
    shutil.copy(other.with_name("ledger.db.key"), key)
    with pytest.raises(LedgerError, match="is not the key of the privacy ledger"):
        PrivacyLedger(path).fingerprint(table)
    kept.replace(key)
    assert PrivacyLedger(path).fingerprint(table) == fingerprint


def test_a_lost_ledger_is_an_error_not_a_fresh_start(tmp_path, caplog):
    path = tmp_path / "ledger.db"
    plan = calibrate(1.0, DELTA, 1)
    with caplog.at_level(logging.WARNING):
        admitted(path, plan)
    ledger_id = PrivacyLedger(path).identity()
    assert f"set dp.ledger_id: {ledger_id}" in caplog.text
    path.unlink()  # its key stays beside it
    with pytest.raises(LedgerError, match="is missing but its key ledger.db.key is there, so it existed"):
        admitted(path, plan)
    (tmp_path / "ledger.db.key").unlink()  # both gone: only the configuration knows
    pinned = PrivacyLedger(path, ledger_id)
    with pytest.raises(LedgerError, match=f"the privacy ledger {ledger_id} \\(dp.ledger_id\\) is missing"):
        pinned.check_admission(Admission("d", plan, "test"))
    assert not path.exists()
    admitted(path, plan)  # without dp.ledger_id: a fresh ledger, with a new id
    with pytest.raises(LedgerError, match=f", not {ledger_id} \\(dp.ledger_id\\): another ledger"):
        pinned.check_admission(Admission("d", plan, "test"))


def test_the_same_data_under_a_new_dataset_id_is_refused_unless_declared_another_dataset(tmp_path, caplog):
    """Issue 24: renaming dataset_id reset the lifetime of the same data."""
    ledger = PrivacyLedger(tmp_path / "ledger.db")
    plan, small = calibrate(1.0, DELTA, 1), calibrate(0.05, DELTA, 1)
    ledger.open_run(Admission("adult", plan, "test", lifetime_epsilon=1.3), fingerprint="F")
    with pytest.raises(LedgerError, match="is the data the privacy ledger knows as 'adult': a new dataset_id does not"):
        ledger.open_run(Admission("adult-renamed", plan, "test"), fingerprint="F")
    ledger.open_run(Admission("other people", plan, "test", distinct_dataset=True), fingerprint="F")
    ledger.open_run(Admission("other people", small, "test"), fingerprint="F")  # known under this id now
    with caplog.at_level(logging.WARNING):
        ledger.open_run(Admission("adult", small, "test"), fingerprint="G")
    assert "The private data of dataset 'adult' differs from its earlier runs'" in caplog.text


def test_a_failed_run_gives_back_what_it_did_not_release(tmp_path):
    ledger = tmp_path / "ledger.db"
    plan = calibrate(1.0, DELTA, 2, 1)
    run = admitted(ledger, plan, budget=1.3)
    with pytest.raises(LedgerError, match="spent or reserved by other runs 1, this run requests 1, together 1.4"):
        admitted(ledger, plan)  # the first run has released nothing yet: its whole plan is reserved
    PrivacyLedger(ledger).record(run, [Entry(CLASS_COUNTS, plan.count_sensitivity, plan.sigma)])
    PrivacyLedger(ledger).give_back(run)  # it failed after its class counts
    second = admitted(ledger, plan)
    with pytest.raises(LedgerError, match="the resumed run requests 1, together 1.4"):
        PrivacyLedger(ledger).resume_run(run)  # a resume takes its reservation back only if it fits
    PrivacyLedger(ledger).give_back(second)
    PrivacyLedger(ledger).resume_run(run)
    runs, _ = PrivacyLedger(ledger).history("d")
    assert [summary.status for summary in runs] == ["in progress", "stopped"]


def test_the_kedro_hook_gives_back_a_failed_runs_reservation(tmp_path):
    ledger = tmp_path / "ledger.db"
    plan = calibrate(1.0, DELTA, 2, 1)
    hook = LedgerReservationHook()
    hook.before_pipeline_run()
    hook.after_node_run({"tabular.ledger_run": admitted(ledger, plan, budget=1.3), "tabular.other": 1})
    hook.on_pipeline_error()
    admitted(ledger, plan)


def test_a_failed_fit_gives_back_what_it_did_not_release(tmp_path, adult_schema_json, monkeypatch):
    private = pd.read_csv(ADULT_DIR / "adult_train.csv", dtype=str).head(500)

    def failing(*_: object) -> None:
        raise RuntimeError("the class count failed")

    monkeypatch.setattr(pe_nodes, "measure_class_distribution", failing)  # after admission, before a release
    dp = {"ledger": str(tmp_path / "ledger.db"), "lifetime_epsilon": 1.3}
    with pytest.raises(Exception, match="the class count failed"):
        TabularSynthesizer(population_size=200, iterations=1, dp=dp).fit(private, adult_schema_json)
    [run], _ = PrivacyLedger(tmp_path / "ledger.db").history(adult_schema_json["dataset_id"])
    assert run.status == "stopped" and run.released_mu == 0


def fit_adult_in_a_process(ledger: str, role: str, first_admitted: Event, second_tried: Event, outcomes: Queue) -> None:
    """A process fitting Adult under a lifetime budget of 1.3 (one run needs 1.0, two 1.46): the
    second tries its admission after the first's and before the first releases anything."""
    schema = json.loads((ADULT_DIR / "schema.json").read_text())
    requested = TabularSettings.parse(
        {"dp": {"ledger": ledger, "lifetime_epsilon": 1.3}, "pe": {"iterations": 1, "population_size": 200}},
        "tabular",
    )
    settings, _ = plan_settings(requested, schema)
    modality = build_modality(schema, settings)
    plan = pe_nodes.calibrate_privacy(modality, settings)
    raw = pd.read_csv(ADULT_DIR / "adult_train.csv", dtype=str).head(2000)
    if role == "second":
        first_admitted.wait(120)
    try:
        run, plan, private_table = pe_nodes.admit_run(
            schema, raw, modality, plan, settings, job="tabular", load=load_private_data
        )
    except LedgerError as error:
        outcomes.put((role, str(error)))
        return
    finally:
        (first_admitted if role == "first" else second_tried).set()
    if role == "first":
        second_tried.wait(120)
    pe_nodes.measure_class_distribution(modality, private_table, plan, run)
    outcomes.put((role, "released"))


def test_two_processes_at_once_on_one_dataset_under_a_cap_that_fits_one_run(tmp_path):
    """Issue 24: both were admitted; the second released noisy class counts, then was refused."""
    ledger = str(tmp_path / "ledger.db")
    context = multiprocessing.get_context("spawn")
    first_admitted, second_tried, outcomes = context.Event(), context.Event(), context.Queue()
    processes = [
        context.Process(target=fit_adult_in_a_process, args=(ledger, role, first_admitted, second_tried, outcomes))
        for role in ("first", "second")
    ]
    for process in processes:
        process.start()
    results = dict(outcomes.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(60)
    assert results["first"] == "released"
    assert "would pass its lifetime budget (epsilon 1.3 at delta" in results["second"]
    assert "spent or reserved by other runs 1, this run requests 1, together 1.4" in results["second"]
    with sqlite3.connect(ledger) as connection:
        assert connection.execute("SELECT COUNT(DISTINCT run_id) FROM releases").fetchone() == (1,)
        assert connection.execute("SELECT COUNT(*) FROM runs").fetchone() == (1,)

    # The first process ended without finishing its run: what it did not release is given back.
    [standing] = PrivacyLedger(ledger).standings()
    assert standing.in_progress == 0 and standing.committed_mu == standing.spent_mu > 0
    plan = calibrate(1.0, standing.budget.delta, 1, 1)
    PrivacyLedger(ledger).open_run(Admission(standing.dataset_id, plan, "test"), fingerprint="another sample")


def test_a_relative_ledger_path_is_the_projects(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.kedro]\npackage_name = "x"\n')
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert PrivacyLedger("privacy_ledger.db").path == tmp_path / "privacy_ledger.db"


def test_the_ledger_command_shows_sets_and_tells_the_history(tmp_path, capsys):
    path = tmp_path / "ledger.db"

    def command(*arguments: str) -> tuple[int, str]:
        status = ledger_command.main(["ledger", "--ledger", str(path), *arguments])
        captured = capsys.readouterr()
        return status, captured.out + captured.err

    assert command("show") == (1, f"dp-synth ledger: there is no privacy ledger at {path}\n")
    plan = calibrate(1.0, DELTA, 2, 1)
    first = admitted(path, plan, budget=1.3)
    spend_plan(path, first, plan)
    PrivacyLedger(path).finish(first)
    assert command("set-lifetime", "d", "3") == (0, "d: lifetime budget epsilon 3 at delta 1e-05\n")
    second = admitted(path, plan)

    status, shown = command("show")
    assert status == 0 and f"(id {PrivacyLedger(path).identity()})" in shown
    assert "d: lifetime budget epsilon 3 at delta 1e-05; 2 run(s), spent mu " in shown
    assert "(epsilon 1); with the 1 run(s) in progress at their whole plan, 1.465" in shown
    status, history = command("history", "d")
    lines = history.splitlines()
    assert status == 0 and len(lines) == 4
    assert lines[0].endswith(
        f"lifetime budget epsilon 1.3 at delta 1e-05, set by dp.lifetime_epsilon of run {first.run_id}"
    )
    assert lines[1].endswith(
        f"run {first.run_id} (test): planned epsilon 1 at delta 1e-05, released epsilon 1; finished"
    )
    assert lines[2].endswith("lifetime budget epsilon 3 at delta 1e-05, set by dp-synth ledger set-lifetime")
    assert lines[3].endswith(
        f"run {second.run_id} (test): planned epsilon 1 at delta 1e-05, released epsilon 0; in progress"
    )
    assert "the data of d" not in shown + history  # no fingerprint leaves the ledger
    assert command("history", "unknown") == (0, "the ledger knows no dataset 'unknown'\n")

    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = scripts["dp-synth"].partition(":")
    assert getattr(importlib.import_module(module), function) is ledger_command.main


def test_a_ledger_written_before_reservations_counts_its_runs(tmp_path):
    path = tmp_path / "ledger.db"
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.executescript(OLD_SCHEMA)
        connection.execute(
            "INSERT INTO runs VALUES ('old', 'd', 'f', 'test', '2026-01-01', NULL, 0, 'add_remove', 1, 1e-5, 1, 1)"
        )
        connection.execute("INSERT INTO releases VALUES (1, 'old', 1, 'nearest-neighbour histogram', 1, 0.5, 'x')")
    run = admitted(path, calibrate(0.1, DELTA, 1))
    assert PrivacyLedger(path).lifetime(run).mu == pytest.approx(2.0)


OLD_SCHEMA = """
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, dataset_id TEXT NOT NULL, fingerprint TEXT NOT NULL, job TEXT NOT NULL,
    started_at TEXT NOT NULL, finished_at TEXT, seeded INTEGER NOT NULL, neighbouring TEXT NOT NULL,
    epsilon REAL NOT NULL, delta REAL NOT NULL, sigma REAL NOT NULL, iterations INTEGER NOT NULL
);
CREATE TABLE releases (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs (run_id),
    iteration INTEGER NOT NULL, name TEXT NOT NULL, sensitivity REAL NOT NULL, sigma REAL NOT NULL,
    recorded_at TEXT NOT NULL, UNIQUE (run_id, iteration, name)
);
"""
"""The ledger's tables before reservations, budgets and keys."""

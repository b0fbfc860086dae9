"""The privacy ledger through the real CLI: a resumed run goes only forward, a finished run is not
resumed, a run past the dataset's lifetime budget stops before reading a private row, and the
privacy report ships beside the release."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from tests.conftest import kedro

QUIET = {"DP_SYNTH_VERBOSE": ""}


def use_small_adult(project: Path, dp: dict | None = None) -> None:
    """Point the tabular job at 1,000 Adult rows declared as the dataset ``adult-sample``."""
    folder = project / "data/01_raw/small_adult"
    folder.mkdir()
    adult = project / "data/01_raw/adult"
    pd.read_csv(adult / "adult_train.csv", dtype=str).head(1000).to_csv(folder / "train.csv", index=False)
    pd.read_csv(adult / "adult_test.csv", dtype=str).head(300).to_csv(folder / "test.csv", index=False)
    schema = json.loads((adult / "schema.json").read_text())
    (folder / "schema.json").write_text(json.dumps({**schema, "dataset_id": "adult-sample", "public_row_count": 1000}))
    catalog = {
        f"tabular.{name}": {"type": kind, "filepath": f"data/01_raw/small_adult/{file}"}
        for name, kind, file in (
            ("schema", "json.JSONDataset", "schema.json"),
            ("private_data", "pandas.CSVDataset", "train.csv"),
            ("reference_data", "pandas.CSVDataset", "test.csv"),
        )
    }
    (project / "conf/local/catalog.yml").write_text(yaml.safe_dump(catalog))
    parameters = {"pe": {"population_size": 200}, "release": {"rows": 300}, "dp": dp or {}}
    (project / "conf/local/parameters_tabular.yml").write_text(yaml.safe_dump({"tabular": parameters}))


def ledger_rows(project: Path, query: str) -> list[tuple]:
    with sqlite3.connect(project / "privacy_ledger.db") as connection:
        return connection.execute(query).fetchall()


def latest_report(project: Path) -> dict:
    [*_, path] = sorted((project / "data/07_model_output/tabular/privacy_report.json").glob("*/privacy_report.json"))
    return json.loads(path.read_text())


def resume(project: Path, point: str) -> str:
    """``kedro run`` resumed from ``point``; its console output (it must have failed)."""
    environment = {**QUIET, "DP_SYNTH_RESUME": point}
    result = kedro(project, "run", "--pipelines=tabular", iterations=3, extra_environment=environment)
    assert result.returncode != 0
    return result.stdout + result.stderr


def test_a_resume_goes_only_forward_and_a_finished_run_is_never_resumed(project):
    use_small_adult(project)
    blocked = project / "data/05_model_input/tabular/survivors/iter_002.parquet"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the survivors' versions go: the run fails after histogram 2")
    failed = kedro(project, "run", "--pipelines=tabular", iterations=3, extra_environment=QUIET)
    assert failed.returncode != 0
    (command,) = re.findall(r"DP_SYNTH_RESUME=\S+ DP_SYNTH_ITERATIONS=3 kedro run --pipelines=tabular", failed.stdout)
    assert command.startswith("DP_SYNTH_RESUME=iter_002.histogram ")  # the last saved release
    blocked.unlink()

    refused = resume(project, "iter_001.survivors")
    assert "from iter_001.survivors: the ledger records its histogram of iteration 2" in refused
    assert "resuming before it would release it again" in refused

    resumed = kedro(
        project,
        "run",
        "--pipelines=tabular",
        iterations=3,
        extra_environment={**QUIET, "DP_SYNTH_RESUME": "iter_002.histogram"},
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:] + resumed.stdout[-3000:]
    [(run_id,)] = ledger_rows(project, "SELECT run_id FROM runs")
    histograms = ledger_rows(project, "SELECT iteration FROM releases WHERE name = 'nearest-neighbour histogram'")
    assert sorted(histograms) == [(1,), (2,), (3,)]  # each released once, across the failure
    for t in (1, 2, 3):
        saved = project / f"data/05_model_input/tabular/histograms/iter_{t:03d}.pkl"
        assert len(list(saved.iterdir())) == 1

    report = latest_report(project)
    assert report["run_id"] == run_id and report["epsilon"] == pytest.approx(1.0)
    assert {release["name"]: release["count"] for release in report["releases"]}["nearest-neighbour histogram"] == 3
    assert report["lifetime"]["dataset_id"] == "adult-sample" and report["lifetime"]["epsilon"] == pytest.approx(1.0)
    assert report["neighbouring"].startswith("add/remove one record (a row") and report["private"]

    finished = resume(project, "class_sizes")  # the case: it would measure the histograms again
    assert f"run {run_id} finished: its release and privacy report are saved" in finished
    assert ledger_rows(project, "SELECT COUNT(*) FROM releases") == [(len(report["releases"]) + 2,)]


def test_a_run_past_the_lifetime_budget_stops_before_reading_a_private_row(project):
    use_small_adult(project, dp={"lifetime_epsilon": 1.4, "seed": 3, "tracking_diagnostics": "never"})
    first = kedro(project, "run", "--pipelines=tabular", iterations=1, extra_environment=QUIET)
    assert first.returncode == 0, first.stderr[-3000:] + first.stdout[-3000:]
    assert "this run's noise is reproducible, so the run is NOT differentially private" in first.stdout
    report = latest_report(project)
    assert report["seeded"] and not report["private"]
    assert report["lifetime"]["budget"] == 1.4 and report["lifetime"]["epsilon"] == pytest.approx(1.0)
    assert ledger_rows(project, "SELECT seeded FROM runs") == [(1,)]

    # The budget is the dataset's, kept in the ledger: a run that leaves the setting out is held to it.
    parameters = project / "conf/local/parameters_tabular.yml"
    settings = yaml.safe_load(parameters.read_text())
    del settings["tabular"]["dp"]["lifetime_epsilon"]
    parameters.write_text(yaml.safe_dump(settings))
    refused = kedro(project, "run", "--pipelines=tabular", iterations=1, extra_environment=QUIET)
    assert refused.returncode != 0
    console = refused.stdout + refused.stderr
    assert "dataset 'adult-sample' would pass its lifetime budget (epsilon 1.4 at delta" in console
    # Two runs at epsilon 1 compose (exactly, in Gaussian DP) to 1.486, not 2; 0.882 is left.
    assert "spent or reserved by other runs 1, this run requests 1, together 1.486; remaining 0.8825" in console
    # Admission checks the budget before the rows (tests/pe/test_ledger.py): nothing after it ran.
    assert "run failed in node 'prepare.admit_run': LedgerError" in console
    assert "Running node: embed_private_data" not in console
    assert ledger_rows(project, "SELECT COUNT(*) FROM runs") == [(1,)]

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    [finished] = mlflow.search_runs(experiment_names=["dp-synth"], output_format="list")  # refused: no run
    assert finished.data.tags["dp_private"] == "false: seeded noise"
    assert finished.data.params["ledger_run_id"] == report["run_id"]
    assert finished.data.metrics["dp_lifetime_epsilon"] == pytest.approx(1.0)
    metrics = set(finished.data.metrics)
    assert "epsilon_spent" in metrics and "distinct_survivors" in metrics
    # Diagnostics of the private and held-out data stay with the owner (dp.tracking_diagnostics: never).
    assert not [name for name in metrics if name.startswith(("final.", "time_", "tvd"))]
    artifacts = {artifact.path for artifact in mlflow.MlflowClient().list_artifacts(finished.info.run_id, "reports")}
    assert artifacts == {"reports/privacy_report.json"}


LOCAL_ARTIFACTS = "/home/owner/project/mlruns/1/0123/artifacts"


@pytest.mark.parametrize(
    ("uri", "local"),
    [
        ("sqlite:///mlflow.db", True),
        ("sqlite:////home/owner/mlflow.db", True),
        ("/home/owner/mlruns", True),
        ("file:///home/owner/mlruns", True),
        (r"C:\Users\owner\mlruns", True),
        ("http://127.0.0.1:5000", True),
        ("http://127.0.0.2:5000", True),
        ("http://localhost:5000", True),
        ("http://[::1]:5000", True),
        ("postgresql://localhost/mlflow", True),
        ("https://mlflow.example.org", False),
        ("http://10.0.0.7:5000", False),
        ("http://0.0.0.0:5000", False),
        ("databricks", False),
        ("databricks://profile", False),
        ("databricks-uc", False),
        ("postgresql://tracking.example.org/mlflow", False),
        ("postgresql+psycopg2://owner@tracking.example.org/mlflow", False),
        ("//server/share/mlruns", False),  # a UNC path: a network share
        (r"\\server\share\mlruns", False),
        ("file:////server/share/mlruns", False),
        ("file://server/share/mlruns", False),
        ("sqlite://///server/share/mlflow.db", False),
    ],
)
def test_diagnostics_go_to_mlflow_only_when_its_store_is_on_this_machine(uri, local):
    from dp_synth.hooks.stores import diagnostics_to_tracking, tracking_is_local
    from dp_synth.pe.settings import JobSettings

    assert tracking_is_local(uri) == local
    for policy, expected in (("local", local), ("always", True), ("never", False)):
        settings = JobSettings.parse({"dp": {"tracking_diagnostics": policy}}, "job")
        assert diagnostics_to_tracking(settings, uri, LOCAL_ARTIFACTS) == expected


@pytest.mark.parametrize(
    ("tracking_uri", "artifact_uri", "local"),
    [
        ("sqlite:///mlflow.db", LOCAL_ARTIFACTS, True),
        ("sqlite:///mlflow.db", "file:///home/owner/project/mlruns/1/0123/artifacts", True),
        ("sqlite:///mlflow.db", "s3://bucket/mlruns/1/0123/artifacts", False),  # a local store, remote artifacts
        ("sqlite:///mlflow.db", "gs://bucket/mlruns", False),
        ("sqlite:///mlflow.db", "wasbs://runs@account.blob.core.windows.net/mlruns", False),
        ("sqlite:///mlflow.db", "abfss://runs@account.dfs.core.windows.net/mlruns", False),
        ("sqlite:///mlflow.db", "hdfs://namenode:8020/mlruns", False),
        ("sqlite:///mlflow.db", "dbfs:/databricks/mlflow-tracking/1/0123/artifacts", False),
        ("sqlite:///mlflow.db", "//server/share/mlruns/1/0123/artifacts", False),
        ("sqlite:///mlflow.db", "sftp://owner@files.example.org/mlruns", False),
        ("sqlite:///mlflow.db", "ftp://127.0.0.1/mlruns", False),  # an unknown kind of store: not trusted
        ("http://127.0.0.1:5000", "mlflow-artifacts:/1/0123/artifacts", True),  # proxied by the local server
        ("https://mlflow.example.org", "mlflow-artifacts:/1/0123/artifacts", False),  # ... by a remote one
        ("http://127.0.0.1:5000", "mlflow-artifacts://mlflow.example.org/1/0123/artifacts", False),
        ("http://127.0.0.1:5000", "http://localhost:5000/api/2.0/mlflow-artifacts/artifacts/1", True),
        ("https://mlflow.example.org", LOCAL_ARTIFACTS, False),  # remote metrics, local artifacts
    ],
)
def test_diagnostics_go_to_mlflow_only_when_its_artifacts_stay_on_this_machine(tracking_uri, artifact_uri, local):
    from dp_synth.hooks.stores import diagnostics_to_tracking, stores_are_local
    from dp_synth.pe.settings import JobSettings

    assert stores_are_local(tracking_uri, artifact_uri) == local
    settings = JobSettings.parse({"dp": {"tracking_diagnostics": "local"}}, "job")
    assert diagnostics_to_tracking(settings, tracking_uri, artifact_uri) == local


def test_the_artifact_location_checked_is_the_one_mlflow_resolves_for_the_run(tmp_path, monkeypatch):
    """A local SQLite store whose experiment keeps its artifacts in an object store: the hook reads
    the run's artifact URI from MLflow, and diagnostics stay home."""
    from dp_synth.hooks.stores import stores, stores_are_local

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    local = mlflow.create_experiment("local-artifacts")
    remote = mlflow.create_experiment("remote-artifacts", artifact_location="s3://bucket/mlruns")
    try:
        for experiment, expected in ((local, True), (remote, False)):
            with mlflow.start_run(experiment_id=experiment):
                tracking_uri, artifact_uri = stores()
                assert tracking_uri.startswith("sqlite:")
                assert stores_are_local(tracking_uri, artifact_uri) == expected, artifact_uri
    finally:
        mlflow.set_tracking_uri(None)

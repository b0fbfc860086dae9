"""``kedro run`` on a copy of the project, as a user runs it: outputs, versions, MLflow, errors."""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from dp_synth.modalities.tabular.schema import conform, parse_schema
from tests.conftest import PROJECT_ROOT, kedro, written_files


def test_kedro_run_releases_versioned_synthetic_data_and_tracks_epsilon(project):
    small = "tabular.pe.population_size=60,tabular.release.rows=500,tabular.dp.seed=3"
    first = kedro(project, "run", "--params", small)
    assert first.returncode == 0, first.stderr[-3000:] + first.stdout[-3000:]
    second = kedro(project, "run", "--pipeline=tabular", "--params", small)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (project / "pyproject.toml").read_text() == (PROJECT_ROOT / "pyproject.toml").read_text()

    # Every population and the release are versioned: the second run wrote next to the first.
    releases = sorted((project / "data/07_model_output/tabular/synthetic_data.csv").iterdir())
    assert len(releases) == 2
    schema = parse_schema(json.loads((project / "data/01_raw/adult/schema.json").read_text()))
    for release in releases:
        synthetic = conform(pd.read_csv(release / "synthetic_data.csv"), schema)
        assert len(synthetic) == 500
        assert set(synthetic["class"]) == {"<=50K", ">50K"}
    for name in ("iter_000", "iter_001"):
        assert len(list((project / f"data/05_model_input/tabular/populations/{name}.parquet").iterdir())) == 2
    assert len(list((project / "data/05_model_input/tabular/survivors/iter_002.parquet").iterdir())) == 2

    # Nothing derived from private rows is persisted besides DP outputs and aggregate reports.
    allowed_roots = {
        "data/05_model_input/tabular/populations",
        "data/05_model_input/tabular/survivors",
        "data/05_model_input/tabular/histograms",
        "data/06_models/tabular",
        "data/07_model_output/tabular",
        "data/08_reporting/tabular",
    }
    assert all(any(str(path).startswith(root) for root in allowed_roots) for path in written_files(project))

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["dp-synth"], output_format="list")
    assert len(runs) == 2
    client = mlflow.MlflowClient()
    for run in runs:
        # The runs table says what ran: job, epsilon and dataset in the name, the dataset in its
        # column, the guarantee and the headline quality in the description.
        assert run.info.run_name == "tabular eps=1 uci-adult-1994-train"
        [dataset] = run.inputs.dataset_inputs
        assert dataset.dataset.name == "uci-adult-1994-train" and dataset.dataset.source_type == "code"
        note = run.data.tags["mlflow.note.content"]
        assert note.startswith("ε=1, δ=") and "seeded noise" in note and "; accuracy 0." in note
        assert note.endswith("; tabular on uci-adult-1994-train")
        assert run.data.params["dp_epsilon"] == "1.0"
        assert run.data.params["dp_iterations"] == "2"
        assert run.data.params["dp_releases"] == "3"  # class count + 2 histograms
        assert run.data.params["dp_noise_seeded"] == "True"
        assert float(run.data.params["dp_sigma"]) > 0
        history = client.get_metric_history(run.info.run_id, "epsilon_spent")
        assert [metric.step for metric in sorted(history, key=lambda m: m.step)] == [1, 2]
        assert max(metric.value for metric in history) == pytest.approx(1.0)
        assert 0.5 < run.data.metrics["final.utility.synthetic.gbm.accuracy"] <= 1.0
        assert run.data.metrics["final.utility.real_train.gbm.accuracy"] > 0.85
        assert run.data.metrics["final.rows"] == 500
        assert {"tvd_1way", "distinct_survivors", "histogram_mass_above_threshold"} <= set(run.data.metrics)
        assert {"final.fidelity.tvd_2way", "final.privacy.exact_copy_share"} <= set(run.data.metrics)
        assert "time_tabular.dp_histogram_s" in run.data.metrics  # stage timings, to a local store
        assert run.data.tags["bounds_warnings"].startswith("declare tighter bounds for column ")
        reports = {artifact.path for artifact in client.list_artifacts(run.info.run_id, "reports")}
        assert reports == {
            f"reports/{name}"
            for name in (
                "evaluation_report.json",
                "iterations.png",
                "marginals.png",
                "associations.png",
                "privacy_report.json",
            )
        }

    # The report holds aggregates only: numbers under fixed keys, no rows.
    report_paths = list((project / "data/08_reporting/tabular/evaluation_report.json").glob("*/evaluation_report.json"))
    assert len(report_paths) == 2
    for report_path in report_paths:
        report = json.loads(report_path.read_text())
        assert set(report) == {"rows", "evaluation", "fidelity", "utility", "privacy", "warnings"}
        assert report["evaluation"]["level"] == "quick" and report["evaluation"]["rows"]["synthetic"] == 500
        assert report["warnings"][0].startswith("declare tighter bounds for column ")  # Adult's loose bounds
        assert set(report["utility"]) == {"synthetic", "real_train", "uniform_random"}
    iterations = pd.read_csv(next((project / "data/08_reporting/tabular/iteration_metrics.csv").glob("*/*.csv")))
    assert iterations["iteration"].tolist() == [1, 2]
    assert iterations["epsilon_spent"].iloc[-1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("corrupt", "args", "message"),
    [
        (lambda table: table.assign(zip_code=1), [], "extra ['zip_code']"),
        (lambda table: table.drop(columns="age"), [], "missing ['age']"),
        (None, ["--params", "tabular.dp.epsilon=0"], "tabular.dp.epsilon: Input should be greater than 0"),
        (None, ["--params", "tabular.dp.delta=1.5"], "tabular.dp.delta: Input should be less than 1"),
        (None, ["--params", "tabular.pe.population_size=1"], "smaller than the number of classes"),
        (
            None,
            ["--params", "tabular.pe.candidats_per_bin=1"],
            "unknown setting 'candidats_per_bin': did you mean 'candidates_per_bin'?",
        ),
        (
            None,
            ["--params", "tabular.evaluation.plot_columns=[wage]"],
            "plot_columns names columns the schema lacks: ['wage']",
        ),
    ],
)
def test_bad_input_stops_with_a_clear_error_and_writes_nothing(project, corrupt, args, message):
    if corrupt is not None:
        path = project / "data/01_raw/adult/adult_train.csv"
        corrupt(pd.read_csv(path)).to_csv(path, index=False)
    result = kedro(project, "run", *args, iterations=1)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert written_files(project) == []  # the data is checked before the run is admitted: no plan, no run
    assert ledger_run_count(project) == 0
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    assert mlflow.search_runs(experiment_names=["dp-synth"], output_format="list") == []  # refused: no run


DISTINCTIVE = ("4242424242", "Zyxwvut-Quokka")
"""Private values no message may show: an age far out of bounds, an undeclared category."""


def with_invalid_private_values(project: Path, *, one_class: bool = False) -> None:
    """Put the distinctive values (and a missing value) in the private table; ``one_class``:
    keep only the rows of class <=50K, so that the declared class >50K has none."""
    path = project / "data/01_raw/adult/adult_train.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    table.loc[5, "age"], table.loc[7, "race"], table.loc[9, "education"] = DISTINCTIVE[0], DISTINCTIVE[1], None
    if one_class:
        table = table[table["class"] == "<=50K"]
    table.to_csv(path, index=False)


def ledger_run_count(project: Path) -> int:
    ledger = project / "privacy_ledger.db"
    if not ledger.exists():
        return 0
    with closing(sqlite3.connect(ledger)) as connection:
        return connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def assert_no_private_value_shown(project: Path, result) -> None:
    log = (project / "logs/dp-synth.log").read_text()
    for value in DISTINCTIVE:
        assert value not in result.stdout + result.stderr and value not in log


def test_stop_refuses_invalid_private_values_before_admission_naming_columns_and_counts_only(project):
    with_invalid_private_values(project)
    result = kedro(project, "run", "--params", "tabular.dp.on_invalid=stop", iterations=1)
    assert result.returncode != 0
    console = result.stdout + result.stderr
    assert "run failed in node 'prepare.admit_run': SchemaError: the private data does not fit" in console
    for problem in (
        "column 'age' has 1 values outside the declared domain [17, 90]",
        "column 'education' has 1 missing values",
        "column 'race' has 1 values outside the declared categories",
        "whether a run stops depends on the private data: stopping is not differentially private",
    ):
        assert problem in console
    assert_no_private_value_shown(project, result)
    assert written_files(project) == []  # no plan, no ledger run, no version folder
    assert ledger_run_count(project) == 0


@pytest.mark.parametrize("on_invalid", ["clamp", "drop"])
def test_clamp_and_drop_runs_complete_on_invalid_values_and_a_class_with_no_rows(project, on_invalid):
    with_invalid_private_values(project, one_class=True)
    settings = f"tabular.dp.on_invalid={on_invalid},tabular.pe.population_size=60,tabular.release.rows=500"
    result = kedro(project, "run", "--params", settings, iterations=1)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert_no_private_value_shown(project, result)
    schema = parse_schema(json.loads((project / "data/01_raw/adult/schema.json").read_text()))
    [release] = (project / "data/07_model_output/tabular/synthetic_data.csv").iterdir()
    synthetic = conform(pd.read_csv(release / "synthetic_data.csv"), schema)  # stop: raises if one does not fit
    assert len(synthetic) == 500
    [report] = (project / "data/07_model_output/tabular/privacy_report.json").glob("*/privacy_report.json")
    assert json.loads(report.read_text())["epsilon"] == pytest.approx(1.0)
    assert ledger_run_count(project) == 1


def test_t_is_read_from_the_parameter_files_and_params_cannot_change_it(project):
    small = {"pe": {"iterations": 2, "population_size": 60}, "release": {"rows": 300}, "dp": {"seed": 1}}
    (project / "conf/local/parameters_tabular.yml").write_text(yaml.safe_dump({"tabular": small}))
    result = kedro(project, "run", iterations=None)
    assert result.returncode == 0, result.stderr[-3000:]
    histograms = sorted(path.name for path in (project / "data/05_model_input/tabular/histograms").iterdir())
    assert histograms == ["iter_001.pkl", "iter_002.pkl"]  # T = 2 from conf/local
    refused = kedro(project, "run", "--params", "tabular.pe.iterations=3", iterations=None)
    assert refused.returncode != 0
    assert "T shapes the DAG, so --params cannot change it" in refused.stdout + refused.stderr


def test_zero_iterations_is_refused(project):
    result = kedro(project, "run", iterations=0)
    assert result.returncode != 0
    assert "DP_SYNTH_ITERATIONS (T) must be an integer >= 1" in result.stdout + result.stderr


def test_project_declines_telemetry_without_any_environment_variable(monkeypatch):
    from kedro_telemetry.plugin import _check_for_telemetry_consent

    for variable in ("DO_NOT_TRACK", "KEDRO_DISABLE_TELEMETRY"):
        monkeypatch.delenv(variable, raising=False)
    assert _check_for_telemetry_consent(PROJECT_ROOT) is False


def test_kedro_viz_shows_a_job_as_its_stages_and_each_iteration_as_a_modular_pipeline(project):
    result = kedro(project, "viz", "build", iterations=3)
    assert result.returncode == 0, result.stderr[-3000:]
    stages = {"prepare", "statistics", "iterations", "release", "report"}
    for job in ("tabular", "text", "image"):  # every job reuses the one template
        graph = json.loads((project / "build" / "api" / "pipelines" / job).read_text())
        root = graph["modular_pipelines"]["__root__"]["children"]
        assert {child["id"] for child in root if child["type"] == "modularPipeline"} == stages
        assert not [child for child in root if child["type"] == "task"]  # every node is in a stage
        iterations = {"iterations.iter_001", "iterations.iter_002", "iterations.iter_003"}
        assert set(graph["modular_pipelines"]) == {"__root__", *stages, *iterations}


def test_comparison_notebook_runs_against_a_tracking_store(project, monkeypatch):
    """The notebook's code, executed in order against the runs of a real `kedro run`."""
    result = kedro(project, "run", "--params", "tabular.pe.population_size=40,tabular.release.rows=300", iterations=1)
    assert result.returncode == 0, result.stderr[-3000:]
    notebook = json.loads((PROJECT_ROOT / "notebooks" / "compare_runs.ipynb").read_text())
    monkeypatch.chdir(project)
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "compare_runs.ipynb", "exec"), namespace)
    assert len(namespace["table"]) == 1
    assert namespace["table"]["rows"].iloc[0] == 300


def test_the_printed_resume_command_of_a_run_that_failed_after_its_last_histogram_works(project):
    """T = 1: the release fails to save after the only histogram; the command the run prints
    resumes it without releasing anything again."""
    small = {"pe": {"population_size": 60}, "release": {"rows": 300}, "dp": {"seed": 2}}
    (project / "conf/local/parameters_tabular.yml").write_text(yaml.safe_dump({"tabular": small}))
    (project / "data/07_model_output").mkdir(parents=True, exist_ok=True)
    (project / "data/07_model_output").mkdir(parents=True, exist_ok=True)
    (project / "data/07_model_output/blocked").write_text("a file where the release's folder should be")
    unwritable = {
        "tabular.synthetic_data": {"type": "pandas.CSVDataset", "filepath": "data/07_model_output/blocked/s.csv"}
    }
    (project / "conf/local/catalog.yml").write_text(yaml.safe_dump(unwritable))
    failed = kedro(project, "run", "--pipelines=tabular", iterations=None)
    assert failed.returncode != 0, failed.stderr[-3000:]
    (command,) = re.findall(r"DP_SYNTH_RESUME=\S+ DP_SYNTH_ITERATIONS=\d+ kedro run --pipelines=tabular", failed.stdout)
    assert command.startswith("DP_SYNTH_RESUME=iter_001.survivors ")

    (project / "conf/local/catalog.yml").unlink()
    variables = dict(part.split("=", 1) for part in command.split()[:2])
    resumed = kedro(project, *command.split()[3:], iterations=None, extra_environment=variables)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    release = pd.read_csv(next((project / "data/07_model_output/tabular/synthetic_data.csv").glob("*/*.csv")))
    assert len(release) == 300
    for saved in ("05_model_input/tabular/histograms/iter_001.pkl", "06_models/tabular/class_weights.json"):
        assert len(list((project / "data" / saved).iterdir())) == 1  # released once, by the failed run

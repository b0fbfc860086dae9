"""What a new user meets around ``kedro run``: a failed run's report, its MLflow run, categories
that look like numbers, the MLflow UI's address and ``make clean-outputs``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import yaml

from dp_synth.mlflow_ui import main as print_mlflow_ui_address
from dp_synth.modalities.tabular.schema import conform, parse_schema
from tests.conftest import PROJECT_ROOT, kedro

SMALL = "tabular.pe.population_size=300,tabular.release.rows=300,tabular.dp.seed=0"
QUIET = {"DP_SYNTH_VERBOSE": ""}
"""A developer's own DP_SYNTH_VERBOSE must not change what the tests see."""


def mlflow_runs(project: Path) -> list[mlflow.entities.Run]:
    """The dp-synth runs recorded in the project's tracking store."""
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["dp-synth"], output_format="list")


def test_a_failed_run_ends_with_one_line_and_marks_one_mlflow_run_failed(project):
    # The evaluation report cannot be saved (a file stands where its versions' folder goes):
    # the run fails late, after every node of the loop has reopened the MLflow run.
    report = project / "data/08_reporting/tabular/evaluation_report.json"
    report.parent.mkdir(parents=True)
    report.write_text("in the way")
    result = kedro(project, "run", "--pipelines=tabular", "--params", SMALL, iterations=2, extra_environment=QUIET)

    assert result.returncode != 0
    console = result.stdout + result.stderr
    assert "Traceback" not in console
    assert console.count("was closed because of an error") == 1
    assert "DP_SYNTH_ITERATIONS=2 kedro run --pipelines=tabular" in result.stdout  # the resume hint
    *_, pointer, summary = result.stderr.strip().splitlines()
    assert pointer == "dp-synth: full traceback in logs/dp-synth.log (DP_SYNTH_VERBOSE=1 prints it here too)"
    assert summary.startswith("dp-synth: run failed in node 'report.evaluate': DatasetError: ")
    assert "evaluation_report" in summary
    log = (project / "logs/dp-synth.log").read_text()
    assert "Traceback (most recent call last)" in log and "Running node: evaluate" in log

    [run] = mlflow_runs(project)
    assert run.info.status == "FAILED"


def test_verbose_failed_run_prints_the_traceback_before_its_summary_and_leaves_no_mlflow_run(project):
    private = project / "data/01_raw/adult/adult_train.csv"
    pd.read_csv(private).assign(zip_code=1).to_csv(private, index=False)
    result = kedro(project, "run", iterations=1, extra_environment={"DP_SYNTH_VERBOSE": "1"})

    assert result.returncode != 0
    traceback, summary = result.stderr.rsplit("\ndp-synth: ", 1)
    assert "Traceback (most recent call last)" in traceback
    assert summary.startswith("run failed in node 'prepare.admit_run': SchemaError: ")
    assert summary.rstrip().endswith("extra ['zip_code']")
    assert mlflow_runs(project) == []  # refused by validation before any release


NUMERIC_SCHEMA = {
    "label_column": "label",
    "public_row_count": 400,
    "columns": {
        "x": {"type": "integer", "min": 0, "max": 10},
        "score": {"type": "float", "min": -1.0, "max": 1.0},
        "code": {"type": "categorical", "categories": ["0", "1", "2"]},
        "area": {"type": "categorical", "categories": ["01", "02", "10"]},
        "label": {"type": "categorical", "categories": ["0", "1"]},
    },
}


def numeric_looking_table(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Rows whose categories are written like numbers; the label follows ``code``."""
    code = rng.integers(0, 3, rows)
    return pd.DataFrame(
        {
            "x": rng.integers(0, 11, rows),
            "score": rng.uniform(-1.0, 1.0, rows).round(3),
            "code": code,
            "area": rng.choice(["01", "02", "10"], rows),
            "label": ((code == 2) ^ (rng.random(rows) < 0.1)).astype(int),
        }
    )


def use_numeric_looking_table(project: Path) -> None:
    """Point the tabular job at a fresh table, as a user does in the catalog."""
    folder = project / "data/01_raw/numeric"
    folder.mkdir()
    rng = np.random.default_rng(0)
    numeric_looking_table(400, rng).to_csv(folder / "train.csv", index=False)
    numeric_looking_table(200, rng).to_csv(folder / "test.csv", index=False)
    (folder / "schema.json").write_text(json.dumps(NUMERIC_SCHEMA))
    catalog = project / "conf/base/catalog.yml"
    text = catalog.read_text()
    for adult, numeric in (
        ("schema.json", "schema.json"),
        ("adult_train.csv", "train.csv"),
        ("adult_test.csv", "test.csv"),
    ):
        text = text.replace(f"data/01_raw/adult/{adult}", f"data/01_raw/numeric/{numeric}")
    catalog.write_text(text)
    local = {"tabular": {"evaluation": {"plot_columns": None}}}  # the Adult columns are not in this table
    (project / "conf/local/parameters_tabular.yml").write_text(yaml.safe_dump(local))


def files_under(project: Path) -> set[Path]:
    """Every file of the project copy but its source (where Python writes its caches)."""
    return {path.relative_to(project) for path in project.rglob("*") if path.is_file() and "src" not in path.parts}


def test_categories_that_look_like_numbers_run_end_to_end_and_clean_up(project, capsys):
    use_numeric_looking_table(project)
    before = files_under(project)
    result = kedro(project, "run", "--pipelines=tabular", "--params", SMALL, iterations=1, extra_environment=QUIET)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]

    [release] = (project / "data/07_model_output/tabular/synthetic_data.csv").glob("*/synthetic_data.csv")
    synthetic = conform(pd.read_csv(release, dtype=str, keep_default_na=False), parse_schema(NUMERIC_SCHEMA))
    assert len(synthetic) == 300
    assert set(synthetic["label"]) <= {"0", "1"} and set(synthetic["area"]) <= {"01", "02", "10"}
    [report] = (project / "data/08_reporting/tabular/evaluation_report.json").glob("*/evaluation_report.json")
    assert json.loads(report.read_text())["rows"] == 300
    [run] = mlflow_runs(project)
    assert run.info.status == "FINISHED"

    # make mlflow-ui prints the address of the runs table, in the model-training view.
    print_mlflow_ui_address(["--tracking-uri", f"sqlite:///{project / 'mlflow.db'}"])
    address = f"http://127.0.0.1:5000/#/experiments/{run.info.experiment_id}/runs?workflowType=machine_learning"
    assert address in capsys.readouterr().out

    # make clean-outputs deletes every file the run wrote (MLflow store, artifacts, logs, ...), but
    # the privacy ledger and its key: the dataset's lifetime spend outlives the run's outputs.
    assert files_under(project) - before
    shutil.copy(PROJECT_ROOT / "Makefile", project / "Makefile")
    subprocess.run(["make", "--no-print-directory", "clean-outputs"], cwd=project, check=True, capture_output=True)
    assert files_under(project) - {Path("Makefile")} == before | {
        Path("privacy_ledger.db"),
        Path("privacy_ledger.db.key"),
    }

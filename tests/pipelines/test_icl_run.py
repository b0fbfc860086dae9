"""``kedro run --pipelines=icl`` on a copy of the project with a tiny local GPT-2: the pipeline's
shape, the release, the ledger's token votes in the privacy report, MLflow, nothing private in
the logs, and a model without log-probabilities refused before any data is read."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from dp_synth.pipelines.icl.pipeline import create_pipeline
from tests.conftest import kedro, written_files
from tests.tiny_models import build_tiny_causal_lm

CLASSES = ["World", "Sports", "Business", "Sci/Tech"]
TOKENS = 6
SMALL = {
    "dp": {"seed": 0, "epsilon": 4.0},
    "fewshot": {"groups": 3, "shots": 2, "max_new_tokens": TOKENS, "top_k": 5},
    "evaluation": {"reference_rows": 12},
}


def test_the_pipeline_admits_before_it_reads_and_keeps_private_groups_in_memory():
    pipeline = create_pipeline()
    names = [node.name for node in pipeline.nodes]
    assert set(names) == {
        f"icl.{name}"
        for name in (
            "parse_settings",
            "build_task",
            "calibrate_privacy",
            "admit_run",
            "partition_groups",
            "dp_token_votes",
            "report_privacy",
            "load_reference_data",
            "evaluate",
        )
    }
    readers = {node.name for node in pipeline.nodes if "icl.private_data" in node.inputs}
    assert readers == {"icl.admit_run"}
    assert pipeline.inputs() == {
        "icl.schema",
        "icl.private_data",
        "icl.reference_data",
        "icl.llm_api_key",
        "params:icl",
    }
    position = {name: index for index, name in enumerate(names)}
    assert position["icl.calibrate_privacy"] < position["icl.admit_run"] < position["icl.partition_groups"]


def configure(project: Path, generator: dict, rows_per_class: int = 20) -> None:
    for name in ("agnews_train.csv", "agnews_test.csv"):
        path = project / "data/01_raw/agnews" / name
        pd.read_csv(path).groupby("Class").head(rows_per_class).to_csv(path, index=False)
    settings = {**SMALL, "generator": generator}
    (project / "conf/local/parameters_icl.yml").write_text(yaml.safe_dump({"icl": settings}))


def test_icl_run_with_a_tiny_local_gpt2(project, tmp_path):
    model = build_tiny_causal_lm(tmp_path / "tiny-gpt2")
    configure(project, {"backend": "huggingface", "huggingface": {"model": str(model), "dtype": "float32"}})
    result = kedro(project, "run", "--pipelines=icl", iterations=None)
    assert result.returncode == 0, result.stderr[-3000:]

    released = pd.read_csv(next((project / "data/07_model_output/icl/demonstrations.csv").glob("*/*.csv")))
    assert list(released.columns) == ["label", "text"] and list(released["label"]) == CLASSES
    report = json.loads(next((project / "data/07_model_output/icl/privacy_report.json").glob("*/*.json")).read_text())
    (votes,) = report["releases"]
    assert votes["name"] == "few-shot token vote" and votes["count"] == TOKENS
    assert votes["sensitivity"] == pytest.approx(2**0.5) and report["epsilon"] == pytest.approx(4.0, rel=1e-6)
    evaluation = json.loads(
        next((project / "data/08_reporting/icl/evaluation_report.json").glob("*/*.json")).read_text()
    )
    assert evaluation["rows"] == 12 and 0.0 <= evaluation["accuracy"] <= 1.0
    assert all(
        str(path).startswith(("data/06_models/icl", "data/07_model_output/icl", "data/08_reporting/icl"))
        for path in written_files(project)
    )
    # No private example reaches the log (the groups' prompts are never logged).
    private = pd.read_csv(project / "data/01_raw/agnews/agnews_train.csv")
    logged = result.stdout + result.stderr + (project / "logs/dp-synth.log").read_text()
    assert not any(description in logged for description in private["Description"])

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["dp-synth"], output_format="list")
    assert run.data.params["dp_releases"] == str(TOKENS) and run.data.params["settings.fewshot.groups"] == "3"
    assert run.data.metrics["dp_run_epsilon"] == pytest.approx(4.0, rel=1e-6)
    assert 0.0 <= run.data.metrics["final.zero_shot_accuracy"] <= 1.0
    artifacts = {artifact.path for artifact in mlflow.MlflowClient().list_artifacts(run.info.run_id, "release")}
    assert artifacts == {"release/synthetic_data.csv"}


def test_an_icl_run_on_a_chat_endpoint_stops_before_reading_data(project):
    configure(
        project,
        {"backend": "openai_compatible", "openai_compatible": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}},
    )
    result = kedro(project, "run", "--pipelines=icl", iterations=None)
    assert result.returncode != 0
    assert "next-token log-probabilities need text.generator.openai_compatible.endpoint: completions" in (
        result.stdout + result.stderr
    )
    assert written_files(project) == []

"""``kedro run --pipelines=text`` on a copy of the project: a tiny local GPT-2, a loopback
OpenAI-compatible server, key hygiene, a failure and its resumption, no model configured."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from tests.conftest import kedro, written_files
from tests.fake_llm_server import FakeServer
from tests.release_fingerprint import PINNED, fingerprint
from tests.tiny_models import build_tiny_causal_lm

CLASSES = {"World", "Sports", "Business", "Sci/Tech"}
POPULATION = 24
SMALL = {
    "pe": {"population_size": POPULATION},
    "release": {"rows": POPULATION},
    "dp": {"seed": 0},
    # The tiny model writes gibberish and the fake server echoes its prompt: short prompt wording
    # (the echo check looks for five of its words in a row) and texts of any length pass.
    "generator": {
        "max_new_tokens": 12,
        "min_words": 1,
        "prompts": {
            "random": "Write a {domain} about {label}: {description}.",
            "paraphrase": "Paraphrase ({label}): {text}",
            "fill_blanks": "Fill the blanks ({label}): {masked_text}",
        },
    },
    "evaluation": {"reference_rows": 80},
}
KEY = "sk-e2e-NEVER-PRINTED-42"
ALLOWED_ROOTS = (
    "data/05_model_input/text/populations",
    "data/05_model_input/text/survivors",
    "data/05_model_input/text/histograms",
    "data/06_models/text",
    "data/07_model_output/text",
    "data/08_reporting/text",
)


def configure(project: Path, generator: dict, rows_per_class: int = 20, **sections: dict) -> None:
    """Small corpora and local settings (``sections`` replace SMALL's), as a user would put them in conf/local."""
    for name in ("agnews_train.csv", "agnews_test.csv"):
        path = project / "data/01_raw/agnews" / name
        pd.read_csv(path).groupby("Class").head(rows_per_class).to_csv(path, index=False)
    settings = {**SMALL, **sections, "generator": {**SMALL["generator"], **generator}}
    (project / "conf/local/parameters_text.yml").write_text(yaml.safe_dump({"text": settings}))


def runs_by_start(project: Path) -> list:
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return sorted(
        mlflow.search_runs(experiment_names=["dp-synth"], output_format="list"), key=lambda run: run.info.start_time
    )


def epsilon_steps(run) -> dict[int, float]:
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "epsilon_spent")
    return {metric.step: metric.value for metric in history}


def test_text_run_without_a_model_stops_at_once_saying_how_to_configure_one(project):
    result = kedro(project, "run", "--pipelines=text", iterations=1)
    assert result.returncode != 0
    assert (
        "no text generator is configured: set text.generator.backend to 'huggingface'" in result.stdout + result.stderr
    )
    assert written_files(project) == []


def test_text_run_with_a_tiny_local_gpt2(project, tmp_path):
    model = build_tiny_causal_lm(tmp_path / "tiny-gpt2")
    # float32: the pinned release must not depend on whether this CPU computes in bfloat16
    configure(project, {"backend": "huggingface", "huggingface": {"model": str(model), "dtype": "float32"}})
    result = kedro(project, "run", "--pipelines=text", iterations=2)
    assert result.returncode == 0, result.stderr[-3000:]

    synthetic = pd.read_csv(next((project / "data/07_model_output/text/synthetic_texts.csv").glob("*/*.csv")))
    assert list(synthetic.columns) == ["label", "text"] and len(synthetic) == POPULATION
    assert fingerprint(synthetic) == PINNED["text"]  # the seeded release is what it was
    assert set(synthetic["label"]) <= CLASSES
    assert all(str(path).startswith(ALLOWED_ROOTS) for path in written_files(project))
    samples = json.loads(next((project / "data/08_reporting/text/synthetic_samples.json").glob("*/*.json")).read_text())
    assert set(samples) <= CLASSES and all(len(texts) <= 5 for texts in samples.values())

    (run,) = runs_by_start(project)
    steps = epsilon_steps(run)
    assert sorted(steps) == [1, 2] and steps[2] == pytest.approx(1.0)
    assert run.data.params["dp_releases"] == "3" and run.data.params["dp_resumed"] == "False"
    assert {"frechet_distance", "mean_words", "distinct_survivors"} <= set(run.data.metrics)
    metrics = run.data.metrics
    assert 0.0 <= metrics["final.utility.synthetic.accuracy"] <= 1.0
    assert metrics["final.utility.real_train.accuracy"] > 0.5  # MiniLM separates AG News topics
    assert 0.0 <= metrics["final.fidelity.precision"] <= 1.0 and metrics["final.fidelity.frechet_distance"] > 0
    reports = {artifact.path for artifact in mlflow.MlflowClient().list_artifacts(run.info.run_id, "reports")}
    assert reports == {
        f"reports/{name}"
        for name in ("evaluation_report.json", "synthetic_samples.json", "iterations.png", "privacy_report.json")
    }


def test_a_text_run_with_a_privacy_unit_protects_each_author(project, tmp_path):
    model = build_tiny_causal_lm(tmp_path / "tiny-gpt2")
    configure(project, {"backend": "huggingface", "huggingface": {"model": str(model), "dtype": "float32"}})
    private = project / "data/01_raw/agnews/agnews_train.csv"
    corpus = pd.read_csv(private)
    corpus.insert(0, "author", [f"a{index // 3}" for index in range(len(corpus))])  # three texts an author
    corpus.to_csv(private, index=False)
    schema_path = project / "data/01_raw/agnews/schema.json"
    schema_path.write_text(json.dumps({**json.loads(schema_path.read_text()), "privacy_unit": "author"}))
    result = kedro(project, "run", "--pipelines=text", "--params", "text.dp.max_rows_per_unit=2", iterations=1)
    assert result.returncode == 0, result.stderr[-3000:]
    [report] = (project / "data/07_model_output/text/privacy_report.json").glob("*/privacy_report.json")
    report = json.loads(report.read_text())
    assert "all rows of one 'author', at most 2 read per person" in report["neighbouring"]
    assert {release["name"]: release["sensitivity"] for release in report["releases"]}[
        "nearest-neighbour histogram"
    ] == 2
    synthetic = pd.read_csv(next((project / "data/07_model_output/text/synthetic_texts.csv").glob("*/*.csv")))
    assert list(synthetic.columns) == ["label", "text"]


def test_http_run_keeps_the_key_secret_and_resumes_after_a_failure_without_spending_twice(
    project, llm_server: FakeServer
):
    (project / "conf/local/credentials.yml").write_text(yaml.safe_dump({"text_llm": {"api_key": KEY}}))
    configure(
        project,
        {
            "backend": "openai_compatible",
            "openai_compatible": {"base_url": llm_server.url, "model": "canned", "max_retries": 0},
        },
        release={"rows": POPULATION, "vary": False},  # the release asks the server for nothing
    )
    # The random API and iteration 1's variation take 2 x 24 requests; the key is then rejected
    # in the middle of iteration 2's variation, after its histogram was released.
    llm_server.fail_from_request = 2 * POPULATION + 1
    failed = kedro(project, "run", "--pipelines=text", iterations=3)
    assert failed.returncode != 0
    failed_log = failed.stdout + failed.stderr
    assert "credentials.yml" in failed_log
    assert "DP_SYNTH_RESUME=iter_002.survivors DP_SYNTH_ITERATIONS=3 kedro run --pipelines=text" in failed_log

    llm_server.fail_from_request = None
    served_before = len(llm_server.requests)
    resumed = kedro(
        project, "run", "--pipelines=text", iterations=3, extra_environment={"DP_SYNTH_RESUME": "iter_002.survivors"}
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert len(llm_server.requests) - served_before == POPULATION  # only iteration 2's variation again
    assert all(request.headers["authorization"] == f"Bearer {KEY}" for request in llm_server.requests)

    first, second = runs_by_start(project)
    assert sorted(epsilon_steps(first)) == [1, 2]
    assert epsilon_steps(second) == {3: pytest.approx(1.0)}  # histograms 1-2 are not released again
    assert second.data.params["dp_resumed"] == "True"
    assert second.data.params["dp_sigma"] == first.data.params["dp_sigma"]
    assert len(list((project / "data/07_model_output/text/synthetic_texts.csv").iterdir())) == 1

    # The key is in no log line and no file the runs wrote (MLflow store included).
    assert KEY not in failed_log + resumed.stdout + resumed.stderr
    written = [path for path in project.rglob("*") if path.is_file() and "conf" not in path.parts]
    assert project / "mlflow.db" in written
    assert not [path for path in written if KEY.encode() in path.read_bytes()]


def test_a_run_that_fails_before_its_first_population_resumes_without_new_class_counts(project, llm_server):
    configure(
        project, {"backend": "openai_compatible", "openai_compatible": {"base_url": llm_server.url, "model": "m"}}
    )
    llm_server.fail_from_request = 1  # the server rejects the first request of the random API
    failed = kedro(project, "run", "--pipelines=text", iterations=2)
    assert failed.returncode != 0
    assert "DP_SYNTH_RESUME=class_sizes DP_SYNTH_ITERATIONS=2" in failed.stdout + failed.stderr

    llm_server.fail_from_request = None
    resumed = kedro(
        project, "run", "--pipelines=text", iterations=2, extra_environment={"DP_SYNTH_RESUME": "class_sizes"}
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    saved_counts = list((project / "data/06_models/text/class_weights.json").iterdir())
    assert len(saved_counts) == 1  # the DP class count was released once, by the failed run
    _, second = runs_by_start(project)
    assert second.data.params["dp_resumed"] == "True"
    assert epsilon_steps(second) == {1: pytest.approx(0.797, abs=0.001), 2: pytest.approx(1.0)}

"""``kedro run --pipelines=image`` on a copy of the project: the glyph simulator (the offline
default) and a tiny diffusion model, with versioned outputs and MLflow tracking."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
import yaml

from tests.conftest import kedro, written_files
from tests.release_fingerprint import PINNED, fingerprint
from tests.tiny_diffusion import build_tiny_diffusion_model

CLASSES = {str(digit) for digit in range(10)}
ALLOWED_ROOTS = tuple(
    f"data/{folder}/image" for folder in ("05_model_input", "06_models", "07_model_output", "08_reporting")
)


def only_run(project):
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["dp-synth"], output_format="list")
    return run


def test_image_run_with_the_glyph_simulator_and_lookahead(project):
    settings = {"pe": {"population_size": 200}, "dp": {"seed": 0}, "generator": {"lookahead": 2}}
    (project / "conf/local/parameters_image.yml").write_text(yaml.safe_dump({"image": settings}))
    result = kedro(project, "run", "--pipelines=image", iterations=2)
    assert result.returncode == 0, result.stderr[-3000:]

    synthetic = pd.read_parquet(next((project / "data/07_model_output/image/synthetic_images.parquet").glob("*/*")))
    assert len(synthetic) == 1257 and set(synthetic["label"]) <= CLASSES  # release.rows auto: the public count
    assert {"label", "image", "font", "rotation", "lookahead"} <= set(synthetic.columns)
    assert fingerprint(synthetic) == PINNED["image"]  # the seeded release is what it was
    assert all(str(path).startswith(ALLOWED_ROOTS) for path in written_files(project))

    run = only_run(project)
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "epsilon_spent")
    assert sorted(metric.step for metric in history) == [1, 2]
    assert max(metric.value for metric in history) == pytest.approx(1.0)
    assert run.data.metrics["final.utility.real_train.accuracy"] > 0.9
    assert run.data.metrics["final.utility.synthetic.accuracy"] > 0.3  # rendered digits already carry the classes
    reports = {artifact.path for artifact in mlflow.MlflowClient().list_artifacts(run.info.run_id, "reports")}
    assert reports == {"reports/evaluation_report.json", "reports/grid.png", "reports/iterations.png"}


def test_image_run_with_a_tiny_diffusion_model(project, tmp_path):
    model = build_tiny_diffusion_model(tmp_path / "unet", classes=10)
    settings = {
        "pe": {"population_size": 30},
        "release": {"rows": 40},
        "generator": {"backend": "diffusion", "diffusion": {"model": str(model), "num_inference_steps": 2}},
    }
    (project / "conf/local/parameters_image.yml").write_text(yaml.safe_dump({"image": settings}))
    result = kedro(project, "run", "--pipelines=image", iterations=2)
    assert result.returncode == 0, result.stderr[-3000:]
    synthetic = pd.read_parquet(next((project / "data/07_model_output/image/synthetic_images.parquet").glob("*/*")))
    assert len(synthetic) == 40 and list(synthetic.columns) == ["image", "label"]
    assert all(len(image) == 64 and image.min() >= 0.0 and image.max() <= 1.0 for image in synthetic["image"])
    assert "diffusion model on cpu (2 steps)" in result.stdout + result.stderr

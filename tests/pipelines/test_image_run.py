"""``kedro run --pipelines=image`` on a copy of the project: the glyph simulator (the offline
default), a tiny diffusion model, a tiny Stable Diffusion, and the retrieval simulator over the
glyph demo folder, with versioned outputs and MLflow tracking."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
import yaml
from kedro.io import DatasetError

from dp_synth.datasets import PublicImageFolder
from dp_synth.modalities.image.modality import parse_image_schema
from dp_synth.modalities.image.public_glyphs import write_glyph_folder
from dp_synth.modalities.image.settings import ImageSettings
from dp_synth.pe.settings import SettingsError
from dp_synth.pipelines.image.nodes import build_modality
from tests.conftest import kedro, written_files
from tests.release_fingerprint import PINNED, fingerprint
from tests.tiny_diffusion import build_tiny_diffusion_model, build_tiny_stable_diffusion

CLASSES = {str(digit) for digit in range(10)}
ALLOWED_ROOTS = tuple(
    f"data/{folder}/image" for folder in ("05_model_input", "06_models", "07_model_output", "08_reporting")
)


def released(project) -> pd.DataFrame:
    return pd.read_parquet(next((project / "data/07_model_output/image/synthetic_images.parquet").glob("*/*")))


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
    assert {"reports/evaluation_report.json", "reports/grid.png", "reports/iterations.png"} <= reports


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


def test_image_run_with_a_tiny_stable_diffusion(project, tmp_path):
    settings = {
        "pe": {"population_size": 20},
        "release": {"rows": 30},
        "generator": {
            "backend": "stable_diffusion",
            "stable_diffusion": {
                "model": str(build_tiny_stable_diffusion(tmp_path / "sd")),
                "num_inference_steps": 2,
                "prompts": ["a photo of the digit {label}"],
                "styles": ["ink", "pencil"],
            },
        },
    }
    (project / "conf/local/parameters_image.yml").write_text(yaml.safe_dump({"image": settings}))
    result = kedro(project, "run", "--pipelines=image", iterations=2)
    assert result.returncode == 0, result.stderr[-3000:]
    synthetic = released(project)
    assert len(synthetic) == 30 and list(synthetic.columns) == ["prompt", "image", "label"]
    assert all(
        prompt.startswith(f"a photo of the digit {label}, ") for label, prompt in synthetic.to_numpy()[:, [2, 0]]
    )
    assert all(len(image) == 64 and image.min() >= 0.0 and image.max() <= 1.0 for image in synthetic["image"])
    assert "text-to-image model on cpu (2 steps, guidance 7.5, drawn at 16x16)" in result.stdout + result.stderr
    metrics = only_run(project).data.metrics
    assert metrics["final.fidelity.frechet_distance"] > 0 and "final.utility.synthetic.accuracy" in metrics


def test_image_run_with_the_retrieval_simulator_over_the_glyph_demo(project):
    schema = parse_image_schema(json.loads((project / "data/01_raw/digits/schema.json").read_text()))
    write_glyph_folder(schema, project / "data/02_intermediate/image/public_glyphs", per_class=30, seed=0)
    settings = {"pe": {"population_size": 100}, "dp": {"seed": 0}, "generator": {"backend": "retrieval"}}
    (project / "conf/local/parameters_image.yml").write_text(yaml.safe_dump({"image": settings}))
    result = kedro(project, "run", "--pipelines=image", iterations=2)
    assert result.returncode == 0, result.stderr[-3000:]
    synthetic = released(project)
    assert len(synthetic) == 1257 and set(synthetic.columns) == {"public_index", "image", "label"}
    assert synthetic["public_index"].between(0, 299).all()
    assert (synthetic["public_index"] // 30 == synthetic["label"].astype(int)).all()  # a public image of its class
    assert "retrieval simulator (300 labelled public images)" in result.stdout + result.stderr
    assert only_run(project).data.metrics["final.utility.synthetic.accuracy"] > 0.3


def test_each_backend_says_what_it_needs(project):
    schema = json.loads((project / "data/01_raw/digits/schema.json").read_text())
    absent = PublicImageFolder(project / "data/02_intermediate/image/public_glyphs", labelled=True)
    default = build_modality(schema, ImageSettings.parse({}, "image"), absent)  # the folder is not read
    assert default.generator.description.startswith("glyph simulator")
    with pytest.raises(SettingsError, match=r"stable_diffusion\.model is not set"):
        build_modality(schema, ImageSettings.parse({"generator": {"backend": "stable_diffusion"}}, "image"), absent)
    with pytest.raises(DatasetError, match="make image-public-glyphs"):
        build_modality(schema, ImageSettings.parse({"generator": {"backend": "retrieval"}}, "image"), absent)
    with pytest.raises(SettingsError, match="did you mean 'retrieval'"):
        ImageSettings.parse({"generator": {"retreival": {}}}, "image")

"""Shared fixtures: the project's paths, the bundled Adult schema, a tiny schema, and a copy of the
project to run ``kedro`` in as a user does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dp_synth.modalities.tabular.schema import TableSchema, parse_schema
from tests.fake_llm_server import llm_server  # noqa: F401 (a fixture every test module may use)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ADULT_DIR = PROJECT_ROOT / "data" / "01_raw" / "adult"

TINY_SCHEMA = {
    "label_column": "label",
    "public_row_count": 100,
    "columns": {
        "age": {"type": "integer", "min": 18, "max": 90},
        "score": {"type": "float", "min": -1.0, "max": 1.0},
        "colour": {"type": "categorical", "categories": ["red", "green", "blue"]},
        "label": {"type": "categorical", "categories": ["no", "yes"]},
    },
}


@pytest.fixture
def tiny_schema() -> TableSchema:
    return parse_schema(TINY_SCHEMA)


@pytest.fixture
def tiny_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [18, 40, 90, 33],
            "score": [-1.0, 0.5, 1.0, 0.0],
            "colour": ["red", "blue", "green", "red"],
            "label": ["no", "yes", "no", "yes"],
        }
    )


@pytest.fixture(scope="session")
def adult_schema_json() -> dict:
    return json.loads((ADULT_DIR / "schema.json").read_text())


KEDRO = str(Path(sys.executable).with_name("kedro"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh copy of the project's configuration and raw data."""
    shutil.copytree(PROJECT_ROOT / "conf", tmp_path / "conf", ignore=shutil.ignore_patterns("local"))
    (tmp_path / "conf" / "local").mkdir()  # a developer's local settings must not leak into tests
    shutil.copytree(PROJECT_ROOT / "data" / "01_raw", tmp_path / "data" / "01_raw")
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    shutil.copytree(PROJECT_ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return tmp_path


def kedro(
    project: Path, *args: str, iterations: int | None = 2, extra_environment: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a kedro command in ``project`` without a terminal and without telemetry opt-outs in the
    environment, so the project's own settings must keep it from prompting or phoning home."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MLFLOW_") and key not in ("DO_NOT_TRACK", "KEDRO_DISABLE_TELEMETRY")
    }
    environment.pop("DP_SYNTH_ITERATIONS", None)
    if iterations is not None:  # None: T from the parameter files, as a user runs it
        environment["DP_SYNTH_ITERATIONS"] = str(iterations)
    environment.update(extra_environment or {})
    return subprocess.run(
        [KEDRO, *args],
        cwd=project,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )


def written_files(project: Path) -> list[Path]:
    return sorted(
        path.relative_to(project)
        for path in (project / "data").rglob("*")
        if path.is_file() and "01_raw" not in path.parts
    )

"""The README's "Bring your own table", followed literally on a fresh table from a fresh clone of
the project (no ``.venv``): its shell commands run as written, ``make install`` included, its JSON
and YAML go where it says."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from tests.conftest import PROJECT_ROOT

INSTALL_TIMEOUT_S = 900
"""``make install`` from the package index, then the run."""

FILES_BY_STEP = {
    "json": "data/01_raw/mytable/schema.json",
    "catalog": "conf/local/catalog.yml",
    "parameters": "conf/local/parameters_tabular.yml",
}


def readme_steps() -> list[tuple[str, str]]:
    """The (language, code) blocks of the README's "Bring your own table" section, in order."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## Bring your own table", 1)[1].split("\n## ", 1)[0]
    return [
        (language, re.sub(r"^ {3}", "", code, flags=re.M))
        for language, code in re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    ]


def fresh_table(rows: int, seed: int) -> pd.DataFrame:
    """A table of the README's example schema that no test or default was tuned on."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 100, size=rows)
    region = rng.choice(["north", "south", "east", "west"], size=rows)
    income = np.round(np.clip(rng.gamma(2.0, 20_000, size=rows) + 800 * (age - 18), 0, 500_000), 2)
    outcome = np.where((income > 80_000) ^ (region == "south"), "yes", "no")
    return pd.DataFrame({"age": age, "income": income, "region": region, "outcome": outcome})


def fresh_clone(destination: Path) -> Path:
    """What a fresh clone of the project holds, as the working tree has it: the tracked files and
    the untracked ones git does not ignore, in a new git repository; no ``.venv``, no outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    subprocess.run(["git", "init", "--quiet"], cwd=destination, check=True)
    return destination


def test_bring_your_own_table_works_as_written_from_a_fresh_clone(tmp_path):
    """Every block of the section, run as written in a fresh clone: ``make install`` creates the
    ``.venv`` (from the package index), the last block runs ``.venv/bin/kedro``."""
    clone = fresh_clone(tmp_path / "clone")
    assert not (clone / ".venv").exists() and (clone / ".git/info").is_dir()
    sources = tmp_path / "sources"
    sources.mkdir()
    fresh_table(2000, 0).to_csv(sources / "private.csv", index=False)
    fresh_table(500, 1).to_csv(sources / "heldout.csv", index=False)
    environment = {  # as a user's shell: no test runner's or developer's settings
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "DP_SYNTH_", "VIRTUAL_ENV", "PYTHON"))
        and key not in ("DO_NOT_TRACK", "KEDRO_DISABLE_TELEMETRY")
    }
    environment["PATH"] = os.pathsep.join(
        part for part in environment.get("PATH", "").split(os.pathsep) if not part.endswith(".venv/bin")
    )

    steps = readme_steps()
    assert steps[0][0] == "bash" and "make install" in steps[0][1]  # the section installs first
    yaml_files = iter([FILES_BY_STEP["catalog"], FILES_BY_STEP["parameters"]])
    for language, code in steps:
        if language == "json":
            (clone / FILES_BY_STEP["json"]).write_text(code)
        elif language == "yaml":
            (clone / next(yaml_files)).write_text(code)
        else:
            script = code.replace("/path/to/", f"{sources}/")
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=clone,
                env=environment,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=INSTALL_TIMEOUT_S,
            )
            assert result.returncode == 0, f"{code}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    assert steps[-1] == ("bash", ".venv/bin/kedro run --pipelines=tabular\n")
    assert next(yaml_files, None) is None
    project = clone

    release = pd.read_csv(next((project / "data/07_model_output/tabular/synthetic_data.csv").glob("*/*.csv")))
    assert list(release.columns) == ["age", "income", "region", "outcome"]
    assert abs(len(release) - 2000) < 200  # release.rows auto: the DP class count's total
    assert set(release["outcome"]) <= {"no", "yes"} and release["age"].between(18, 99).all()
    assert (project / ".git/info/exclude").read_text().splitlines()[-1] == "data/01_raw/mytable/"
    assert (
        "data/01_raw/mytable"
        not in subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"], cwd=project, capture_output=True, text=True
        ).stdout
    )
    # The ledger counts the run under the schema's declared dataset_id.
    dataset_id = json.loads((project / FILES_BY_STEP["json"]).read_text())["dataset_id"]
    [privacy_report] = (project / "data/07_model_output/tabular/privacy_report.json").glob("*/*.json")
    assert dataset_id == "mytable-v1" and dataset_id in privacy_report.read_text()
    marginals = list((project / "data/08_reporting/tabular/marginals.png").glob("*/*.png"))
    assert marginals  # the report's columns were chosen from the schema

"""The README's "Bring your own table", followed literally on a fresh table in a copy of the
project: its shell commands run as written, its JSON and YAML go where it says."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pandas as pd

from tests.conftest import PROJECT_ROOT, kedro

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


def test_bring_your_own_table_works_as_written(project, tmp_path):
    (project / ".git" / "info").mkdir(parents=True)  # a clone's git folder
    (project / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    sources = tmp_path / "sources"
    sources.mkdir()
    fresh_table(2000, 0).to_csv(sources / "private.csv", index=False)
    fresh_table(500, 1).to_csv(sources / "heldout.csv", index=False)

    steps = readme_steps()
    yaml_files = iter([FILES_BY_STEP["catalog"], FILES_BY_STEP["parameters"]])
    ran_kedro = False
    for language, code in steps:
        if language == "json":
            (project / FILES_BY_STEP["json"]).write_text(code)
        elif language == "yaml":
            (project / next(yaml_files)).write_text(code)
        elif "kedro run" in code:
            command = code.strip().split(".venv/bin/kedro ", 1)[1].split()
            result = kedro(project, *command, iterations=None)
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            ran_kedro = True
        else:
            script = code.replace("/path/to/", f"{sources}/")
            subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=project, check=True)
    assert ran_kedro and next(yaml_files, None) is None

    release = pd.read_csv(next((project / "data/07_model_output/tabular/synthetic_data.csv").glob("*/*.csv")))
    assert list(release.columns) == ["age", "income", "region", "outcome"]
    assert abs(len(release) - 2000) < 200  # release.rows auto: the DP class count's total
    assert set(release["outcome"]) <= {"no", "yes"} and release["age"].between(18, 99).all()
    assert (project / ".git/info/exclude").read_text().strip() == "data/01_raw/mytable/"
    marginals = list((project / "data/08_reporting/tabular/marginals.png").glob("*/*.png"))
    assert marginals  # the report's columns were chosen from the schema

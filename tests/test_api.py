"""The Python API: the tabular job's own nodes, a free ``sample``, the privacy report, and the
notebook that shows it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from dp_synth import TabularSynthesizer
from dp_synth.pe.settings import SettingsError
from tests.conftest import ADULT_DIR, PROJECT_ROOT
from tests.release_fingerprint import PINNED, fingerprint


@pytest.fixture(scope="module")
def adult() -> tuple[pd.DataFrame, dict]:
    return pd.read_csv(ADULT_DIR / "adult_train.csv"), json.loads((ADULT_DIR / "schema.json").read_text())


def test_a_seeded_fit_releases_what_the_kedro_job_released_before_the_refactor(adult):
    """The pinned release of ``kedro run --pipelines=tabular`` (seed 0, N = 3,000, T = 1, 2,000 rows)."""
    private, schema = adult
    synthesizer = TabularSynthesizer(epsilon=1.0, seed=0, population_size=3000).fit(private, schema)
    first = synthesizer.sample(2000)
    assert fingerprint(first) == PINNED["tabular"]
    second = synthesizer.sample(2000)  # a new draw from the same releases
    assert not second.equals(first) and list(second.columns) == schema_columns(schema)
    assert len(synthesizer.sample()) == schema["public_row_count"]  # release.rows auto


def schema_columns(schema: dict) -> list[str]:
    return list(schema["columns"])


def test_the_privacy_report_lists_every_release_and_sampling_costs_nothing(adult):
    private, schema = adult
    synthesizer = TabularSynthesizer(epsilon=2.0, delta=1e-6, population_size=500, iterations=2).fit(private, schema)
    before = synthesizer.privacy_report
    synthesizer.sample(100)
    report = synthesizer.privacy_report
    assert report == before
    assert report.epsilon == pytest.approx(2.0) and report.delta == 1e-6 and not report.seeded
    assert report.neighbouring.startswith("add/remove one record (a row; not a person")
    by_name = {release.name: release for release in report.releases}
    assert by_name["nearest-neighbour histogram"].count == 2 and by_name["class counts"].count == 1
    assert all(release.sigma > 0 and release.sensitivity > 0 for release in report.releases)
    assert any(name.startswith("generator statistics: ") for name in by_name)  # each statistic on its own
    composed = sum(release.count * (release.sensitivity / release.sigma) ** 2 for release in report.releases)
    assert composed == pytest.approx(report.mu**2)  # the listed releases are the whole run
    assert "NOT private" not in str(report)
    assert json.dumps(report.to_dict())  # public quantities only: it travels with the data


def test_bad_settings_are_named_before_anything_runs():
    with pytest.raises(SettingsError, match="did you mean 'structure'"):
        TabularSynthesizer(generator={"structur": "tree"})
    with pytest.raises(SettingsError, match="tabular.dp.epsilon"):
        TabularSynthesizer(epsilon=-1)
    with pytest.raises(RuntimeError, match="call fit"):
        TabularSynthesizer().sample(10)


def test_the_notebook_runs_on_the_bundled_adult_data(monkeypatch):
    notebook = json.loads((PROJECT_ROOT / "notebooks/python_api.ipynb").read_text())
    monkeypatch.chdir(PROJECT_ROOT)
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec("".join(cell["source"]), namespace)
    assert len(namespace["synthetic"]) == 10_000
    assert namespace["synthesizer"].privacy_report.epsilon == pytest.approx(1.0)

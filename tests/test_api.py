"""The Python API: the tabular job's own nodes, a free ``sample``, the privacy report, and the
notebook that shows it."""

from __future__ import annotations

import json
import logging
import os
import pydoc
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pandas as pd
import pytest

from dp_synth import TabularSynthesizer
from dp_synth.pe.accounting import PrivacyConfigError
from dp_synth.pe.schema import SchemaError
from dp_synth.pe.settings import SettingsError
from tests.conftest import ADULT_DIR, PROJECT_ROOT
from tests.release_fingerprint import PINNED, fingerprint


@pytest.fixture(scope="module")
def adult() -> tuple[pd.DataFrame, dict]:
    return pd.read_csv(ADULT_DIR / "adult_train.csv"), json.loads((ADULT_DIR / "schema.json").read_text())


def test_a_seeded_fit_releases_what_the_kedro_job_released_before_the_refactor(adult, tmp_path, monkeypatch):
    """The pinned release of ``kedro run --pipelines=tabular`` (seed 0, N = 3,000, T = 1, 2,000 rows)."""
    monkeypatch.chdir(tmp_path)  # the fit's privacy ledger (dp.ledger, relative) is the test's
    private, schema = adult
    synthesizer = TabularSynthesizer(epsilon=1.0, seed=0, population_size=3000).fit(private, schema)
    first = synthesizer.sample(2000)
    assert fingerprint(first) == PINNED["tabular"]
    second = synthesizer.sample(2000)  # a new draw from the same releases
    assert not second.equals(first) and list(second.columns) == schema_columns(schema)
    assert len(synthesizer.sample()) == schema["public_row_count"]  # release.rows auto


def schema_columns(schema: dict) -> list[str]:
    return list(schema["columns"])


def test_the_privacy_report_lists_every_release_and_sampling_costs_nothing(adult, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the fit's privacy ledger (dp.ledger, relative) is the test's
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


SMALL = "population_size=500, iterations=1"


def run_script(body: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a user's script in a fresh interpreter (its own logging), in ``cwd`` (its ledger)."""
    script = textwrap.dedent(
        f"""
        import json, logging
        import pandas as pd
        from dp_synth import TabularSynthesizer
        private = pd.read_csv({str(ADULT_DIR / "adult_train.csv")!r})
        schema_path = {str(ADULT_DIR / "schema.json")!r}
        """
    ) + textwrap.dedent(body)
    environment = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "src"), "OMP_NUM_THREADS": "1"}
    environment.pop("KEDRO_LOGGING_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=environment, capture_output=True, text=True, timeout=300
    )


def info_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "INFO" in line]


def test_a_script_s_fit_prints_nothing_unless_asked(tmp_path):
    """Quiet by default (warnings aside: the bundled schema's loose bounds, a new ledger's id); ``verbose=True``
    brings Kedro's log back, ``logging.basicConfig`` dp-synth's own INFO lines."""
    quiet = run_script(f"TabularSynthesizer({SMALL}).fit(private, schema_path)", tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == ""
    assert not info_lines(quiet.stderr) and "kedro" not in quiet.stderr.lower()
    warnings = ("Loose bounds", "The privacy ledger")  # the schema's loose bounds; a new ledger's id, once
    assert all(line.startswith(warnings) for line in quiet.stderr.splitlines()), quiet.stderr

    verbose = run_script(f"TabularSynthesizer({SMALL}, verbose=True).fit(private, schema_path)", tmp_path)
    assert verbose.returncode == 0, verbose.stderr
    assert any("INFO kedro.runner" in line for line in info_lines(verbose.stderr))
    assert any("INFO dp_synth" in line for line in info_lines(verbose.stderr))

    configured = run_script(
        f"logging.basicConfig(level=logging.INFO)\nTabularSynthesizer({SMALL}).fit(private, schema_path)", tmp_path
    )
    assert configured.returncode == 0, configured.stderr
    assert any(
        line.startswith("INFO:dp_synth.pipelines.pe.nodes:Privacy report") for line in configured.stderr.splitlines()
    )
    assert not any(line.startswith("INFO:kedro") for line in configured.stderr.splitlines())


def test_a_refused_fit_says_why_in_one_message(tmp_path):
    """The API pointed at a table whose schema has no ``public_row_count``: the project's exception,
    its message last, no log lines, no Kedro frames, no command-line resume hint."""
    failed = run_script(
        """
        schema = json.load(open(schema_path))
        del schema["public_row_count"]
        TabularSynthesizer(epsilon=1.0).fit(private, schema)
        """,
        tmp_path,
    )
    assert failed.returncode == 1 and failed.stdout == ""
    lines = failed.stderr.strip().splitlines()
    assert lines[0] == "Traceback (most recent call last):" and len(lines) <= 10, failed.stderr
    assert lines[-1].startswith("dp_synth.pe.accounting.PrivacyConfigError: dp.delta is 'auto'")
    assert "public_row_count" in lines[-1]
    assert "--from-nodes" not in failed.stderr and "kedro" not in failed.stderr and not info_lines(failed.stderr)


def test_a_refused_fit_logs_nothing_and_raises_without_the_runner_s_frames(adult, caplog, capsys):
    private, schema = adult
    schema = {key: value for key, value in schema.items() if key != "public_row_count"}
    with caplog.at_level(logging.DEBUG, logger="dp_synth"), pytest.raises(PrivacyConfigError) as raised:
        TabularSynthesizer(population_size=500, iterations=1).fit(private, schema)
    assert "no public_row_count" in str(raised.value)
    assert not any("kedro" in frame.filename for frame in traceback.extract_tb(raised.value.__traceback__))
    assert not any(record.name.startswith("kedro") for record in caplog.records)
    assert "--from-nodes" not in caplog.text + "".join(capsys.readouterr())
    with pytest.raises(PrivacyConfigError) as raised:  # verbose: the whole story
        TabularSynthesizer(population_size=500, iterations=1, verbose=True).fit(private, schema)
    assert any("kedro" in frame.filename for frame in traceback.extract_tb(raised.value.__traceback__))
    assert any(record.name.startswith("kedro") and record.levelno == logging.INFO for record in caplog.records)
    assert "--from-nodes" not in caplog.text + "".join(capsys.readouterr())
    assert logging.getLogger("kedro").level == logging.NOTSET  # as it was


def test_fit_reads_a_schema_file_and_names_what_it_cannot_read(adult, tmp_path):
    private, _ = adult
    (tmp_path / "schema.json").write_text("{not json")
    with pytest.raises(SchemaError, match="is not JSON"):
        TabularSynthesizer().fit(private, tmp_path / "schema.json")
    with pytest.raises(TypeError, match="pandas DataFrame"):
        TabularSynthesizer().fit(str(ADULT_DIR / "adult_train.csv"), ADULT_DIR / "schema.json")


def test_help_shows_the_documented_api():
    text = pydoc.render_doc(TabularSynthesizer, renderer=pydoc.plaintext)
    for words in (
        "Differentially private synthetic tables",
        "verbose:",
        "fit(self, private",
        "sample(self",
        "privacy_report",
    ):
        assert words in text


def test_the_notebook_runs_on_the_bundled_adult_data(monkeypatch):
    notebook = json.loads((PROJECT_ROOT / "notebooks/python_api.ipynb").read_text())
    monkeypatch.chdir(PROJECT_ROOT)
    namespace: dict = {}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            exec("".join(cell["source"]), namespace)
    assert len(namespace["synthetic"]) == 10_000
    assert namespace["synthesizer"].privacy_report.epsilon == pytest.approx(1.0)

"""What the MLflow runs table says about a run, and ``make mlflow-ui``: the address of the saved
view, printed once the server answers."""

from __future__ import annotations

import json
import stat
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest

from dp_synth import mlflow_ui
from dp_synth.mlflow_runs import VIEW_TAG, description, headline, run_name, view_state
from dp_synth.pe.accounting import GaussianPrivacyPlan

REPORT = {
    "rows": 300,
    "fidelity": {"tvd_1way": 0.05, "tvd_2way": 0.1214},
    "utility": {"synthetic": {"gbm": {"accuracy": 0.8071}}, "real_train": {"gbm": {"accuracy": 0.8712}}},
}


def plan(seed: int | None = None) -> GaussianPrivacyPlan:
    return GaussianPrivacyPlan(
        epsilon=1.0,
        delta=2.96e-6,
        sigma=12.6,
        releases=2,
        preliminary_releases=1,
        seed=seed,
        statistics_sigma=16.7,
        statistics_sensitivity=1.0,
        neighbouring="add/remove one record",
    )


def test_a_run_is_named_and_described_by_what_a_reader_compares_first():
    assert run_name("tabular", "uci-adult-1994-train", 1.0) == "tabular eps=1 uci-adult-1994-train"
    assert run_name("text", "agnews", 0.5) == "text eps=0.5 agnews"
    assert headline("tabular", REPORT) == [
        ("accuracy", 0.8071),
        ("trained on the private rows", 0.8712),
        ("2-way TVD", 0.1214),
    ]
    assert description("tabular", "uci-adult-1994-train", plan(), headline("tabular", REPORT)) == (
        "ε=1, δ=2.96e-06; accuracy 0.807, 2-way TVD 0.121 (accuracy trained on the private rows: 0.871); "
        "tabular on uci-adult-1994-train"
    )
    before_evaluation = description("tabular", "uci-adult-1994-train", plan(seed=0), [])
    assert before_evaluation == (
        "ε=1, δ=2.96e-06 (seeded noise: NOT private against whoever knows the seed); tabular on uci-adult-1994-train"
    )
    assert headline("image", {"utility": {"synthetic": {"accuracy": 0.5}}}) == [("accuracy", 0.5)]


def test_the_saved_view_puts_name_description_epsilon_delta_and_dataset_first():
    state = view_state()
    assert state["columnOrder"][:4] == [
        "attributes.`Run Name`",
        "attributes.`Description`",
        "params.`dp_epsilon`",
        "params.`dp_delta`",
    ]
    assert "attributes.`Dataset`" in state["selectedColumns"]
    assert "metrics.`final.utility.synthetic.gbm.accuracy`" in state["selectedColumns"]
    assert set(state["columnWidths"]) <= set(state["columnOrder"])


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, str]:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = mlflow.MlflowClient(uri).create_experiment("dp-synth")
    return uri, experiment_id


def test_the_printed_address_opens_the_saved_view(store, capsys):
    uri, experiment_id = store
    assert mlflow_ui.main(["--tracking-uri", uri, "--port", "5001"]) == 0
    address = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    assert address == (
        f"http://127.0.0.1:5001/#/experiments/{experiment_id}/runs"
        "?workflowType=machine_learning&viewStateShareKey=dp-synth-privacy"
    )
    saved = mlflow.MlflowClient(uri).get_experiment(experiment_id).tags[VIEW_TAG]
    assert json.loads(saved) == view_state()


def fake_mlflow(folder: Path, body: str) -> Path:
    """An ``mlflow`` executable that runs ``body`` (a Python script) instead of the UI."""
    path = folder / "mlflow"
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


HEALTHY_SERVER = """
    import http.server, sys
    port = int(sys.argv[sys.argv.index("--port") + 1])
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b"OK")
            if self.path == "/health":
                raise SystemExit  # one answer, then stop, as if Ctrl-C
        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", port), Health)
    try:
        server.serve_forever()
    except SystemExit:
        pass
"""


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_prints_the_address_once_the_server_answers(store, tmp_path, monkeypatch, capsys):
    uri, experiment_id = store
    monkeypatch.setattr(mlflow_ui.shutil, "which", lambda *args, **kwargs: str(fake_mlflow(tmp_path, HEALTHY_SERVER)))
    port = free_port()
    mlflow_ui.serve(uri, "dp-synth", port)
    out = capsys.readouterr().out
    assert f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?" in out


def test_serve_prints_no_address_when_the_server_never_answers(store, tmp_path, monkeypatch, capsys):
    uri, _ = store
    failing = fake_mlflow(tmp_path, "import sys\nsys.exit(3)\n")
    monkeypatch.setattr(mlflow_ui.shutil, "which", lambda *args, **kwargs: str(failing))
    assert mlflow_ui.serve(uri, "dp-synth", free_port()) == 3
    out, err = capsys.readouterr()
    assert "http://" not in out and "stopped (exit status 3) before it answered" in err

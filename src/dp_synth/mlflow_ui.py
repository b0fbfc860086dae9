"""The MLflow UI on the dp-synth runs: ``make mlflow-ui`` starts the server and, once it
answers, prints the address of the runs table in the project's saved view (run name, dataset,
epsilon, delta, headline quality and description as columns; ``dp_synth.mlflow_runs``).

MLflow 3's UI opens on its GenAI view (the home page, an experiment's traces) unless the
address says otherwise: ``#/experiments/<id>/runs?workflowType=machine_learning`` opens the
experiment's runs table in the model-training view.

Usage: ``python -m dp_synth.mlflow_ui [--tracking-uri URI] [--experiment NAME] [--port PORT] [--serve]``
(without ``--serve``: print the address of a server already running).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from mlflow import MlflowClient

from dp_synth.mlflow_runs import save_view

EXPERIMENT = "dp-synth"
"""The experiment of ``conf/base/mlflow.yml``."""
HOST = "127.0.0.1"
STARTUP_SECONDS = 120.0
"""How long ``--serve`` waits for the server to answer."""


def runs_address(experiment_id: str, port: int, view: str | None = None) -> str:
    """The UI address of an experiment's runs table, in the model-training view, in a saved view."""
    shared = f"&viewStateShareKey={view}" if view else ""
    return f"http://{HOST}:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning{shared}"


def address(tracking_uri: str, experiment_name: str, port: int) -> str:
    """What to open: the experiment's runs in the saved view, or the UI while there are no runs."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return f"No {experiment_name!r} runs yet (make run records one); the UI: http://{HOST}:{port}"
    view = save_view(client, experiment.experiment_id)
    return f"The {experiment_name} runs: {runs_address(experiment.experiment_id, port, view)}"


def answers(port: int) -> bool:
    """Whether an MLflow server answers on ``port`` (its ``/health`` endpoint)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def serve(tracking_uri: str, experiment_name: str, port: int) -> int:
    """Run ``mlflow ui`` on the store; print the address once it answers; wait until it stops."""
    if answers(port):
        print(f"Something already answers on port {port}: stop it, or pass another --port.", file=sys.stderr)
        return 1
    mlflow = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    signal.signal(signal.SIGTERM, _interrupt)  # stopped by `kill`: stop the server too
    server = subprocess.Popen([mlflow, "ui", "--backend-store-uri", tracking_uri, "--host", HOST, "--port", str(port)])
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not answers(port):
            if server.poll() is not None:
                print(f"mlflow ui stopped (exit status {server.returncode}) before it answered.", file=sys.stderr)
                return server.returncode or 1
            if time.monotonic() > deadline:
                print(f"mlflow ui did not answer on port {port} in {STARTUP_SECONDS:.0f} s.", file=sys.stderr)
                server.terminate()
                return 1
            time.sleep(0.5)
        print(address(tracking_uri, experiment_name, port), flush=True)
        print("Ctrl-C stops the server.", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        server.terminate()
        server.wait()
        return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Print where the UI shows the runs of the experiment (after starting it, with ``--serve``)."""
    parser = argparse.ArgumentParser(description="The MLflow UI address of the dp-synth runs.")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default=EXPERIMENT)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--serve", action="store_true", help="start `mlflow ui` and print the address once it answers")
    arguments = parser.parse_args(argv)
    if arguments.serve:
        return serve(arguments.tracking_uri, arguments.experiment, arguments.port)
    print(address(arguments.tracking_uri, arguments.experiment, arguments.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())

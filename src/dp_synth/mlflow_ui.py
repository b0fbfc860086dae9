"""The address of the dp-synth runs in the MLflow UI (``make mlflow-ui`` prints it).

MLflow 3's UI opens on its GenAI view (the home page, an experiment's traces) unless the
address says otherwise: ``#/experiments/<id>/runs?workflowType=machine_learning`` opens the
experiment's runs table in the model-training view.

Usage: ``python -m dp_synth.mlflow_ui [--tracking-uri URI] [--experiment NAME] [--port PORT]``.
"""

from __future__ import annotations

import argparse

from mlflow import MlflowClient

EXPERIMENT = "dp-synth"
"""The experiment of ``conf/base/mlflow.yml``."""


def runs_address(experiment_id: str, port: int) -> str:
    """The UI address of an experiment's runs table, in the model-training view."""
    return f"http://127.0.0.1:{port}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def main(argv: list[str] | None = None) -> None:
    """Print where the UI shows the runs of the experiment (or that it has none yet)."""
    parser = argparse.ArgumentParser(description="Print the MLflow UI address of the dp-synth runs.")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    parser.add_argument("--experiment", default=EXPERIMENT)
    parser.add_argument("--port", type=int, default=5000)
    arguments = parser.parse_args(argv)
    experiment = MlflowClient(arguments.tracking_uri).get_experiment_by_name(arguments.experiment)
    if experiment is None:
        print(f"No {arguments.experiment!r} runs yet (make run records one); the UI: http://127.0.0.1:{arguments.port}")
    else:
        print(f"The {arguments.experiment} runs: {runs_address(experiment.experiment_id, arguments.port)}")


if __name__ == "__main__":
    main()

"""What the MLflow runs table says about a dp-synth run, with MLflow's own mechanisms.

- The run name says the job, epsilon and the dataset: ``tabular eps=1 uci-adult-1994-train``
  (epsilon before the dataset: the runs table cuts long names at its column's width).
- The Dataset column (shown by default) names the dataset: an MLflow dataset input holding its
  id only (a ``MetaDataset``: no row, no path, nothing computed from the data).
- The description (the ``mlflow.note.content`` tag, shown on the run's page and as the table's
  Description column) states epsilon and delta first, then, once the evaluation report is
  allowed to reach the store (``dp.tracking_diagnostics``), the headline quality.
- A saved view of the experiment (an ``mlflow.sharedViewState.<key>`` experiment tag, what the
  UI's Share button writes) shows the run name and the description wide enough to read, then
  epsilon, delta, the dataset and the headline metrics as columns; ``make mlflow-ui`` prints
  its address.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import mlflow
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.meta_dataset import MetaDataset

from dp_synth.pe.accounting import GaussianPrivacyPlan

NOTE_TAG = "mlflow.note.content"
"""The tag MLflow shows as a run's description."""
VIEW_KEY = "dp-synth-privacy"
"""The saved view's share key (``?viewStateShareKey=`` in the UI's address)."""
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
HEADLINE_METRICS = {
    "tabular": (
        ("accuracy", ("utility", "synthetic", "gbm", "accuracy")),
        ("trained on the private rows", ("utility", "real_train", "gbm", "accuracy")),
        ("2-way TVD", ("fidelity", "tvd_2way")),
    ),
    "text": (
        ("accuracy", ("utility", "synthetic", "accuracy")),
        ("trained on the private texts", ("utility", "real_train", "accuracy")),
        ("Frechet distance", ("fidelity", "frechet_distance")),
    ),
    "image": (
        ("accuracy", ("utility", "synthetic", "accuracy")),
        ("trained on the private images", ("utility", "real_train", "accuracy")),
        ("Frechet distance", ("fidelity", "frechet_distance")),
    ),
}
"""Each job's headline quality: (label, path in the evaluation report); logged as
``final.<path>`` metrics. Accuracy is the held-out accuracy of a classifier trained on the
release (first) or on the private data (second, for scale)."""
RUN_NAME_COLUMN = "attributes.`Run Name`"
DESCRIPTION_COLUMN = "attributes.`Description`"
VIEW_COLUMNS = (
    ("attributes", "Description"),
    ("params", "dp_epsilon"),
    ("params", "dp_delta"),
    ("params", "dp_dataset_id"),
    *(("metrics", "final." + ".".join(path)) for job in HEADLINE_METRICS.values() for _, path in job),
    ("attributes", "Dataset"),
    ("tags", "dp_private"),
)
"""The saved view's columns after the run name and the creation time, in this order (a column
no run has is left out)."""
VIEW_WIDTHS = {RUN_NAME_COLUMN: 240, DESCRIPTION_COLUMN: 640}
"""Pixels: the run name and the description read whole in a 1,400-pixel window."""


def run_name(job: str, dataset_id: str, epsilon: float) -> str:
    """``tabular eps=1 uci-adult-1994-train``."""
    return f"{job} eps={epsilon:g} {dataset_id}"


def headline(job: str, report: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The headline quality of an evaluation report: (label, value) pairs, those it has."""
    found = []
    for label, path in HEADLINE_METRICS.get(job, ()):
        value: Any = report
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            found.append((label, float(value)))
    return found


def description(job: str, dataset_id: str, plan: GaussianPrivacyPlan, quality: list[tuple[str, float]]) -> str:
    """The run's description: the guarantee, the headline quality if known, the job and dataset.

    ``ε=1, δ=2.96e-06; accuracy 0.807, 2-way TVD 0.121 (accuracy trained on the private rows:
    0.871); tabular on uci-adult-1994-train`` (the headline first: the table cuts the rest).
    """
    parts = [f"ε={plan.epsilon:g}, δ={plan.delta:.3g}"]
    if plan.seed is not None:
        parts[0] += " (seeded noise: NOT private against whoever knows the seed)"
    scale = [f" (accuracy {name}: {value:.3f})" for name, value in quality if name.startswith("trained ")]
    if shown := [f"{name} {value:.3f}" for name, value in quality if not name.startswith("trained ")]:
        parts.append(", ".join(shown) + "".join(scale))
    parts.append(f"{job} on {dataset_id}")
    return "; ".join(parts)


def describe_run(job: str, dataset_id: str, plan: GaussianPrivacyPlan) -> None:
    """Name the active run, log its description and its dataset (by id only)."""
    mlflow.MlflowClient().update_run(mlflow.active_run().info.run_id, name=run_name(job, dataset_id, plan.epsilon))
    mlflow.set_tag(NOTE_TAG, description(job, dataset_id, plan, []))
    dataset = MetaDataset(CodeDatasetSource({"dp_synth.dataset_id": dataset_id}), name=dataset_id)
    mlflow.log_input(dataset, context="private")


def add_quality(job: str, dataset_id: str, plan: GaussianPrivacyPlan, report: Mapping[str, Any]) -> None:
    """Complete the active run's description with the evaluation report's headline quality."""
    mlflow.set_tag(NOTE_TAG, description(job, dataset_id, plan, headline(job, report)))


def view_state() -> dict[str, Any]:
    """The saved view: the runs table, newest first, with ``VIEW_COLUMNS`` in this order."""
    columns = [f"{kind}.`{name}`" for kind, name in VIEW_COLUMNS]
    return {
        "orderByKey": "attributes.start_time",
        "orderByAsc": False,
        "selectedColumns": columns,
        "columnOrder": [RUN_NAME_COLUMN, *columns],
        "columnWidths": VIEW_WIDTHS,
        "runListHidden": False,
        "viewMaximized": False,
    }


def save_view(client: mlflow.MlflowClient, experiment_id: str) -> str:
    """Write the saved view on the experiment (again: it follows this code) and return its key."""
    client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(view_state()))
    return VIEW_KEY

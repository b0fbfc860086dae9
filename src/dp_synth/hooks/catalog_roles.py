"""What a dataset is to the hooks, as its catalog entry declares it.

An entry says what MLflow logs of it in its ``metadata`` (Kedro passes an entry's ``metadata`` to
its dataset and plugins read it; placeholders of a dataset factory are filled in)::

    "{modality}.privacy_report":
      type: json.JSONDataset
      filepath: data/07_model_output/{modality}/privacy_report.json
      metadata:
        mlflow:
          log: privacy_report
          artifact: reports/privacy_report.json

The hooks recognise a dataset by this declaration, not by the end of its name. Whether what is
logged is public (a release, the privacy report) or a diagnostic computed from private or
held-out data is decided by its role in ``tracking``, not by the entry.
"""

from __future__ import annotations

from typing import Literal

from kedro.io import CatalogProtocol
from pydantic import BaseModel, ConfigDict, ValidationError

Role = Literal[
    "settings",
    "iteration_metrics",
    "privacy_report",
    "released_texts",
    "released_samples",
    "evaluation_report",
    "figure",
]
"""What a dataset is: the settings in force; one iteration's metrics; the privacy report; the
released texts (a table of them); released samples for reading; the evaluation report; a figure."""


class Tracked(BaseModel):
    """A catalog entry's ``metadata.mlflow``.

    Attributes:
        log: The dataset's role (``Role``).
        artifact: Where MLflow keeps it among the run's artifacts, if it is kept as a file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    log: Role
    artifact: str | None = None


def tracked(catalog: CatalogProtocol | None, name: str) -> Tracked | None:
    """What the catalog entry of dataset ``name`` declares for MLflow, if anything (a dataset
    the catalog does not declare, or without ``metadata.mlflow``: nothing).

    Raises:
        ValueError: if the entry's ``metadata.mlflow`` is not a ``Tracked`` declaration.
    """
    dataset = catalog.get(name) if catalog is not None else None
    declared = (getattr(dataset, "metadata", None) or {}).get("mlflow")
    if declared is None:
        return None
    try:
        return Tracked.model_validate(declared)
    except ValidationError as error:
        raise ValueError(f"catalog entry {name!r}: metadata.mlflow is not valid: {error}") from error

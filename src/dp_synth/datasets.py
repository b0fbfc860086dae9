"""Project datasets."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from dp_synth.core.llm import Secret


class ApiKeyDataset(AbstractDataset[None, "Secret | None"]):
    """Hands a node an API key from ``credentials.yml``, wrapped so that it never prints.

    Catalog entry: ``type: dp_synth.datasets.ApiKeyDataset`` with ``credentials: <name>``; the
    named credentials hold ``api_key`` (null or absent: no key). Read-only.
    """

    def __init__(self, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> None:
        key = (credentials or {}).get("api_key")
        self._key = Secret(str(key)) if key else None
        self.metadata = metadata

    def load(self) -> Secret | None:
        """The key, or ``None`` when none is configured."""
        return self._key

    def save(self, data: None) -> None:
        """Refuse: keys are configured in credentials.yml, never written by a run."""
        raise DatasetError("ApiKeyDataset is read-only: put the key in conf/local/credentials.yml")

    def _describe(self) -> dict[str, Any]:
        return {"api_key": "configured" if self._key else "not configured"}

"""Gives back the privacy ledger's reservation of a failed run."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from dp_synth.pe.ledger import LedgerError, LedgerRun, PrivacyLedger

logger = logging.getLogger(__name__)


class LedgerReservationHook:
    """Gives back what a failed run did not release: the privacy ledger reserved the run's whole
    plan when it admitted it (or took it back when it resumed), and a failed run releases no
    more until it is resumed."""

    def __init__(self) -> None:
        self.runs: dict[str, LedgerRun] = {}

    @hook_impl
    def before_pipeline_run(self) -> None:
        """A new run holds no reservation yet."""
        self.runs.clear()

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        """Note a run the ledger admitted."""
        self.runs.update({value.run_id: value for value in outputs.values() if isinstance(value, LedgerRun)})

    @hook_impl
    def after_dataset_loaded(self, data: Any) -> None:
        """Note a resumed run."""
        if isinstance(data, LedgerRun):
            self.runs[data.run_id] = data

    @hook_impl
    def on_pipeline_error(self) -> None:
        """Give back the reservations of the failed run (the error itself is reported as is)."""
        for run in self.runs.values():
            try:
                PrivacyLedger(run.path).give_back(run)
            except LedgerError as error:
                logger.warning("Could not give back the reservation of ledger run %s: %s", run.run_id, error)

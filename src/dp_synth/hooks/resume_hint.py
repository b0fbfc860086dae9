"""Says how to resume a failed run, and from which saved release."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol

from dp_synth.hooks.catalog_roles import tracked
from dp_synth.pipeline_registry import DEFAULT_ITERATIONS, pe_iterations
from dp_synth.pipelines.pe.pipeline import job_of, resume_point_name

logger = logging.getLogger(__name__)


class ResumeHintHook:
    """When a run fails, says which saved dataset it can resume from, and the command.

    Tracks the latest of the class sizes (saved with the other releases made before the loop),
    populations, histograms and survivors: the privacy ledger lets the run resume from its last
    release only, and loads every release made before it, so a re-run never pays for a release
    twice. Once the privacy report is saved, the run is finished and there is nothing to resume.
    """

    def __init__(self) -> None:
        self.latest: str | None = None
        self.finished = False
        self.job = "tabular"
        self.pipeline_names: list[str] = []
        self._catalog: CatalogProtocol | None = None

    @hook_impl
    def after_catalog_created(self, catalog: CatalogProtocol) -> None:
        """Keep the catalog: its entries say which dataset is the privacy report (``catalog_roles``)."""
        self._catalog = catalog

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        """Start tracking a new run."""
        self.latest, self.finished = None, False
        self.pipeline_names = list(run_params.get("pipeline_names") or [])

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        """Remember the latest saved dataset a run can resume from, and whether it finished."""
        if not self.finished and (declared := tracked(self._catalog, dataset_name)) is not None:
            self.finished = declared.log == "privacy_report"
        if point := resume_point_name(dataset_name):
            job = job_of(dataset_name)
            self.latest, self.job = point, job if job in DEFAULT_ITERATIONS else self.job

    @hook_impl
    def on_pipeline_error(self, error: Exception) -> None:
        """Log how to resume, if the loop got far enough to have saved something."""
        if self.finished:
            logger.error(
                "The run failed (%s) after saving its release and privacy report: the privacy ledger marks it "
                "finished, so there is nothing to resume (a resume would be refused).",
                type(error).__name__,
            )
            return
        if self.latest is None:
            return
        pipeline = f" --pipelines={','.join(self.pipeline_names)}" if self.pipeline_names else ""
        logger.error(
            "The run failed (%s) after saving %s. Nothing before it is lost: resume with\n"
            "    DP_SYNTH_RESUME=%s DP_SYNTH_ITERATIONS=%d kedro run%s\n"
            "with the same --params as this run. It loads the saved privacy plan, DP class counts and "
            "generator statistics, and releases only the histograms not yet released.",
            type(error).__name__,
            self.latest,
            self.latest,
            pe_iterations(self.job),
            pipeline,
        )

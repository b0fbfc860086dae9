"""Wall time per stage of a job, in the log and (as the settings allow) in MLflow."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node

from dp_synth.hooks.stores import diagnostics_to_tracking, stores, tracking_active, tracking_is_local
from dp_synth.pe.settings import PrivateJobSettings
from dp_synth.pipelines.pe.pipeline import job_of

logger = logging.getLogger(__name__)


def stage_of(node: Node) -> str:
    """The timed stage of a node: its job (whose datasets it writes) and its name without its
    namespaces, so that the iterations add up: ``iterations.iter_007.dp_histogram``, writing
    ``tabular.iter_007.histogram`` -> ``tabular.dp_histogram``."""
    return f"{job_of(node.outputs[0])}.{node.name.rpartition('.')[2]}"


class StageTimingHook:
    """Measures wall time per stage (``stage_of``: a node of the job, iterations summed) and
    reports it after the run.

    A stage's time grows with the private row count, so it is a diagnostic of the private data:
    it goes to MLflow only as ``dp.tracking_diagnostics`` allows, rounded to whole seconds when
    the tracking store is not on this machine.
    """

    def __init__(self) -> None:
        self.stage_seconds: dict[str, float] = defaultdict(float)
        self._started: dict[str, float] = {}
        self._settings: PrivateJobSettings | None = None

    @hook_impl
    def before_pipeline_run(self) -> None:
        """Start a fresh measurement."""
        self.stage_seconds.clear()
        self._settings = None

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        """Note when a node starts."""
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        """Add a finished node's time to its stage (and note the job's settings)."""
        self.stage_seconds[stage_of(node)] += time.perf_counter() - self._started.pop(node.name)
        self._settings = next(
            (value for value in outputs.values() if isinstance(value, PrivateJobSettings)), self._settings
        )

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        """Log the time per stage, and to MLflow when a run is active and the settings allow
        (first: kedro-mlflow's own hook closes the run)."""
        total = sum(self.stage_seconds.values())
        lines = [f"{stage:<45} {seconds:8.2f} s" for stage, seconds in sorted(self.stage_seconds.items())]
        logger.info("Wall time per stage (nodes only, %.2f s in all):\n%s", total, "\n".join(lines))
        if tracking_active() and self._settings is not None and diagnostics_to_tracking(self._settings, *stores()):
            local = tracking_is_local(mlflow.get_tracking_uri())
            mlflow.log_metrics(
                {
                    f"time_{stage}_s": seconds if local else round(seconds)
                    for stage, seconds in self.stage_seconds.items()
                }
            )

"""MLflow tracking of a job: what kedro-mlflow cannot know.

kedro-mlflow owns the run (start, end, parameters); this hook adds the calibrated noise, epsilon
spent after each iteration (``step=t``), the privacy ledger's run and the dataset's lifetime
epsilon, and the metrics nodes return. Only aggregates and DP releases' statistics are logged,
never private rows; diagnostics computed from the private or held-out data (quality metrics,
the evaluation report, figures) only as ``dp.tracking_diagnostics`` allows (``hooks.stores``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Node

from dp_synth.api import USER_ERRORS
from dp_synth.hooks.catalog_roles import Tracked, tracked
from dp_synth.hooks.stores import diagnostics_to_tracking, stores, tracking_active
from dp_synth.mlflow_runs import add_quality, describe_run
from dp_synth.modalities.tabular.plan import GeneratorPlan
from dp_synth.modalities.tabular.schema import readable_number
from dp_synth.modalities.tabular.statistics import TabularStatistics, located_bounds
from dp_synth.pe.accounting import GaussianPrivacyPlan
from dp_synth.pe.ledger import LedgerRun
from dp_synth.pe.settings import PrivateJobSettings
from dp_synth.pipelines.pe.nodes import PUBLIC_ITERATION_METRICS
from dp_synth.pipelines.pe.pipeline import job_of, resume_point_name

logger = logging.getLogger(__name__)

MAX_TAG_LENGTH = 5000
"""Longest MLflow tag value every tracking store accepts (older servers store 5,000 characters)."""
DIAGNOSTIC_ROLES = ("evaluation_report", "figure")
"""Roles of outputs computed from private or held-out data: logged only as
``dp.tracking_diagnostics`` allows (``hooks.stores``)."""
MAX_LOGGED_TEXTS = 10_000
"""Largest text release also kept as an MLflow artifact (``released_texts``)."""


def plan_parameters(plan: GaussianPrivacyPlan) -> dict[str, Any]:
    """MLflow parameters describing a privacy plan."""
    return {
        "dp_epsilon": plan.epsilon,
        "dp_delta": plan.delta,
        "dp_sigma": plan.sigma,
        "dp_mu": plan.mu,
        "dp_iterations": plan.iterations,
        "dp_releases": plan.releases,
        "dp_neighbouring": plan.neighbours,
        "dp_noise_seeded": plan.seed is not None,
    }


def leaves(tree: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The leaves of a nested mapping by dotted name: ``{"a": {"b": 1}}`` -> ``{"prefix.a.b": 1}``
    (an empty mapping is a leaf)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping) and value:
            flat.update(leaves(value, name))
        else:
            flat[name] = value
    return flat


def numeric_leaves(tree: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """The numbers of a nested report: ``{"a": {"b": 1}}`` -> ``{"prefix.a.b": 1.0}``."""
    return {
        name: float(value)
        for name, value in leaves(tree, prefix).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }


def tag_value(parts: Sequence[str], separator: str) -> str:
    """An MLflow tag's text: ``parts`` joined, ``none`` without any, cut to ``MAX_TAG_LENGTH``
    characters (the log holds them all)."""
    text = separator.join(parts) or "none"
    return text if len(text) <= MAX_TAG_LENGTH else text[: MAX_TAG_LENGTH - 3] + "..."


def setting_parameters(settings: PrivateJobSettings) -> dict[str, Any]:
    """Every setting in force, defaults included, as MLflow parameters ``settings.<section>.<key>``
    (the parameter files show only what users changed)."""
    return leaves(settings.model_dump(), "settings")


class PrivateEvolutionTrackingHook:
    """Logs the privacy plan, per-iteration metrics (with ``step=t``), the final report's
    numbers (as ``final.<section>.<metric>``) and the report files; names the run after its job,
    dataset and epsilon and describes it (``dp_synth.mlflow_runs``); a run refused by validation
    before any release leaves no MLflow run.

    Outputs are recognised by their type (the privacy plan, the ledger's run, the generator plan,
    the DP statistics) or by what their catalog entry declares (``catalog_roles``): the roles
    ``settings``, ``iteration_metrics``, ``privacy_report``, ``released_texts`` and
    ``released_samples`` are public; ``evaluation_report`` and ``figure`` are diagnostics, logged
    only as ``dp.tracking_diagnostics`` allows.
    """

    def __init__(self) -> None:
        self._plan_logged = self._ledger_run_logged = self._diagnostics = self._released = False
        self._plan: GaussianPrivacyPlan | None = None
        self._dataset_id: str | None = None
        self._run_id: str | None = None
        self._job = ""
        self._catalog: CatalogProtocol | None = None

    @hook_impl
    def after_catalog_created(self, catalog: CatalogProtocol) -> None:
        """Keep the catalog: its entries say what each output is (``catalog_roles``)."""
        self._catalog = catalog

    @hook_impl
    def before_pipeline_run(self) -> None:
        """A new run has not logged its privacy plan and ledger run yet, and sends no diagnostics
        until its settings allow them."""
        self._plan_logged = self._ledger_run_logged = self._diagnostics = self._released = False
        self._plan = self._dataset_id = self._run_id = None

    def _log_plan(self, plan: GaussianPrivacyPlan, *, resumed: bool) -> None:
        if not self._plan_logged:
            mlflow.log_params({**plan_parameters(plan), "dp_resumed": resumed})
            mlflow.set_tag("dp_private", "false: seeded noise" if plan.seed is not None else "true")
            self._plan_logged, self._plan = True, plan
            self._describe()

    def _describe(self) -> None:
        """Name and describe the run once its plan and its dataset are known (in either order:
        a resumed run loads both)."""
        if self._plan is not None and self._dataset_id is not None:
            describe_run(self._job, self._dataset_id, self._plan)

    def _log_ledger_run(self, run: LedgerRun, name: str) -> None:
        if not self._ledger_run_logged:
            mlflow.log_params(
                {
                    "ledger_run_id": run.run_id,
                    "dp_dataset_id": run.dataset_id,
                    "dp_lifetime_budget": run.lifetime_epsilon,
                }
            )
            self._ledger_run_logged, self._dataset_id, self._job = True, run.dataset_id, job_of(name)
            self._describe()

    def _log_typed(self, name: str, value: Any) -> bool:
        """Log an output recognised by its type; whether it was one."""
        if isinstance(value, GaussianPrivacyPlan):
            self._log_plan(value, resumed=False)
        elif isinstance(value, LedgerRun):
            self._log_ledger_run(value, name)
        elif isinstance(value, GeneratorPlan):
            mlflow.set_tags({"plan_warnings": tag_value(value.warnings, " | ")})
        elif isinstance(value, TabularStatistics):  # a DP release: where numeric data lies
            ranges = [
                f"{column} {readable_number(low)} to {readable_number(high)}"
                for column, (low, high) in located_bounds(value).items()
            ]
            mlflow.set_tags(
                {"located_bounds": tag_value(ranges, "; "), "bounds_warnings": tag_value(value.warnings, " | ")}
            )
        else:
            return False
        return True

    def _log_declared(self, declared: Tracked, value: Any) -> None:
        """Log an output by the role its catalog entry declares (``catalog_roles``), and keep it
        as the entry's artifact if it names one."""
        role, artifact = declared.log, declared.artifact
        if role in DIAGNOSTIC_ROLES and not self._diagnostics:
            return
        if role == "settings":  # in force, planned
            mlflow.log_params(setting_parameters(value))
            self._diagnostics = diagnostics_to_tracking(value, *stores())
        elif role == "iteration_metrics":
            shown = {k: v for k, v in value.items() if self._diagnostics or k in PUBLIC_ITERATION_METRICS}
            mlflow.log_metrics({k: v for k, v in shown.items() if k != "iteration"}, step=int(value["iteration"]))
        elif role == "privacy_report":  # public: it ships with the release
            lifetime = value["lifetime"]
            mlflow.log_metrics({"dp_run_epsilon": value["epsilon"], "dp_lifetime_epsilon": lifetime["epsilon"]})
        elif role == "evaluation_report":
            mlflow.log_metrics(numeric_leaves(value, prefix="final"))
            if self._plan is not None and self._dataset_id is not None:
                add_quality(self._job, self._dataset_id, self._plan, value)
        if artifact is None:
            return
        if role == "figure":
            mlflow.log_figure(value, artifact)
        elif role == "released_texts":  # public: the release itself, kept when small
            if len(value) <= MAX_LOGGED_TEXTS:
                mlflow.log_text(value.to_csv(index=False), artifact)
        else:
            mlflow.log_dict(value, artifact)

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        """Log recognised outputs of a node to the active MLflow run, if there is one."""
        if not tracking_active():
            return
        for name, value in outputs.items():
            if not self._log_typed(name, value) and (declared := tracked(self._catalog, name)) is not None:
                self._log_declared(declared, value)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        """A resumed run loads its saved privacy plan and ledger run before any node makes them:
        log them, the plan marked as resumed (a fresh run logs what its nodes return)."""
        if tracking_active() and isinstance(data, GaussianPrivacyPlan):
            self._log_plan(data, resumed=True)
        elif tracking_active() and isinstance(data, LedgerRun):
            self._log_ledger_run(data, dataset_name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        """A saved release (a point a run can resume from) means the run has spent budget."""
        self._released = self._released or resume_point_name(dataset_name) is not None

    @hook_impl
    def before_node_run(self) -> None:
        """Note the run kedro-mlflow opened (a failure in the first node has logged nothing yet)."""
        if tracking_active():
            self._run_id = mlflow.active_run().info.run_id

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error: Exception) -> None:
        """A run refused by validation (settings, schema, privacy parameters, lifetime budget)
        before any release leaves no run in the runs table: its MLflow run is deleted, after
        kedro-mlflow has closed it (the store keeps it as deleted until ``mlflow gc``)."""
        if isinstance(error, USER_ERRORS) and not self._released and self._run_id is not None:
            mlflow.MlflowClient().delete_run(self._run_id)
            logger.info("MLflow run %s deleted: the run was refused before any release", self._run_id)

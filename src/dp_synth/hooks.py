"""Project hooks: MLflow tracking of the privacy plan and per-iteration metrics, stage timings,
and the report of a failed command.

kedro-mlflow owns the run (start, end, parameters); these hooks add what it cannot know:
the calibrated noise, epsilon spent after each iteration (``step=t``), the privacy ledger's run
and the dataset's lifetime epsilon, and the metrics nodes return. Only aggregates and DP
releases' statistics are logged, never private rows; diagnostics computed from the private or
held-out data (quality metrics, the evaluation report, figures, stage timings) only as
``dp.tracking_diagnostics`` allows (by default, only when the tracking store and the run's
artifact location are both on this machine).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

import mlflow
import pandas as pd
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node
from matplotlib.figure import Figure

from dp_synth.api import USER_ERRORS
from dp_synth.mlflow_runs import add_quality, describe_run
from dp_synth.modalities.tabular.plan import GeneratorPlan
from dp_synth.modalities.tabular.schema import readable_number
from dp_synth.modalities.tabular.statistics import TabularStatistics, located_bounds
from dp_synth.pe.accounting import GaussianPrivacyPlan
from dp_synth.pe.ledger import LedgerError, LedgerRun, PrivacyLedger
from dp_synth.pe.settings import PrivateJobSettings
from dp_synth.pipeline_registry import DEFAULT_ITERATIONS, pe_iterations
from dp_synth.pipelines.pe.nodes import PUBLIC_ITERATION_METRICS
from dp_synth.pipelines.pe.pipeline import resume_point_name

logger = logging.getLogger(__name__)

_ITERATION_METRICS = re.compile(r"\.iter_(\d+)\.metrics$")
REPORTS = "reports"
"""MLflow artifact folder of the reports."""
MAX_TAG_LENGTH = 5000
"""Longest MLflow tag value every tracking store accepts (older servers store 5,000 characters)."""
MAX_LOGGED_TEXTS = 10_000
"""Largest text release also kept as an MLflow artifact (``release/synthetic_data.csv``)."""
_ITERATION_NAMESPACE = re.compile(r"\.iter_\d+")


def _tracking() -> bool:
    return mlflow.active_run() is not None


_HOSTED_STORES = {"databricks", "databricks-uc", "uc", "dbfs"}
"""MLflow URI schemes that name a hosted service or its file system, not a path on this machine."""
_HOST_SCHEMES = {"http", "https", "postgresql", "mysql", "mssql"}
"""Schemes whose location is the host they name (a driver may follow ``+``): local on loopback."""


def _is_loopback(host: str | None) -> bool:
    """Whether a URI's host is this machine's loopback interface (no host: not one)."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_local_path(path: str) -> bool:
    """Whether a file system path is on this machine: not a UNC path (``//server/share``,
    ``\\\\server\\share``), which names a network share."""
    return not path.startswith(("//", "\\\\", "/\\", "\\/"))


def location_is_local(uri: str, tracking_uri: str | None = None) -> bool:
    """Whether an MLflow tracking URI or artifact location keeps its contents on this machine.

    Local: a path or ``file:`` URI that is not a network share (UNC), a SQLite file that is not on
    one, an HTTP server or a database on the loopback address, and (for an artifact location)
    ``mlflow-artifacts:`` without a host when ``tracking_uri``, the server that proxies it, is
    local. Anything else is not: object stores (``s3:``, ``gs:``, ``wasbs:``, ``abfss:``,
    ``hdfs:`` ...), Databricks (``databricks``, ``dbfs:``), any other host, an unknown scheme.
    """
    if uri.partition(":")[0].lower() in _HOSTED_STORES or not _is_local_path(uri):
        return False
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "" or len(scheme) == 1:  # a path, or a Windows drive letter
        return True
    if scheme == "file":
        return parsed.netloc in ("", "localhost") and _is_local_path(parsed.path)
    if scheme == "sqlite":  # sqlite:///relative.db, sqlite:////absolute.db
        return parsed.netloc in ("", "localhost") and _is_local_path(parsed.path.removeprefix("/"))
    if scheme == "mlflow-artifacts":  # proxied by a tracking server: that one, or the named host
        if parsed.netloc:
            return _is_loopback(parsed.hostname)
        return tracking_uri is not None and location_is_local(tracking_uri)
    return scheme.partition("+")[0] in _HOST_SCHEMES and _is_loopback(parsed.hostname)


def tracking_is_local(uri: str) -> bool:
    """Whether an MLflow tracking URI keeps runs (parameters, metrics) on this machine."""
    return location_is_local(uri)


def stores_are_local(tracking_uri: str, artifact_uri: str) -> bool:
    """Whether both the tracking store (metrics) and the run's artifact location (reports,
    figures) are on this machine: a local tracking store may keep artifacts elsewhere."""
    return location_is_local(tracking_uri) and location_is_local(artifact_uri, tracking_uri)


def diagnostics_to_tracking(settings: PrivateJobSettings, tracking_uri: str, artifact_uri: str) -> bool:
    """Whether diagnostics computed from private or held-out data may go to MLflow
    (``dp.tracking_diagnostics``: ``local``, the default, only when the tracking store at
    ``tracking_uri`` and the run's artifact location ``artifact_uri`` are both on this machine)."""
    policy = settings.dp.tracking_diagnostics
    return policy == "always" or (policy == "local" and stores_are_local(tracking_uri, artifact_uri))


def _stores() -> tuple[str, str]:
    """The tracking URI and the active run's artifact location, as MLflow resolved it (from the
    experiment's ``artifact_location``, itself from the server's default artifact root)."""
    return mlflow.get_tracking_uri(), mlflow.get_artifact_uri()


def _short(dataset_name: str) -> str:
    """``tabular.evaluation_report`` -> ``evaluation_report``."""
    return dataset_name.rsplit(".", 1)[-1]


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
    numbers (as ``final.<section>.<metric>``) and the report files (under ``reports/``); names
    the run after its job, dataset and epsilon and describes it (``dp_synth.mlflow_runs``); a
    run refused by validation before any release leaves no MLflow run."""

    def __init__(self) -> None:
        self._plan_logged = self._ledger_run_logged = self._diagnostics = self._released = False
        self._plan: GaussianPrivacyPlan | None = None
        self._dataset_id: str | None = None
        self._run_id: str | None = None
        self._job = ""

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
            self._ledger_run_logged, self._dataset_id, self._job = True, run.dataset_id, _job(name)
            self._describe()

    def _log_diagnostics(self, name: str, value: Any) -> None:
        """Log a diagnostic output computed from private or held-out data, if allowed."""
        if not self._diagnostics:
            return
        if name.endswith(".evaluation_report"):
            mlflow.log_metrics(numeric_leaves(value, prefix="final"))
            mlflow.log_dict(value, f"{REPORTS}/{_short(name)}.json")
            if self._plan is not None and self._dataset_id is not None:
                add_quality(self._job, self._dataset_id, self._plan, value)
        elif isinstance(value, Figure):
            mlflow.log_figure(value, f"{REPORTS}/{_short(name).removesuffix('_plot')}.png")

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        """Log recognised outputs of a node to the active MLflow run, if there is one."""
        if not _tracking():
            return
        for name, value in outputs.items():
            if isinstance(value, GaussianPrivacyPlan):
                self._log_plan(value, resumed=False)
            elif isinstance(value, PrivateJobSettings) and name.endswith(".settings"):  # in force, planned
                mlflow.log_params(setting_parameters(value))
                self._diagnostics = diagnostics_to_tracking(value, *_stores())
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
            elif match := _ITERATION_METRICS.search(name):
                shown = {k: v for k, v in value.items() if self._diagnostics or k in PUBLIC_ITERATION_METRICS}
                mlflow.log_metrics({k: v for k, v in shown.items() if k != "iteration"}, step=int(match.group(1)))
            elif name.endswith(".privacy_report"):  # public: it ships with the release
                lifetime = value["lifetime"]
                mlflow.log_metrics({"dp_run_epsilon": value["epsilon"], "dp_lifetime_epsilon": lifetime["epsilon"]})
                mlflow.log_dict(value, f"{REPORTS}/{_short(name)}.json")
            elif name.endswith(".synthetic_samples"):  # released texts
                mlflow.log_dict(value, f"{REPORTS}/{_short(name)}.json")
            elif _is_released_texts(name, value):  # public: the release itself
                mlflow.log_text(value.to_csv(index=False), f"release/{_short(name)}.csv")
            else:
                self._log_diagnostics(name, value)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        """A resumed run loads its saved privacy plan and ledger run before any node makes them:
        log them, the plan marked as resumed (a fresh run logs what its nodes return)."""
        if _tracking() and isinstance(data, GaussianPrivacyPlan):
            self._log_plan(data, resumed=True)
        elif _tracking() and isinstance(data, LedgerRun):
            self._log_ledger_run(data, dataset_name)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        """A saved release (a point a run can resume from) means the run has spent budget."""
        self._released = self._released or resume_point_name(dataset_name) is not None

    @hook_impl
    def before_node_run(self) -> None:
        """Note the run kedro-mlflow opened (a failure in the first node has logged nothing yet)."""
        if _tracking():
            self._run_id = mlflow.active_run().info.run_id

    @hook_impl(trylast=True)
    def on_pipeline_error(self, error: Exception) -> None:
        """A run refused by validation (settings, schema, privacy parameters, lifetime budget)
        before any release leaves no run in the runs table: its MLflow run is deleted, after
        kedro-mlflow has closed it (the store keeps it as deleted until ``mlflow gc``)."""
        if isinstance(error, USER_ERRORS) and not self._released and self._run_id is not None:
            mlflow.MlflowClient().delete_run(self._run_id)
            logger.info("MLflow run %s deleted: the run was refused before any release", self._run_id)


def _job(dataset_name: str) -> str:
    """``tabular.ledger_run`` -> ``tabular``."""
    return dataset_name.partition(".")[0]


def _is_released_texts(name: str, value: Any) -> bool:
    """Whether an output is a text release (labelled texts, small enough to keep with the run)."""
    return (
        name.endswith(".synthetic_data")
        and isinstance(value, pd.DataFrame)
        and "text" in value.columns
        and len(value) <= MAX_LOGGED_TEXTS
    )


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

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        """Start tracking a new run."""
        self.latest, self.finished = None, False
        self.pipeline_names = list(run_params.get("pipeline_names") or [])

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        """Remember the latest saved dataset a run can resume from, and whether it finished."""
        self.finished = self.finished or dataset_name.endswith(".privacy_report")
        if point := resume_point_name(dataset_name):
            job = dataset_name.partition(".")[0]
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


def stage_of(node_name: str) -> str:
    """Group a node under its stage: ``tabular.iter_007.dp_histogram`` -> ``tabular.dp_histogram``."""
    return _ITERATION_NAMESPACE.sub("", node_name)


class StageTimingHook:
    """Measures wall time per stage (iterations summed) and reports it after the run.

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
        self.stage_seconds[stage_of(node.name)] += time.perf_counter() - self._started.pop(node.name)
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
        if _tracking() and self._settings is not None and diagnostics_to_tracking(self._settings, *_stores()):
            local = tracking_is_local(mlflow.get_tracking_uri())
            mlflow.log_metrics(
                {
                    f"time_{stage}_s": seconds if local else round(seconds)
                    for stage, seconds in self.stage_seconds.items()
                }
            )


LOG_FILE = Path("logs") / "dp-synth.log"
"""The log of every command run in the project (appended), tracebacks included, under its root."""
VERBOSE_VARIABLE = "DP_SYNTH_VERBOSE"
"""Set to 1 to print a failed command's full traceback on the console too."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_TRACEBACKS = logging.getLogger("dp_synth.traceback")
"""Writes tracebacks to the log file only: the console shows a one-line summary instead."""


def verbose() -> bool:
    """Whether ``DP_SYNTH_VERBOSE`` asks for tracebacks on the console."""
    return os.environ.get(VERBOSE_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")


def attach_log_file(path: Path) -> None:
    """Append every log record that reaches the root logger, and every traceback, to ``path``.

    Kedro's logging configuration (``conf/logging.yml``) cannot create the file's folder, so the
    file is attached here; attaching the same file twice does nothing.
    """
    path = path.resolve()
    root = logging.getLogger()
    if any(getattr(handler, "baseFilename", None) == str(path) for handler in root.handlers):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    _TRACEBACKS.addHandler(handler)
    _TRACEBACKS.propagate = False


def failure_summary(error: BaseException, node_name: str | None) -> str:
    """The one line that ends a failed command: where it failed, the error's type and message."""
    where = f"run failed in node {node_name!r}" if node_name else "failed"
    return f"dp-synth: {where}: {type(error).__name__}: {error}"


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


class FailureReportHook:
    """Ends a failed command with one clear line instead of a traceback.

    The console's last line names the failed node and the error (the resume hint, if any, is
    logged just before it); the full traceback is appended to ``logs/dp-synth.log`` with the
    rest of the command's log, and printed on the console too when ``DP_SYNTH_VERBOSE=1``.
    Kedro lets the error escape ``kedro run``, so the report is Python's ``sys.excepthook``,
    installed once the project's context exists.
    """

    def __init__(self) -> None:
        self.node: str | None = None
        """The node whose inputs, run or outputs the runner is at (the project's runs are
        sequential): an input it cannot load or an output it cannot save fails that node too."""
        self.failed_node: str | None = None
        self.log_path = LOG_FILE
        self._python_hook = sys.excepthook

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Log to the project's log file and report uncaught errors from now on."""
        self.log_path = Path(context.project_path) / LOG_FILE
        attach_log_file(self.log_path)
        if getattr(sys.excepthook, "__self__", None) is not self:
            self._python_hook = sys.excepthook
            sys.excepthook = self.report

    @hook_impl
    def before_pipeline_run(self) -> None:
        """No node of the new run has started, nor failed, yet."""
        self.node = self.failed_node = None

    @hook_impl
    def before_dataset_loaded(self, node: Node) -> None:
        """The runner starts a node by loading its inputs."""
        self.node = node.name

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        """A node with no inputs starts here."""
        self.node = node.name

    @hook_impl
    def on_pipeline_error(self) -> None:
        """The runner stopped in the node it was at (errors outside the runner name no node)."""
        self.failed_node = self.node

    def report(self, kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        """``sys.excepthook``: traceback to the log file, one summary line to the console.

        Interruptions (Ctrl-C) keep Python's own report.
        """
        if not isinstance(error, Exception):
            self._python_hook(kind, error, trace)
            return
        _TRACEBACKS.error(
            "Traceback of the failed command:\n%s", "".join(traceback.format_exception(kind, error, trace)).rstrip()
        )
        if verbose():
            self._python_hook(kind, error, trace)
        else:
            print(
                f"dp-synth: full traceback in {shown_path(self.log_path)} ({VERBOSE_VARIABLE}=1 prints it here too)",
                file=sys.stderr,
            )
        print(failure_summary(error, self.failed_node), file=sys.stderr)


class SparkSessionHook:
    """Starts the Spark engine's session before any dataset is read, when the catalog declares
    a Spark dataset (a job with ``engine: spark``): ``conf/<env>/spark.yml`` gives the master
    (``local[*]`` by default, a cluster's URL in ``conf/local/spark.yml``) and any other
    ``spark.*`` option. Without a Spark dataset, Spark is never imported."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Create the session that kedro-datasets' Spark datasets will then use."""
        entries = context.config_loader["catalog"].values()
        if not any(isinstance(entry, Mapping) and "Spark" in str(entry.get("type", "")) for entry in entries):
            return
        try:
            from dp_synth.pe.spark_engine import spark_session  # the spark extra: imported only when used
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(
                f"the catalog declares a Spark dataset, which needs the spark extra ({error.name} is missing): "
                "pip install -e '.[spark]', or make install-all",
                name=error.name,
            ) from None
        spark_session(dict(context.config_loader["spark"]))

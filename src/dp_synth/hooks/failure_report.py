"""The end of a failed command: one clear line on the console, the traceback in the log file."""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from types import TracebackType

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.pipeline import Node

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

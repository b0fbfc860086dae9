"""Logging as a library does it: ``import dp_synth`` configures no logging, and the Python API's
``fit`` prints nothing unless asked.

Importing Kedro applies a logging configuration (``conf/logging.yml`` from the working directory,
else Kedro's own): a console handler on the root logger and the ``kedro`` loggers at INFO. When
``dp_synth`` is what first imports Kedro (a script or notebook, not ``kedro run``), that import
is given an empty configuration, so logging stays as the user configured it (by default:
warnings and errors only). Under ``kedro run`` or ``kedro ipython`` Kedro's logging is in force
and is left alone.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

KEDRO_LOGGING_VARIABLE = "KEDRO_LOGGING_CONFIG"
NO_LOGGING_CONFIG = Path(__file__).with_name("no_logging.yml")
"""An incremental logging configuration that changes nothing (``KEDRO_LOGGING_CONFIG`` names it
while ``dp_synth`` imports Kedro)."""
LOGGERS = ("kedro", "dp_synth")
"""The loggers a verbose ``fit`` shows at INFO."""
VERBOSE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def import_kedro_without_logging() -> None:
    """Import Kedro's project module, which configures logging on import, with a configuration
    that changes nothing, unless it is imported already or ``KEDRO_LOGGING_CONFIG`` is set."""
    if "kedro.framework.project" in sys.modules or os.environ.get(KEDRO_LOGGING_VARIABLE):
        return
    os.environ[KEDRO_LOGGING_VARIABLE] = str(NO_LOGGING_CONFIG)
    announcement = logging.getLogger("kedro.framework.project")  # "Using ... as logging configuration"
    announcement.disabled = True
    try:
        import kedro.framework.project  # noqa: F401 (configures logging on import)
    finally:
        del os.environ[KEDRO_LOGGING_VARIABLE]
        announcement.disabled = False


def _kedro_configured_levels() -> dict[str, int]:
    """The logger levels Kedro's own logging configuration set (none after a quiet import)."""
    project = sys.modules.get("kedro.framework.project")
    loggers = dict(getattr(getattr(project, "LOGGING", None), "data", None) or {}).get("loggers") or {}
    return {
        name: logging.getLevelName(str(entry["level"]).upper())
        for name, entry in loggers.items()
        if isinstance(entry, dict) and "level" in entry
    }


@contextmanager
def fit_logging(verbose: bool) -> Iterator[None]:
    """The logging of one ``fit``.

    Quiet (``verbose=False``): Kedro's runner says nothing (its node-by-node INFO lines, and its
    error lines, which repeat the exception ``fit`` raises); ``dp_synth``'s own records follow
    the user's logging configuration (by default warnings only). A level the user set on the
    ``kedro`` logger is kept; one Kedro's logging configuration set (under ``kedro ipython``) is
    not the user's, and ``dp_synth``'s is then quieted to warnings too.

    Verbose: the ``kedro`` and ``dp_synth`` loggers at INFO, printed on stderr if no handler
    would show them.
    """
    kedro_levels = _kedro_configured_levels()
    changed: dict[str, int] = {}
    handler: logging.Handler | None = None
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if verbose:
            level = logging.INFO
        elif logger.level == kedro_levels.get(name, logging.NOTSET) != logging.NOTSET:
            level = logging.CRITICAL + 1 if name == "kedro" else logging.WARNING
        elif name == "kedro" and logger.level == logging.NOTSET:
            level = logging.CRITICAL + 1
        else:
            continue
        changed[name] = logger.level
        logger.setLevel(level)
    if verbose and not logging.getLogger(LOGGERS[0]).hasHandlers():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(VERBOSE_FORMAT))
        for name in LOGGERS:
            logging.getLogger(name).addHandler(handler)
    try:
        yield
    finally:
        for name, level in changed.items():
            logging.getLogger(name).setLevel(level)
        if handler is not None:
            for name in LOGGERS:
                logging.getLogger(name).removeHandler(handler)

"""The privacy ledger: every Gaussian release made on a private dataset, across runs, resumes
and the Python API.

A run is admitted (``PrivacyLedger.open_run``) before it reads a private row, and only if its
whole plan fits in the dataset's lifetime budget; each release is then recorded, and committed,
before its noise is drawn. So a crash can leave a release recorded but never used (counted:
the safe side), never used but unrecorded. A dataset's lifetime spend is the exact composition
of every release recorded on it: Gaussian mechanisms compose exactly in Gaussian DP,
``mu**2 = sum (sensitivity / sigma)**2``, whatever the runs' deltas.

Written by hand on the standard library's ``sqlite3``: one file in the project, no server and
no new dependency for two tables. A committed transaction is on disk (``synchronous=FULL``),
``BEGIN IMMEDIATE`` makes "check the lifetime budget, then record" atomic when runs on the same
dataset overlap, and a unique key on (run, iteration, release) refuses to record, and so to
release, the same thing twice.

The ledger is local: it also keeps a fingerprint of each run's private data (a hash of its
content: it must not travel), and it is never deleted with a run's outputs.
"""

from __future__ import annotations

import logging
import math
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kedro.utils import find_kedro_project

from dp_synth.pe.accounting import (
    GaussianPrivacyPlan,
    PrivacyConfigError,
    composed_mu,
    epsilon_of_mu,
    gdp_mu_for,
)

logger = logging.getLogger(__name__)

HISTOGRAM = "nearest-neighbour histogram"
CLASS_COUNTS = "class counts"
STATISTICS = "generator statistics"
"""Release names; a generator statistic is recorded as ``"generator statistics: <name>"``."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    dataset_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    job TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    seeded INTEGER NOT NULL,
    neighbouring TEXT NOT NULL,
    epsilon REAL NOT NULL,
    delta REAL NOT NULL,
    sigma REAL NOT NULL,
    iterations INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    iteration INTEGER NOT NULL,
    name TEXT NOT NULL,
    sensitivity REAL NOT NULL,
    sigma REAL NOT NULL,
    recorded_at TEXT NOT NULL,
    UNIQUE (run_id, iteration, name)
);
"""


class LedgerError(PrivacyConfigError):
    """A run, a resume or a release the ledger refuses: the message says why and what to do."""


@dataclass(frozen=True)
class Entry:
    """One Gaussian release as the ledger keeps it.

    Attributes:
        name: What was measured (``HISTOGRAM``, ``CLASS_COUNTS``, a generator statistic).
        sensitivity: Its L2 sensitivity under the run's neighbouring relation.
        sigma: The standard deviation of its noise.
        iteration: t of a histogram; 0 for the releases made before the loop.
    """

    name: str
    sensitivity: float
    sigma: float
    iteration: int = 0


@dataclass(frozen=True)
class LedgerRun:
    """A run's handle on the ledger, saved with the run's releases so that a resumed run goes
    on recording under the same run. Public quantities only (no fingerprint).

    Attributes:
        path: The ledger file (``dp.ledger``), relative to the project folder.
        run_id: The run's id in the ledger (and in MLflow, ``ledger_run_id``).
        dataset_id: The dataset's declared ``dataset_id``, else its catalog entry.
        lifetime_epsilon: The dataset's lifetime budget, or ``None`` for no limit.
        lifetime_delta: The delta it is stated at.
    """

    path: str
    run_id: str
    dataset_id: str
    lifetime_epsilon: float | None
    lifetime_delta: float


@dataclass(frozen=True)
class RunState:
    """What the ledger knows of a run.

    Attributes:
        dataset_id: The dataset it ran on.
        fingerprint: The content fingerprint of that dataset's private data.
        finished: Whether its release and privacy report were saved.
        last_histogram: t of its last recorded histogram (0: none yet).
        sigma: Its plan's histogram noise.
        iterations: Its plan's T.
    """

    dataset_id: str
    fingerprint: str
    finished: bool
    last_histogram: int
    sigma: float
    iterations: int


@dataclass(frozen=True)
class LifetimeSpend:
    """A dataset's spend over every run the ledger recorded on it.

    Attributes:
        dataset_id: The dataset.
        mu: Its GDP mu: every recorded release composed.
        epsilon: The epsilon of that mu at ``delta``.
        delta: The lifetime delta.
        budget: The lifetime epsilon it may reach (``None``: no limit).
        runs: How many runs released something on it.
    """

    dataset_id: str
    mu: float
    epsilon: float
    delta: float
    budget: float | None
    runs: int


def declared_dataset_id(schema: Mapping[str, Any], source: str) -> str:
    """The dataset's identity in the ledger: the schema's ``dataset_id`` if it declares one,
    else ``source`` (the catalog entry of the private data), with a warning.

    Raises:
        LedgerError: if ``dataset_id`` is declared but is not a non-empty string.
    """
    declared = schema.get("dataset_id")
    if declared is None:
        logger.warning(
            "The schema declares no dataset_id: the privacy ledger counts this dataset's spend under its "
            "catalog entry %r, shared by every table read through it; declare a dataset_id in the schema",
            source,
        )
        return source
    if not isinstance(declared, str) or not declared.strip():
        raise LedgerError(f"the schema's dataset_id must be a non-empty string, got {declared!r}")
    return declared.strip()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class PrivacyLedger:
    """The ledger file at ``path`` (created on first use); a relative path is taken from the
    Kedro project that holds the working directory (else from the working directory), so
    ``kedro run``, the Python API and a notebook in the project share one ledger."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.path = path if path.is_absolute() else (find_kedro_project(Path.cwd()) or Path.cwd()) / path

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the database's write lock from its start and
        committed to disk when the block ends (rolled back on an error)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, isolation_level=None, timeout=60.0)) as connection:
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.executescript(_SCHEMA)
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    @staticmethod
    def _dataset_entries(connection: sqlite3.Connection, dataset_id: str) -> list[tuple[str, float, float]]:
        return connection.execute(
            "SELECT r.run_id, r.sensitivity, r.sigma FROM releases r JOIN runs USING (run_id) WHERE dataset_id = ?",
            (dataset_id,),
        ).fetchall()

    def _check_budget(self, connection: sqlite3.Connection, run: LedgerRun, requested_mu: float, what: str) -> None:
        """Refuse ``requested_mu`` more on ``run``'s dataset if it would pass its lifetime budget."""
        if run.lifetime_epsilon is None:
            return
        spent_mu = composed_mu((d, s) for _, d, s in self._dataset_entries(connection, run.dataset_id))
        check_lifetime_budget(run.dataset_id, spent_mu, requested_mu, run.lifetime_epsilon, run.lifetime_delta, what)

    def check_budget(self, run: LedgerRun, requested_mu: float, what: str) -> None:
        """Refuse ``requested_mu`` more on ``run``'s dataset if it would pass its lifetime budget.

        Args:
            run: The run that would spend it.
            requested_mu: The GDP mu of what it would release.
            what: The spend, for the message (``"this run"``, ``"the resumed run"``).

        Raises:
            LedgerError: showing the epsilon spent, requested and remaining.
        """
        with self._transaction() as connection:
            self._check_budget(connection, run, requested_mu, what)

    def open_run(
        self, run: LedgerRun, *, fingerprint: str, plan: GaussianPrivacyPlan, job: str, requested_mu: float
    ) -> None:
        """Admit a new run: check that its whole plan fits in the lifetime budget, then register it.

        Raises:
            LedgerError: if the dataset's spend with this run's would pass ``run.lifetime_epsilon``.
        """
        with self._transaction() as connection:
            self._check_budget(connection, run, requested_mu, "this run")
            known = {
                row[0]
                for row in connection.execute("SELECT fingerprint FROM runs WHERE dataset_id = ?", (run.dataset_id,))
            }
            if known and fingerprint not in known:
                logger.warning(
                    "The private data of dataset %r differs from its earlier runs': its lifetime spend still counts "
                    "them all (declare another dataset_id only for data about other people)",
                    run.dataset_id,
                )
            connection.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.dataset_id,
                    fingerprint,
                    job,
                    _now(),
                    int(plan.seed is not None),
                    plan.neighbouring,
                    plan.epsilon,
                    plan.delta,
                    plan.sigma,
                    plan.iterations,
                ),
            )

    def record(self, run: LedgerRun, entries: Sequence[Entry], *, replacing: Entry | None = None) -> None:
        """Record releases about to be made, in one transaction, before their noise is drawn.

        Args:
            run: The run making them.
            entries: The releases.
            replacing: A reservation recorded earlier (the generator statistics as the plan
                granted them) that ``entries`` itemise; it is removed in the same transaction.

        Raises:
            LedgerError: if one of them is already recorded for this run (it would be released
                twice), or they would take the dataset past its lifetime budget.
        """
        with self._transaction() as connection:
            if replacing is not None:
                connection.execute(
                    "DELETE FROM releases WHERE run_id = ? AND iteration = ? AND name = ?",
                    (run.run_id, replacing.iteration, replacing.name),
                )
            self._check_budget(connection, run, composed_mu((e.sensitivity, e.sigma) for e in entries), "this release")
            try:
                connection.executemany(
                    "INSERT INTO releases (run_id, iteration, name, sensitivity, sigma, recorded_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [(run.run_id, e.iteration, e.name, e.sensitivity, e.sigma, _now()) for e in entries],
                )
            except sqlite3.IntegrityError as error:
                raise LedgerError(
                    f"run {run.run_id} has already recorded {[e.name for e in entries]} at iteration "
                    f"{entries[0].iteration}: releasing it again would spend the budget twice"
                ) from error

    def finish(self, run: LedgerRun) -> None:
        """Mark ``run`` finished (its release and privacy report are saved): it cannot be resumed."""
        with self._transaction() as connection:
            connection.execute("UPDATE runs SET finished_at = ? WHERE run_id = ?", (_now(), run.run_id))

    def entries(self, run_id: str) -> list[Entry]:
        """Every release recorded for a run, in the order recorded."""
        with self._transaction() as connection:
            rows = connection.execute(
                "SELECT name, sensitivity, sigma, iteration FROM releases WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        return [Entry(*row) for row in rows]

    def state(self, run_id: str) -> RunState | None:
        """What the ledger knows of a run, or ``None`` if it has no such run."""
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT dataset_id, fingerprint, finished_at IS NOT NULL, sigma, iterations FROM runs WHERE run_id = ?",
                (run_id,),
            ).fetchone()
            if row is None:
                return None
            (last,) = connection.execute(
                "SELECT COALESCE(MAX(iteration), 0) FROM releases WHERE run_id = ? AND name = ?", (run_id, HISTOGRAM)
            ).fetchone()
        dataset_id, fingerprint, finished, sigma, iterations = row
        return RunState(dataset_id, fingerprint, bool(finished), int(last), float(sigma), int(iterations))

    def lifetime(self, run: LedgerRun) -> LifetimeSpend:
        """The spend of ``run``'s dataset over every run recorded on it, at its lifetime delta."""
        with self._transaction() as connection:
            rows = self._dataset_entries(connection, run.dataset_id)
        mu = composed_mu((d, s) for _, d, s in rows)
        return LifetimeSpend(
            dataset_id=run.dataset_id,
            mu=mu,
            epsilon=epsilon_of_mu(mu, run.lifetime_delta),
            delta=run.lifetime_delta,
            budget=run.lifetime_epsilon,
            runs=len({run_id for run_id, _, _ in rows}),
        )


_BUDGET_TOLERANCE = 1e-9
"""Relative slack of the budget check, for rounding only (a run planned to end exactly at the
budget is admitted)."""


def check_lifetime_budget(
    dataset_id: str, spent_mu: float, requested_mu: float, budget: float, delta: float, what: str
) -> None:
    """Refuse a spend that would take a dataset past its lifetime budget.

    The spends compose exactly in Gaussian DP: ``mu_total**2 = spent_mu**2 + requested_mu**2``.

    Args:
        dataset_id: The dataset, for the message.
        spent_mu: The GDP mu of everything recorded on it.
        requested_mu: The GDP mu of the new spend.
        budget: The lifetime epsilon, at ``delta``.
        delta: The lifetime delta.
        what: The new spend, for the message (``"this run"``).

    Raises:
        LedgerError: showing the epsilon spent, requested and remaining (all at ``delta``); it
            is raised before the spend reads any private data.
    """
    total = epsilon_of_mu(math.hypot(spent_mu, requested_mu), delta)
    if total <= budget * (1.0 + _BUDGET_TOLERANCE):
        return
    remaining_mu = math.sqrt(max(gdp_mu_for(budget, delta) ** 2 - spent_mu**2, 0.0))
    raise LedgerError(
        f"dataset {dataset_id!r} would pass its lifetime budget (epsilon {budget:g} at delta {delta:.3g}): "
        f"spent {epsilon_of_mu(spent_mu, delta):.4g}, {what} requests {epsilon_of_mu(requested_mu, delta):.4g}, "
        f"together {total:.4g}; remaining {epsilon_of_mu(remaining_mu, delta):.4g}. {what.capitalize()} is refused "
        "before it reads the private data: lower dp.epsilon or, if the data owner agrees, raise dp.lifetime_epsilon"
    )

"""The privacy ledger: every Gaussian release made on a private dataset, across runs, resumes
and the Python API, and each dataset's lifetime budget.

A run is admitted (``PrivacyLedger.open_run``) before it reads a private row, and only if its
whole plan fits in the dataset's lifetime budget with everything the other runs spent or
reserved; admission reserves that whole plan in the same transaction, so two runs started at
once cannot both be admitted into a budget that fits one. A run then holds its reservation
until it finishes, fails (``give_back``: what it did not release is returned) or its process
ends; a resumed run takes it back (``resume_run``). Each release is recorded, and committed,
before its noise is drawn, so a crash can leave a release recorded but never used (counted:
the safe side), never used but unrecorded. A dataset's lifetime spend is the exact composition
of every release recorded on it: Gaussian mechanisms compose exactly in Gaussian DP,
``mu**2 = sum (sensitivity / sigma)**2``, whatever the runs' deltas.

The lifetime budget belongs to the dataset: stored in the ledger when a run's
``dp.lifetime_epsilon`` first sets it, lowered by a lower setting, raised only by the data
owner's command (``dp-synth ledger set-lifetime``), never by leaving the setting out.

Written by hand on the standard library's ``sqlite3``: one file in the project, no server and
no new dependency for a few tables. A committed transaction is on disk (``synchronous=FULL``),
``BEGIN IMMEDIATE`` makes "check the lifetime budget, then reserve or record" atomic when runs
on the same dataset overlap, and a unique key on (run, iteration, release) refuses to record,
and so to release, the same thing twice.

The ledger is local: it also keeps a fingerprint of each run's private data, an HMAC keyed by
a secret created beside the ledger (``<ledger>.key``, mode 0600) on first use, so the ledger
alone cannot test a guess of the data. Neither travels, and neither is deleted with a run's
outputs. A missing ledger is created afresh only when nothing says one existed: with
``dp.ledger_id`` set, or with its key still there, it is an error.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import secrets
import socket
import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
from dp_synth.pe.engine import content_fingerprint

logger = logging.getLogger(__name__)

HISTOGRAM = "nearest-neighbour histogram"
CLASS_COUNTS = "class counts"
STATISTICS = "generator statistics"
TOKEN_VOTE = "few-shot token vote"
"""Release names; a generator statistic is recorded as ``"generator statistics: <name>"``, the
DP few-shot job's vote on its t-th token as ``TOKEN_VOTE`` at iteration t."""

SET_LIFETIME_COMMAND = "dp-synth ledger set-lifetime"
"""The data owner's command that sets, raises or lowers a dataset's lifetime budget."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
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
    )""",
    """CREATE TABLE IF NOT EXISTS releases (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        iteration INTEGER NOT NULL,
        name TEXT NOT NULL,
        sensitivity REAL NOT NULL,
        sigma REAL NOT NULL,
        recorded_at TEXT NOT NULL,
        UNIQUE (run_id, iteration, name)
    )""",
    """CREATE TABLE IF NOT EXISTS budgets (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset_id TEXT NOT NULL,
        epsilon REAL NOT NULL,
        delta REAL NOT NULL,
        set_at TEXT NOT NULL,
        set_by TEXT NOT NULL
    )""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
"""The tables: runs, their releases, each dataset's lifetime budgets (the latest is in force,
the others are its history) and the ledger's id and key check."""

_RESERVATION_COLUMNS = (("plan_mu", "REAL NOT NULL DEFAULT 0"), ("owner_host", "TEXT"), ("owner_pid", "INTEGER"))
"""Columns of ``runs`` for the reservation: the whole plan's GDP mu, and the machine and process
holding it (none once the run finished or gave it back). A ledger written before them gains
them, its runs holding no reservation."""

_HOST = socket.gethostname()
_KEY_CHECK = b"dp-synth privacy ledger key"


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
class Budget:
    """A dataset's lifetime budget: the most epsilon it may ever spend, at ``delta``."""

    epsilon: float
    delta: float

    @property
    def mu(self) -> float:
        """The GDP mu it allows."""
        return gdp_mu_for(self.epsilon, self.delta)


@dataclass(frozen=True)
class Admission:
    """What a new run asks of the ledger.

    Attributes:
        dataset_id: The dataset it runs on.
        plan: Its privacy plan: the whole plan is reserved.
        job: The job (``tabular``, ``text``, ``image``).
        lifetime_epsilon: Its ``dp.lifetime_epsilon``: sets the dataset's budget if it has none,
            lowers it if lower; ``None`` leaves it as the ledger has it.
        lifetime_delta: Its ``dp.lifetime_delta``; ``None`` (``"auto"``): the stored budget's
            delta, else the run's delta.
        distinct_dataset: Its ``dp.distinct_dataset``: admit private data the ledger knows
            under another dataset_id (the same content about other people).
    """

    dataset_id: str
    plan: GaussianPrivacyPlan
    job: str
    lifetime_epsilon: float | None = None
    lifetime_delta: float | None = None
    distinct_dataset: bool = False


@dataclass(frozen=True)
class LedgerRun:
    """A run's handle on the ledger, saved with the run's releases so that a resumed run goes
    on recording under the same run. Public quantities only (no fingerprint).

    Attributes:
        path: The ledger file (``dp.ledger``), relative to the project folder.
        run_id: The run's id in the ledger (and in MLflow, ``ledger_run_id``).
        dataset_id: The dataset's declared ``dataset_id``, else its catalog entry.
        lifetime_epsilon: The dataset's lifetime budget when the run was admitted, or ``None``
            for no limit (the ledger checks the budget in force at each release).
        lifetime_delta: The delta it is stated at (without a budget, the run's lifetime delta).
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
        fingerprint: The keyed content fingerprint of that dataset's private data.
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


@dataclass(frozen=True)
class RunSummary:
    """A run as ``dp-synth ledger history`` shows it (public quantities only).

    Attributes:
        run_id: Its id.
        job: Its job.
        started_at: When it was admitted (UTC, ISO 8601).
        epsilon: Its plan's epsilon, at ``delta``.
        delta: Its plan's delta.
        released_mu: The GDP mu of what it recorded.
        status: ``finished``, ``in progress`` (holding its reservation) or ``stopped``.
    """

    run_id: str
    job: str
    started_at: str
    epsilon: float
    delta: float
    released_mu: float
    status: str


@dataclass(frozen=True)
class BudgetChange:
    """A lifetime budget set on a dataset, and by what (a run's setting, the command)."""

    set_at: str
    budget: Budget
    set_by: str


@dataclass(frozen=True)
class Standing:
    """A dataset as ``dp-synth ledger show`` shows it.

    Attributes:
        dataset_id: The dataset.
        budget: Its lifetime budget (``None``: no limit).
        spent_mu: The GDP mu of every release recorded on it.
        committed_mu: That with the runs in progress counted at their whole plan.
        runs: How many runs it was admitted.
        in_progress: How many of them hold a reservation.
    """

    dataset_id: str
    budget: Budget | None
    spent_mu: float
    committed_mu: float
    runs: int
    in_progress: int


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


def _holds_reservation(host: str | None, pid: int | None) -> bool:
    """Whether a run's reservation is held: its process runs (one on another machine, or where
    processes cannot be probed, is assumed to: the safe side)."""
    if pid is None:
        return False
    if host != _HOST or os.name != "posix":  # on Windows, os.kill(pid, 0) would send CTRL_C_EVENT
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _meta(connection: sqlite3.Connection, name: str) -> str | None:
    """A value of the ledger's ``meta`` table (``ledger_id``, ``key_check``)."""
    row = connection.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else row[0]


def _key_check(key: bytes) -> str:
    """What the ledger keeps of its key: an HMAC of a constant, to recognise the key."""
    return hmac.new(key, _KEY_CHECK, hashlib.sha256).hexdigest()


class PrivacyLedger:
    """The ledger file at ``path``; a relative path is taken from the Kedro project that holds
    the working directory (else from the working directory), so ``kedro run``, the Python API
    and a notebook in the project share one ledger.

    Only an admission (or ``set_lifetime``) creates a missing ledger, and only if nothing says
    one existed: ``ledger_id`` (``dp.ledger_id``) is set, or its key is still beside it.

    Args:
        path: The ledger file (``dp.ledger``).
        ledger_id: The id the ledger must have (``dp.ledger_id``), or ``None``.
    """

    def __init__(self, path: str | Path, ledger_id: str | None = None) -> None:
        self.setting = str(path)
        path = Path(path)
        self.path = path if path.is_absolute() else (find_kedro_project(Path.cwd()) or Path.cwd()) / path
        self.key_path = self.path.with_name(self.path.name + ".key")
        self.ledger_id = ledger_id

    @contextmanager
    def _transaction(self, *, create: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the database's write lock from its start and
        committed to disk when the block ends (rolled back on an error).

        Raises:
            LedgerError: if the ledger is missing (and may not be created here), is not
                ``ledger_id``, or its key is missing or not its own.
        """
        key_existed = self.key_path.exists()  # before the ledger: a new ledger is written before its key
        if not self.path.exists():
            self._refuse_missing(create=create, key_existed=key_existed)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, isolation_level=None, timeout=60.0)) as connection:
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            connection.execute("BEGIN IMMEDIATE")
            try:
                self._set_up(connection)
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _refuse_missing(self, *, create: bool, key_existed: bool) -> None:
        """Refuse to start a fresh ledger where one existed (or where none may be created)."""
        if not create:
            raise LedgerError(f"there is no privacy ledger at {self.path}")
        lost = "a fresh ledger would forget every dataset's lifetime spend; restore it (with its key) from a backup"
        if self.ledger_id is not None:
            raise LedgerError(
                f"the privacy ledger {self.ledger_id} (dp.ledger_id) is missing from {self.path}: {lost}, or point "
                "dp.ledger at it. Only if no release was ever made with it, remove dp.ledger_id to start a new one"
            )
        if key_existed:
            raise LedgerError(
                f"the privacy ledger {self.path} is missing but its key {self.key_path.name} is there, so it existed: "
                f"{lost}. Only if no release was ever made with it, delete the key to start a new one"
            )

    def _set_up(self, connection: sqlite3.Connection) -> None:
        """Create the tables (or add the columns an older ledger lacks); check the ledger's id
        and its key, creating them on first use."""
        for statement in _SCHEMA:
            connection.execute(statement)
        present = {row[1] for row in connection.execute("PRAGMA table_info(runs)")}
        for column, kind in _RESERVATION_COLUMNS:
            if column not in present:
                connection.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
        self._check_id(connection)
        self._check_key(connection)

    def _check_id(self, connection: sqlite3.Connection) -> None:
        """Give a new ledger its id (and say how to pin it); refuse one that is not ``ledger_id``."""
        found = _meta(connection, "ledger_id")
        if found is None:
            found = uuid.uuid4().hex
            connection.execute("INSERT INTO meta VALUES ('ledger_id', ?)", (found,))
            logger.warning(
                "The privacy ledger %s has the id %s: set dp.ledger_id: %s (in conf/local) so that a run stops, "
                "instead of starting a fresh ledger, if this one is ever lost",
                self.path,
                found,
                found,
            )
        if self.ledger_id is not None and found != self.ledger_id:
            raise LedgerError(
                f"the privacy ledger at {self.path} is {found}, not {self.ledger_id} (dp.ledger_id): another "
                "ledger does not know this dataset's lifetime spend; point dp.ledger at ledger "
                f"{self.ledger_id}, or set dp.ledger_id: {found} if this is the ledger to keep"
            )

    def _check_key(self, connection: sqlite3.Connection) -> None:
        """Create the fingerprint key on first use (mode 0600); refuse a missing or foreign one."""
        expected = _meta(connection, "key_check")
        if expected is None:
            self._create_key()
            connection.execute("INSERT INTO meta VALUES ('key_check', ?)", (_key_check(self._key()),))
        elif not self.key_path.exists():
            raise LedgerError(
                f"the privacy ledger's key {self.key_path} is missing: without it the ledger cannot recognise "
                "a dataset's data. Restore it from a backup of the ledger"
            )
        elif _key_check(self._key()) != expected:
            raise LedgerError(f"{self.key_path} is not the key of the privacy ledger {self.path}: restore its own")

    def _create_key(self) -> None:
        """Write a new secret beside the ledger, readable by its owner only, unless one is there."""
        try:
            descriptor = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32))

    def _key(self) -> bytes:
        return bytes.fromhex(self.key_path.read_text().strip())

    def identity(self) -> str:
        """The ledger's id (``dp.ledger_id`` pins it)."""
        with self._transaction() as connection:
            return _meta(connection, "ledger_id")

    def fingerprint(self, data: Any) -> str:
        """The keyed fingerprint of a table's content (``engine.content_fingerprint``); the
        ledger must exist (an admission creates it)."""
        with self._transaction():  # checks the key is the ledger's
            key = self._key()
        return content_fingerprint(data, key)

    @staticmethod
    def _dataset_entries(connection: sqlite3.Connection, dataset_id: str) -> list[tuple[str, float, float]]:
        return connection.execute(
            "SELECT r.run_id, r.sensitivity, r.sigma FROM releases r JOIN runs USING (run_id) WHERE dataset_id = ?",
            (dataset_id,),
        ).fetchall()

    @staticmethod
    def _budget(connection: sqlite3.Connection, dataset_id: str) -> Budget | None:
        """The dataset's lifetime budget in force: the latest set."""
        row = connection.execute(
            "SELECT epsilon, delta FROM budgets WHERE dataset_id = ? ORDER BY id DESC LIMIT 1", (dataset_id,)
        ).fetchone()
        return None if row is None else Budget(*row)

    @staticmethod
    def _commitments(connection: sqlite3.Connection, dataset_id: str) -> dict[str, tuple[float, float]]:
        """Each run on the dataset: (the mu^2 it recorded, the mu^2 it reserves: its whole plan
        while it holds its reservation, else 0)."""
        rows = connection.execute(
            "SELECT runs.run_id, runs.plan_mu, runs.owner_host, runs.owner_pid, "
            "COALESCE(SUM((r.sensitivity / r.sigma) * (r.sensitivity / r.sigma)), 0) "
            "FROM runs LEFT JOIN releases r USING (run_id) WHERE runs.dataset_id = ? GROUP BY runs.run_id",
            (dataset_id,),
        ).fetchall()
        return {
            run_id: (recorded, plan_mu**2 if _holds_reservation(host, pid) else 0.0)
            for run_id, plan_mu, host, pid, recorded in rows
        }

    def _check_run_fits(self, connection: sqlite3.Connection, run: LedgerRun, what: str, when: str) -> None:
        """Refuse if ``run``, at the larger of its whole plan (while it holds its reservation) and
        what it recorded, takes its dataset past the budget in force with every other run."""
        budget = self._budget(connection, run.dataset_id)
        if budget is None:
            return
        commitments = self._commitments(connection, run.dataset_id)
        own = _committed_mu([commitments.pop(run.run_id)])
        check_lifetime_budget(run.dataset_id, _committed_mu(commitments.values()), own, budget, what, when)

    def check_admission(self, admission: Admission) -> None:
        """Refuse a run that ``open_run`` would refuse for its budget, before its private data is
        read even to fingerprint it (creating the ledger on first use).

        Raises:
            LedgerError: as ``open_run`` does, but for the fingerprint.
        """
        with self._transaction(create=True) as connection:
            self._admissible(connection, admission)

    def _admissible(self, connection: sqlite3.Connection, admission: Admission) -> Budget | None:
        """The dataset's budget with the run's setting applied, if the run's whole plan fits in it."""
        budget = _budget_in_force(admission, self._budget(connection, admission.dataset_id))
        if budget is not None:
            spent = _committed_mu(self._commitments(connection, admission.dataset_id).values())
            check_lifetime_budget(
                admission.dataset_id, spent, admission.plan.mu, budget, "this run", "before it reads the private data"
            )
        return budget

    def _check_fingerprint(self, connection: sqlite3.Connection, admission: Admission, fingerprint: str) -> None:
        """Refuse data the ledger knows under another dataset_id and new under this one, unless
        the run declares it a distinct dataset; warn of changed data under this one."""
        rows = connection.execute(
            "SELECT DISTINCT dataset_id, fingerprint = ? FROM runs WHERE dataset_id = ? OR fingerprint = ?",
            (fingerprint, admission.dataset_id, fingerprint),
        ).fetchall()
        own = [same for dataset_id, same in rows if dataset_id == admission.dataset_id]
        others = sorted({dataset_id for dataset_id, _ in rows if dataset_id != admission.dataset_id})
        if others and not any(own) and not admission.distinct_dataset:
            raise LedgerError(
                f"the private data of dataset {admission.dataset_id!r} is the data the privacy ledger knows as "
                f"{', '.join(map(repr, others))}: a new dataset_id does not start a new lifetime budget. Declare "
                f"dataset_id {others[0]!r} in the schema; only if this table is about other people (the same "
                "values, another dataset), set dp.distinct_dataset: true"
            )
        if own and not any(own):
            logger.warning(
                "The private data of dataset %r differs from its earlier runs': its lifetime spend still counts "
                "them all (declare another dataset_id only for data about other people)",
                admission.dataset_id,
            )

    def open_run(self, admission: Admission, *, fingerprint: str) -> LedgerRun:
        """Admit a new run: check that its whole plan fits in the dataset's lifetime budget with
        what every other run spent or reserved, then register it holding that whole plan, in
        one transaction. A budget the run's setting sets or lowers is stored with it.

        Args:
            admission: The run's request.
            fingerprint: The keyed fingerprint of its private data (``fingerprint``).

        Returns:
            The run's handle, with the dataset's budget in force.

        Raises:
            LedgerError: if the setting would raise the stored budget, the plan does not fit, or
                the data is another dataset's (see ``Admission.distinct_dataset``).
        """
        run_id = uuid.uuid4().hex
        with self._transaction(create=True) as connection:
            budget = self._admissible(connection, admission)
            self._check_fingerprint(connection, admission, fingerprint)
            if budget is not None and budget != self._budget(connection, admission.dataset_id):
                self._store_budget(connection, admission.dataset_id, budget, f"dp.lifetime_epsilon of run {run_id}")
            plan = admission.plan
            connection.execute(
                "INSERT INTO runs (run_id, dataset_id, fingerprint, job, started_at, seeded, neighbouring, epsilon, "
                "delta, sigma, iterations, plan_mu, owner_host, owner_pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    admission.dataset_id,
                    fingerprint,
                    admission.job,
                    _now(),
                    int(plan.seed is not None),
                    plan.neighbours,
                    plan.epsilon,
                    plan.delta,
                    plan.sigma,
                    plan.iterations,
                    plan.mu,
                    _HOST,
                    os.getpid(),
                ),
            )
        return LedgerRun(
            path=self.setting,
            run_id=run_id,
            dataset_id=admission.dataset_id,
            lifetime_epsilon=None if budget is None else budget.epsilon,
            lifetime_delta=_lifetime_delta(admission, None) if budget is None else budget.delta,
        )

    @staticmethod
    def _store_budget(connection: sqlite3.Connection, dataset_id: str, budget: Budget, set_by: str) -> None:
        connection.execute(
            "INSERT INTO budgets (dataset_id, epsilon, delta, set_at, set_by) VALUES (?, ?, ?, ?, ?)",
            (dataset_id, budget.epsilon, budget.delta, _now(), set_by),
        )

    def resume_run(self, run: LedgerRun) -> None:
        """Take back a resumed run's reservation (this process holds it), if the run, at the
        larger of its whole plan and what it recorded, still fits in the budget in force.

        Raises:
            LedgerError: showing the epsilon spent, requested and remaining.
        """
        with self._transaction() as connection:
            connection.execute(
                "UPDATE runs SET owner_host = ?, owner_pid = ? WHERE run_id = ?", (_HOST, os.getpid(), run.run_id)
            )
            self._check_run_fits(connection, run, "the resumed run", "before it reads the private data")

    def give_back(self, run: LedgerRun) -> None:
        """End the reservation this process holds for a failed run: what the run did not release
        returns to its dataset (a resume takes it back if it still fits)."""
        with self._transaction() as connection:
            ended = connection.execute(
                "UPDATE runs SET owner_host = NULL, owner_pid = NULL WHERE run_id = ? AND owner_host = ? "
                "AND owner_pid = ?",
                (run.run_id, _HOST, os.getpid()),
            ).rowcount
        if ended:
            logger.info("Privacy ledger: run %s gave back the part of its budget it did not release", run.run_id)

    def record(self, run: LedgerRun, entries: Sequence[Entry], *, replacing: Entry | None = None) -> None:
        """Record releases about to be made, in one transaction, before their noise is drawn.

        Args:
            run: The run making them.
            entries: The releases.
            replacing: A reservation recorded earlier (the generator statistics as the plan
                granted them) that ``entries`` itemise; it is removed in the same transaction.

        Raises:
            LedgerError: if one of them is already recorded for this run (it would be released
                twice), or they would take the dataset past its lifetime budget (possible only if
                the budget was lowered, or the run's reservation ended, since it was admitted).
        """
        with self._transaction() as connection:
            if replacing is not None:
                connection.execute(
                    "DELETE FROM releases WHERE run_id = ? AND iteration = ? AND name = ?",
                    (run.run_id, replacing.iteration, replacing.name),
                )
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
            self._check_run_fits(connection, run, "this run with this release", "before its noise is drawn")

    def finish(self, run: LedgerRun) -> None:
        """Mark ``run`` finished (its release and privacy report are saved): it cannot be resumed,
        and it holds no more than it recorded."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE runs SET finished_at = ?, owner_host = NULL, owner_pid = NULL WHERE run_id = ?",
                (_now(), run.run_id),
            )

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
        """The spend of ``run``'s dataset over every run recorded on it, at the delta of its
        budget in force (else the run's lifetime delta)."""
        with self._transaction() as connection:
            rows = self._dataset_entries(connection, run.dataset_id)
            budget = self._budget(connection, run.dataset_id)
        mu = composed_mu((d, s) for _, d, s in rows)
        delta = run.lifetime_delta if budget is None else budget.delta
        return LifetimeSpend(
            dataset_id=run.dataset_id,
            mu=mu,
            epsilon=epsilon_of_mu(mu, delta),
            delta=delta,
            budget=None if budget is None else budget.epsilon,
            runs=len({run_id for run_id, _, _ in rows}),
        )

    def set_lifetime(self, dataset_id: str, epsilon: float, delta: float | None = None) -> Budget:
        """Set a dataset's lifetime budget, raising or lowering it: the data owner's command.

        Args:
            dataset_id: The dataset (it need not have run yet).
            epsilon: The new lifetime epsilon, > 0.
            delta: Its delta; ``None``: the stored budget's.

        Returns:
            The budget now in force.

        Raises:
            LedgerError: for an epsilon <= 0, a delta outside (0, 1), or no delta for a dataset
                that has no budget yet.
        """
        with self._transaction(create=True) as connection:
            stored = self._budget(connection, dataset_id)
            if delta is None and stored is None:
                raise LedgerError(f"dataset {dataset_id!r} has no lifetime budget yet: give its delta (--delta)")
            budget = Budget(epsilon, stored.delta if delta is None else delta)
            if not (budget.epsilon > 0 and math.isfinite(budget.epsilon) and 0 < budget.delta < 1):
                raise LedgerError(f"a lifetime budget needs epsilon > 0 and delta in (0, 1), got {budget}")
            self._store_budget(connection, dataset_id, budget, SET_LIFETIME_COMMAND)
        return budget

    def standings(self) -> list[Standing]:
        """Every dataset the ledger knows (a run or a budget), by id."""
        with self._transaction() as connection:
            datasets = [
                row[0]
                for row in connection.execute(
                    "SELECT dataset_id FROM runs UNION SELECT dataset_id FROM budgets ORDER BY dataset_id"
                )
            ]
            return [self._standing(connection, dataset_id) for dataset_id in datasets]

    def _standing(self, connection: sqlite3.Connection, dataset_id: str) -> Standing:
        commitments = self._commitments(connection, dataset_id).values()
        return Standing(
            dataset_id=dataset_id,
            budget=self._budget(connection, dataset_id),
            spent_mu=math.sqrt(math.fsum(recorded for recorded, _ in commitments)),
            committed_mu=_committed_mu(commitments),
            runs=len(commitments),
            in_progress=sum(reserved > 0 for _, reserved in commitments),
        )

    def history(self, dataset_id: str) -> tuple[list[RunSummary], list[BudgetChange]]:
        """A dataset's runs and lifetime budgets, oldest first."""
        with self._transaction() as connection:
            commitments = self._commitments(connection, dataset_id)
            runs = connection.execute(
                "SELECT run_id, job, started_at, epsilon, delta, finished_at IS NOT NULL FROM runs "
                "WHERE dataset_id = ? ORDER BY started_at",
                (dataset_id,),
            ).fetchall()
            budgets = connection.execute(
                "SELECT set_at, epsilon, delta, set_by FROM budgets WHERE dataset_id = ? ORDER BY id", (dataset_id,)
            ).fetchall()
        summaries = [
            RunSummary(
                run_id,
                job,
                started_at,
                epsilon,
                delta,
                math.sqrt(commitments[run_id][0]),
                _status(bool(finished), commitments[run_id][1] > 0),
            )
            for run_id, job, started_at, epsilon, delta, finished in runs
        ]
        return summaries, [
            BudgetChange(set_at, Budget(epsilon, delta), set_by) for set_at, epsilon, delta, set_by in budgets
        ]


def _committed_mu(commitments: Iterable[tuple[float, float]]) -> float:
    """The GDP mu of runs' commitments (recorded, reserved mu^2): each the larger of the two."""
    return math.sqrt(math.fsum(max(commitment) for commitment in commitments))


def _status(finished: bool, reserving: bool) -> str:
    if finished:
        return "finished"
    return "in progress" if reserving else "stopped"


def _lifetime_delta(admission: Admission, stored: Budget | None) -> float:
    """The delta of the run's lifetime setting: ``dp.lifetime_delta`` if a number, else (``auto``)
    the stored budget's, else the run's."""
    if admission.lifetime_delta is not None:
        return admission.lifetime_delta
    return admission.plan.delta if stored is None else stored.delta


def _budget_in_force(admission: Admission, stored: Budget | None) -> Budget | None:
    """The dataset's budget once the run's ``dp.lifetime_epsilon`` applies: it sets a first
    budget or lowers the stored one (compared in GDP mu), and never raises it.

    Raises:
        LedgerError: if the setting would raise the stored budget.
    """
    if admission.lifetime_epsilon is None:
        return stored
    requested = Budget(admission.lifetime_epsilon, _lifetime_delta(admission, stored))
    if stored is None or requested.mu < stored.mu:
        return requested
    if requested.mu > stored.mu * (1.0 + _BUDGET_TOLERANCE):
        raise LedgerError(
            f"dataset {admission.dataset_id!r} has a lifetime budget of epsilon {stored.epsilon:g} at delta "
            f"{stored.delta:.3g} in the privacy ledger; dp.lifetime_epsilon {requested.epsilon:g} (at delta "
            f"{requested.delta:.3g}) would raise it, which only the data owner does: {SET_LIFETIME_COMMAND} "
            f"{admission.dataset_id} {requested.epsilon:g}. Leave dp.lifetime_epsilon out to run under the stored budget"
        )
    return stored


_BUDGET_TOLERANCE = 1e-9
"""Relative slack of the budget check, for rounding only (a run planned to end exactly at the
budget is admitted)."""


def check_lifetime_budget(
    dataset_id: str, spent_mu: float, requested_mu: float, budget: Budget, what: str, when: str
) -> None:
    """Refuse a spend that would take a dataset past its lifetime budget.

    The spends compose exactly in Gaussian DP: ``mu_total**2 = spent_mu**2 + requested_mu**2``.

    Args:
        dataset_id: The dataset, for the message.
        spent_mu: The GDP mu of everything else on it: the other runs' releases, and the whole
            plan of each run in progress.
        requested_mu: The GDP mu of the new spend.
        budget: The dataset's lifetime budget.
        what: The new spend, for the message (``"this run"``).
        when: What it is refused before, for the message (``"before its noise is drawn"``).

    Raises:
        LedgerError: showing the epsilon spent, requested and remaining (all at the budget's delta).
    """
    delta = budget.delta
    total = epsilon_of_mu(math.hypot(spent_mu, requested_mu), delta)
    if total <= budget.epsilon * (1.0 + _BUDGET_TOLERANCE):
        return
    remaining_mu = math.sqrt(max(budget.mu**2 - spent_mu**2, 0.0))
    raise LedgerError(
        f"dataset {dataset_id!r} would pass its lifetime budget (epsilon {budget.epsilon:g} at delta {delta:.3g}): "
        f"spent or reserved by other runs {epsilon_of_mu(spent_mu, delta):.4g}, {what} requests "
        f"{epsilon_of_mu(requested_mu, delta):.4g}, together {total:.4g}; remaining {epsilon_of_mu(remaining_mu, delta):.4g}. "
        f"{what.capitalize()} is refused {when}: lower dp.epsilon, wait for the runs in progress, or, if the data "
        f"owner agrees, raise the budget: {SET_LIFETIME_COMMAND} {dataset_id} EPSILON"
    )

"""``dp-synth ledger``: the privacy ledger's datasets, their lifetime budgets and their history.

    dp-synth ledger show                                    every dataset: budget, spent, reserved
    dp-synth ledger history DATASET                         its budgets and runs, oldest first
    dp-synth ledger set-lifetime DATASET EPSILON [--delta D]   set, raise or lower its budget

A dataset's lifetime budget belongs to it: a run's ``dp.lifetime_epsilon`` sets it the first time
and may lower it; only ``set-lifetime``, the data owner's command, raises it. Each command takes
``--ledger PATH`` (default: ``dp.ledger``'s default, relative to the Kedro project). Public
quantities only: no fingerprint, no key.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dp_synth.pe.accounting import epsilon_of_mu
from dp_synth.pe.ledger import Budget, LedgerError, PrivacyLedger, Standing
from dp_synth.pe.settings import PrivacySettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dp-synth", description="dp-synth's commands besides kedro's")
    groups = parser.add_subparsers(dest="group", required=True)
    ledger = groups.add_parser("ledger", help="the privacy ledger: datasets, lifetime budgets, history")
    ledger.add_argument(
        "--ledger",
        default=PrivacySettings.model_fields["ledger"].default,
        help="the ledger file, relative to the Kedro project (default: %(default)s)",
    )
    commands = ledger.add_subparsers(dest="command", required=True)
    commands.add_parser("show", help="the ledger's id and every dataset: budget, spent, reserved, runs")
    history = commands.add_parser("history", help="a dataset's budgets and runs, oldest first")
    history.add_argument("dataset", help="the dataset_id")
    set_lifetime = commands.add_parser("set-lifetime", help="set, raise or lower a dataset's lifetime budget")
    set_lifetime.add_argument("dataset", help="the dataset_id")
    set_lifetime.add_argument("epsilon", type=float, help="the most epsilon the dataset may ever spend")
    set_lifetime.add_argument("--delta", type=float, help="the delta it is stated at (default: the stored budget's)")
    return parser


def _budget_text(budget: Budget | None) -> str:
    return (
        "no lifetime budget"
        if budget is None
        else f"lifetime budget epsilon {budget.epsilon:g} at delta {budget.delta:.3g}"
    )


def show_lines(ledger: PrivacyLedger) -> list[str]:
    """The ledger's id and one line per dataset: its budget, spend, reservations and runs."""
    lines = [f"privacy ledger {ledger.path} (id {ledger.identity()})"]
    lines += [_standing_line(standing) for standing in ledger.standings()] or ["no dataset yet"]
    return lines


def _standing_line(standing: Standing) -> str:
    line = f"{standing.dataset_id}: {_budget_text(standing.budget)}; {standing.runs} run(s), spent mu {standing.spent_mu:.4g}"
    if standing.budget is not None:
        delta = standing.budget.delta
        spent, committed = epsilon_of_mu(standing.spent_mu, delta), epsilon_of_mu(standing.committed_mu, delta)
        line += f" (epsilon {spent:.4g})"
        if standing.in_progress:
            line += f"; with the {standing.in_progress} run(s) in progress at their whole plan, {committed:.4g}"
    return line


def history_lines(ledger: PrivacyLedger, dataset_id: str) -> list[str]:
    """A dataset's budget changes and runs, oldest first."""
    runs, budgets = ledger.history(dataset_id)
    if not runs and not budgets:
        return [f"the ledger knows no dataset {dataset_id!r}"]
    events = [(change.set_at, f"{_budget_text(change.budget)}, set by {change.set_by}") for change in budgets]
    events += [
        (
            run.started_at,
            f"run {run.run_id} ({run.job}): planned epsilon {run.epsilon:g} at delta {run.delta:.3g}, released "
            f"epsilon {epsilon_of_mu(run.released_mu, run.delta):.4g}; {run.status}",
        )
        for run in runs
    ]
    return [f"{time}  {text}" for time, text in sorted(events)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run a ``dp-synth`` command; the exit status (1 for a ledger error, said on stderr)."""
    arguments = _parser().parse_args(argv)
    ledger = PrivacyLedger(arguments.ledger)
    try:
        if arguments.command == "show":
            lines = show_lines(ledger)
        elif arguments.command == "history":
            lines = history_lines(ledger, arguments.dataset)
        else:
            budget = ledger.set_lifetime(arguments.dataset, arguments.epsilon, arguments.delta)
            lines = [f"{arguments.dataset}: {_budget_text(budget)}"]
    except LedgerError as error:
        print(f"dp-synth ledger: {error}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

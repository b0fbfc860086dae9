"""The empirical privacy audit (``make audit``), in two parts.

1. **Each release mechanism in isolation** (``audit_mechanisms``): every Gaussian release of the
   default Adult plan, at the noise that plan gives it, with a worst-case canary and enough
   trials to estimate its Gaussian-DP mu within a tenth of the claim or better; each estimate
   must lie within 25% of the claimed mu = sensitivity / sigma, and the same audit with the noise
   halved (``accounting.noise_scaled_for_audit``, test only) must fail every mechanism. This is
   the part with power: an error of a few tens of percent in a noise or a sensitivity fails it.

2. **The whole run, end to end** (below): a lower bound on epsilon from a membership test on a
   canary record. Each trial fits ``TabularSynthesizer`` on a small table, with one canary
   record added (a member trial) or not (a non-member trial), chosen at random, and counts the
   rows of a released sample that carry one of the canary's two categories, which only the
   canary has. A member is guessed when the count reaches a threshold. Any (epsilon, delta)-DP
   mechanism keeps the test's false positive and false negative rates on the curve
   ``FPR + exp(epsilon) FNR >= 1 - delta`` (and the same swapped) (Kairouz, Oh and Viswanath,
   2015), so Clopper-Pearson upper bounds on both rates give a lower bound on epsilon at
   confidence ``1 - alpha`` (Jagielski, Ullman and Oprea, 2020; Nasr et al., 2021). The threshold
   is chosen on the first half of the trials and the bound computed on the second, so that
   choosing it costs no confidence (or it is fixed in advance, and every trial measures the
   test). It has little power against a release with noise (its bound stays near 0 at epsilon 1),
   but it reads the released rows, so it would see a private path that bypasses the audited
   mechanisms altogether; ``--noise-off`` (``accounting.noise_off_for_audit``, test only) shows
   it does see a release that is not private.

    python benchmarks/audit.py                     # what make audit runs
    python benchmarks/audit.py --precision 0.2 --trials 0 --workers 1   # the mechanisms, quickly
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per worker: the workers are the parallelism

import numpy as np
import pandas as pd
from scipy.stats import beta

CANARY = {"age": 90, "score": 1.0, "colour": "violet", "shape": "star", "label": "yes"}
"""The canary record: its colour and shape are declared in the schema (public) and held by no
other record."""
DELTA = 1e-5
ROWS = 200
SAMPLE_ROWS = 2000
"""Rows of each trial's release the test reads."""


def audit_table(rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The audit's private table (no canary), its canary and their public schema."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "score": rng.uniform(0.0, 0.9, rows).round(3),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "shape": rng.choice(["circle", "square"], rows),
            "label": rng.choice(["no", "yes"], rows),
        }
    )
    schema = {
        "dataset_id": "privacy-audit",
        "label_column": "label",
        "public_row_count": rows,
        "columns": {
            "age": {"type": "integer", "min": 18, "max": 90},
            "score": {"type": "float", "min": 0.0, "max": 1.0},
            "colour": {"type": "categorical", "categories": ["red", "green", "blue", CANARY["colour"]]},
            "shape": {"type": "categorical", "categories": ["circle", "square", CANARY["shape"]]},
            "label": {"type": "categorical", "categories": ["no", "yes"]},
        },
    }
    return table, pd.DataFrame([CANARY]), schema


@dataclass(frozen=True)
class TrialSpec:
    """One trial: whether the canary is in, and the run's settings.

    Attributes:
        member: Whether the canary record is in the private table.
        epsilon: The run's epsilon (at ``DELTA``).
        noise: ``False``: the DP noise is switched off (test only).
        ledger: The privacy ledger the run records to.
    """

    member: bool
    epsilon: float
    noise: bool
    ledger: str


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Only errors are logged: a trial's log (its privacy report, Kedro's progress) is noise here."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def run_trial(spec: TrialSpec) -> tuple[int, float]:
    """Fit on the table (with the canary if a member trial) and release ``SAMPLE_ROWS`` rows.

    Returns:
        The test statistic (released rows with the canary's colour or shape) and the epsilon
        the run's privacy report states.
    """
    from dp_synth import TabularSynthesizer
    from dp_synth.pe.accounting import noise_off_for_audit

    table, canary, schema = audit_table(ROWS, seed=0)
    private = pd.concat([table, canary], ignore_index=True) if spec.member else table
    synthesizer = TabularSynthesizer(
        epsilon=spec.epsilon,
        delta=DELTA,
        dp={"ledger": spec.ledger},
        pe={"candidates_per_bin": 1},
        release={"rows": SAMPLE_ROWS},
    )
    with quiet(), contextlib.nullcontext() if spec.noise else noise_off_for_audit():
        synthesizer.fit(private, schema)
        released = synthesizer.sample()
    marked = (released["colour"] == CANARY["colour"]) | (released["shape"] == CANARY["shape"])
    return int(marked.sum()), synthesizer.privacy_report.epsilon


def clopper_pearson_upper(errors: int, trials: int, alpha: float) -> float:
    """One-sided Clopper-Pearson upper bound, at confidence ``1 - alpha``, on an error rate."""
    return 1.0 if errors >= trials else float(beta.ppf(1.0 - alpha, errors + 1, trials - errors))


def epsilon_lower_bound(
    false_positives: int, non_members: int, false_negatives: int, members: int, delta: float, alpha: float
) -> float:
    """The epsilon that a test with these errors proves, at confidence ``1 - alpha`` (each
    rate's bound at ``alpha / 2``), for an (epsilon, delta)-DP mechanism; 0 if none."""
    fpr = clopper_pearson_upper(false_positives, non_members, alpha / 2)
    fnr = clopper_pearson_upper(false_negatives, members, alpha / 2)
    bounds = [(1.0 - delta - fnr) / fpr, (1.0 - delta - fpr) / fnr]
    return max([0.0, *(math.log(bound) for bound in bounds if bound > 0)])


def errors(statistics: np.ndarray, members: np.ndarray, threshold: int) -> tuple[int, int, int, int]:
    """(false positives, non-members, false negatives, members) of guessing "member" at
    ``statistic >= threshold``."""
    guessed = statistics >= threshold
    return (
        int(np.sum(guessed & ~members)),
        int(np.sum(~members)),
        int(np.sum(~guessed & members)),
        int(np.sum(members)),
    )


def choose_threshold(statistics: np.ndarray, members: np.ndarray, alpha: float) -> int:
    """The threshold on the count of marked rows whose test proves the largest epsilon on these
    (calibration) trials."""
    candidates = np.unique(np.r_[statistics, statistics + 1])
    return int(
        max(
            candidates, key=lambda threshold: epsilon_lower_bound(*errors(statistics, members, threshold), DELTA, alpha)
        )
    )


@dataclass(frozen=True)
class AuditResult:
    """An audit's outcome.

    Attributes:
        claimed_epsilon: The epsilon the runs were configured for (at ``delta``).
        reported_epsilon: The epsilon their privacy reports state (huge with the noise off).
        delta: Their delta.
        noise: Whether the DP noise was on.
        trials: Trials run (half chose the threshold, unless it was fixed in advance).
        threshold: The chosen threshold on the count of rows with the canary's categories.
        false_positive_rate: On the measured half.
        false_negative_rate: On the measured half.
        epsilon_lower_bound: The empirical lower bound, at ``confidence``.
        confidence: ``1 - alpha``.
        seconds: Wall time.
    """

    claimed_epsilon: float
    reported_epsilon: float
    delta: float
    noise: bool
    trials: int
    threshold: int
    false_positive_rate: float
    false_negative_rate: float
    epsilon_lower_bound: float
    confidence: float
    seconds: float


def audit(
    epsilon: float,
    trials: int,
    *,
    noise: bool = True,
    threshold: int | None = None,
    workers: int = 2,
    alpha: float = 0.05,
    seed: int = 0,
) -> AuditResult:
    """Run ``trials`` trials, half of them members in a random order, and bound epsilon from below.

    Args:
        epsilon: The runs' epsilon, at ``DELTA``.
        trials: Number of runs.
        noise: ``False`` switches the DP noise off (test only).
        threshold: The test's threshold, fixed in advance (every trial measures the test);
            ``None``: chosen on the first half of the trials, the second half measures.
        workers: Processes running trials in parallel (1: in this process).
        alpha: One minus the bound's confidence.
        seed: Seed of the members' order (the DP noise is fresh OS entropy).
    """
    start = time.perf_counter()
    members = np.random.default_rng(seed).permutation(np.arange(trials) % 2 == 0)
    with tempfile.TemporaryDirectory() as folder:
        specs = [TrialSpec(bool(member), epsilon, noise, str(Path(folder) / "ledger.db")) for member in members]
        if workers == 1:
            outcomes = [run_trial(spec) for spec in specs]
        else:
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                outcomes = pool.map(run_trial, specs, chunksize=4)
    statistics = np.array([statistic for statistic, _ in outcomes])
    measured = 0
    if threshold is None:
        measured = trials // 2
        threshold = choose_threshold(statistics[:measured], members[:measured], alpha)
    false_positives, non_members, false_negatives, in_trials = errors(
        statistics[measured:], members[measured:], threshold
    )
    return AuditResult(
        claimed_epsilon=epsilon,
        reported_epsilon=outcomes[0][1],
        delta=DELTA,
        noise=noise,
        trials=trials,
        threshold=threshold,
        false_positive_rate=false_positives / max(non_members, 1),
        false_negative_rate=false_negatives / max(in_trials, 1),
        epsilon_lower_bound=epsilon_lower_bound(false_positives, non_members, false_negatives, in_trials, DELTA, alpha),
        confidence=1.0 - alpha,
        seconds=time.perf_counter() - start,
    )


def audit_release_mechanisms(precision: float, workers: int) -> bool:
    """Part 1: every release of the default Adult plan at its noise, then with the noise halved.

    Returns:
        Whether every mechanism passed at its noise and failed with the noise halved.
    """
    import audit_mechanisms as mechanisms

    with quiet():
        run = mechanisms.default_run()
        table = mechanisms.adult_table(run)
        built, _ = mechanisms.build_mechanisms(run, table)
        claimed = mechanisms.plan_releases(run)
        halved = mechanisms.plan_releases(run, noise_factor=0.5)
    print(
        f"Default Adult plan: epsilon {run.plan.epsilon:g}, delta {run.plan.delta:.3g}, T = {run.plan.iterations}; "
        f"trials for a 95% interval of +-{precision:g} x the claimed mu (+-{2 * precision:g} with the noise halved); "
        f"pass: estimate within {mechanisms.TOLERANCE:.0%} of the claim",
        flush=True,
    )
    healthy = True
    for factor, releases, share in ((1.0, claimed, precision), (0.5, halved, 2 * precision)):
        start = time.perf_counter()
        audits = mechanisms.audit_mechanisms(built, claimed, releases, precision=share, workers=workers)
        print("\n".join(mechanisms.table_lines(audits, factor)), flush=True)
        print(f"({time.perf_counter() - start:.0f} s)", flush=True)
        if factor == 1.0 and not all(audit.passed for audit in audits):
            print("PRIVACY BUG: a mechanism's measured mu is not within tolerance of its claim")
            healthy = False
        if factor != 1.0 and any(audit.passed for audit in audits):
            print("AUDIT WITHOUT POWER: a mechanism with half its noise passed")
            healthy = False
    return healthy


def main(argv: Sequence[str] | None = None) -> None:
    """``make audit``: every release mechanism of the default Adult plan (at its noise and with it
    halved), then the whole run's membership audit at epsilon 1 (noise on, then off)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--precision", type=float, default=0.05, help="mechanisms: interval half-width as a share of the claimed mu"
    )
    parser.add_argument("--epsilon", type=float, action="append", help="whole run: epsilon (repeatable)")
    parser.add_argument("--trials", type=int, default=1000, help="whole run: runs with the noise on (0: skip)")
    parser.add_argument("--trials-off", type=int, default=200, help="whole run: runs with the noise off")
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args(argv)
    start = time.perf_counter()
    healthy = audit_release_mechanisms(arguments.precision, arguments.workers)
    if arguments.trials > 0:
        epsilons = arguments.epsilon or [1.0]
        settings = [
            *((epsilon, True, arguments.trials) for epsilon in epsilons),
            (epsilons[0], False, arguments.trials_off),
        ]
        print(
            f"\nWhole run, membership of a canary record:\n{'noise':>6} {'claimed eps':>12} {'reported eps':>13} "
            f"{'trials':>7} {'threshold':>9} {'FPR':>6} {'FNR':>6} {'eps lower bound (95%)':>22} {'s':>5}"
        )
        for epsilon, noise, trials in settings:
            result = audit(epsilon, trials, noise=noise, workers=arguments.workers)
            print(
                f"{'on' if noise else 'OFF':>6} {epsilon:>12g} {result.reported_epsilon:>13.4g} {result.trials:>7} "
                f"{result.threshold:>9} {result.false_positive_rate:>6.3f} {result.false_negative_rate:>6.3f} "
                f"{result.epsilon_lower_bound:>22.3f} {result.seconds:>5.0f}",
                flush=True,
            )
            if noise and result.epsilon_lower_bound > epsilon:
                print(f"PRIVACY BUG: the empirical lower bound exceeds the claimed epsilon: {asdict(result)}")
                healthy = False
    print(f"\nAudit {'passed' if healthy else 'FAILED'} in {time.perf_counter() - start:.0f} s")
    if not healthy:
        sys.exit(1)


if __name__ == "__main__":
    main()

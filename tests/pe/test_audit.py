"""The empirical privacy audit (``make audit``) in small: it finds no epsilon above the claim of
the DP release, and it does see a release whose noise is switched off (test only)."""

from __future__ import annotations

import importlib
import math
import sys

import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def audit():
    sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
    try:
        yield importlib.import_module("audit")
    finally:
        sys.path.remove(str(PROJECT_ROOT / "benchmarks"))


def test_the_lower_bound_follows_the_tests_errors(audit):
    # No error in n trials: the rate's 97.5% Clopper-Pearson bound is 1 - 0.025^(1/n).
    assert audit.clopper_pearson_upper(0, 15, 0.025) == pytest.approx(1 - 0.025 ** (1 / 15))
    perfect = audit.epsilon_lower_bound(0, 15, 0, 15, delta=0.0, alpha=0.05)
    assert perfect == pytest.approx(math.log((1 - (1 - 0.025 ** (1 / 15))) / (1 - 0.025 ** (1 / 15))))
    assert audit.epsilon_lower_bound(8, 15, 7, 15, delta=1e-5, alpha=0.05) == 0.0  # a coin toss proves nothing


def test_the_audit_sees_a_release_without_noise_and_nothing_above_the_claim_with_it(audit):
    """Membership of one canary record, 30 runs each, the test's threshold fixed in advance."""
    off = audit.audit(1.0, 30, noise=False, threshold=1, workers=1)
    assert off.false_positive_rate == 0 and off.false_negative_rate == 0
    assert off.epsilon_lower_bound > 1.2  # the claim, epsilon = 1, is disproved
    assert off.reported_epsilon > 1e6  # the ledger and the report state what such a run spends

    on = audit.audit(1.0, 30, noise=True, threshold=1, workers=1)
    assert on.epsilon_lower_bound <= on.claimed_epsilon == 1.0
    assert on.reported_epsilon == pytest.approx(1.0)

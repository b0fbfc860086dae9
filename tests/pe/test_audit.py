"""The empirical privacy audit (``make audit``) in small: every release mechanism of the default
Adult plan is audited with a worst-case canary, its estimated mu matches its claim and doubles
with the noise halved; the whole-run membership audit finds no epsilon above the claim of the DP
release, and it does see a release whose noise is switched off (test only)."""

from __future__ import annotations

import importlib
import math
import sys

import numpy as np
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


@pytest.fixture(scope="module")
def mechanisms(audit):
    """The default Adult plan's releases (claimed, and with the noise halved), each counted on
    Adult's training rows with and without the canary."""
    import audit_mechanisms

    with audit.quiet():  # restored after: later tests read the log
        run = audit_mechanisms.default_run()
        built, _ = audit_mechanisms.build_mechanisms(run, audit_mechanisms.adult_table(run))
    return audit_mechanisms, built, audit_mechanisms.plan_releases(run), audit_mechanisms.plan_releases(run, 0.5)


def test_the_estimator_recovers_mu_from_two_gaussian_samples(audit):
    from audit_mechanisms import estimate_mu, trials_for

    rng = np.random.default_rng(0)
    sigma, mu, trials = 30.0, 0.12, trials_for(0.12, precision=0.1)
    estimate = estimate_mu(rng.normal(0.0, sigma, trials), rng.normal(mu * sigma, sigma, trials))
    assert estimate.low < mu < estimate.high
    assert estimate.high - estimate.low == pytest.approx(0.2 * mu, rel=0.02)  # the interval asked for
    assert estimate.sigma == pytest.approx(sigma, rel=0.01)


def test_every_release_of_the_default_plan_is_audited_with_a_worst_case_canary(mechanisms):
    _, built, claimed, halved = mechanisms
    assert [mechanism.name for mechanism in built] == list(claimed)
    assert {"class counts", "nearest-neighbour histogram", "generator statistics: cliques"} <= set(claimed)
    for mechanism in built:  # the canary moves every release by its full claimed sensitivity
        assert np.linalg.norm(mechanism.change) == pytest.approx(claimed[mechanism.name].sensitivity, rel=1e-9)
        assert halved[mechanism.name].sigma == pytest.approx(claimed[mechanism.name].sigma / 2)
        assert halved[mechanism.name].sensitivity == claimed[mechanism.name].sensitivity


def test_the_mechanism_audit_passes_at_the_plans_noise_and_fails_with_it_halved(mechanisms):
    """A few thousand trials of three releases (the noise seeded, so the test is repeatable)."""
    module, built, claimed, halved = mechanisms
    cheap = [
        m for m in built if m.name in {"class counts", "generator statistics: one_way", "generator statistics: edges"}
    ]
    on = module.audit_mechanisms(cheap, claimed, claimed, precision=0.15, seed=0)
    assert all(audit.passed for audit in on), module.table_lines(on, 1.0)
    assert all(audit.estimate.low < audit.claimed_mu < audit.estimate.high for audit in on)
    off = module.audit_mechanisms(cheap, claimed, halved, precision=0.3, seed=1)
    assert not any(audit.passed for audit in off), module.table_lines(off, 0.5)
    assert all(audit.estimate.mu > 1.5 * audit.claimed_mu for audit in off)


def test_the_audits_noise_hook_scales_every_sigma_and_only_inside_it():
    from dp_synth.pe.accounting import calibrate, noise_scaled_for_audit

    def plan():
        return calibrate(1.0, 1e-6, 2, preliminary_releases=1, statistics_sensitivity=2.0, statistics_share=0.5)

    with noise_scaled_for_audit(0.5):
        halved = plan()
    assert halved.sigma == pytest.approx(plan().sigma / 2)
    assert halved.statistics_sigma == pytest.approx(plan().statistics_sigma / 2)
    assert halved.mu == pytest.approx(2 * plan().mu)  # the report states what such a plan spends
    with pytest.raises(ValueError, match="> 0"), noise_scaled_for_audit(0.0):
        pass

"""Calibration of the Gaussian noise, checked against Google's dp-accounting PLD accountant."""

from __future__ import annotations

import math

import dp_accounting
import pytest
from dp_accounting.pld import pld_privacy_accountant

from dp_synth.pe.accounting import (
    PrivacyConfigError,
    calibrate,
    default_delta,
    gdp_delta,
    gdp_epsilon_for,
    gdp_mu_for,
)


def pld_epsilon(sigma: float, releases: int, delta: float) -> float:
    accountant = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4)
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier=sigma), count=releases)
    return accountant.get_epsilon(delta)


@pytest.mark.parametrize(
    ("epsilon", "delta", "iterations", "preliminary"),
    [(1.0, default_delta(32561), 30, 1), (0.5, 1e-5, 10, 0), (4.0, 1e-6, 1, 1), (10.0, 1e-5, 50, 1)],
)
def test_calibration_matches_independent_pld_accountant(epsilon, delta, iterations, preliminary):
    plan = calibrate(epsilon, delta, iterations, preliminary)
    assert plan.releases == iterations + preliminary
    # The run spends the whole budget: not more (privacy bug) and not visibly less (wasted utility).
    assert pld_epsilon(plan.sigma, plan.releases, delta) == pytest.approx(epsilon, rel=1e-3)
    assert pld_epsilon(plan.sigma * 0.99, plan.releases, delta) > epsilon


def test_epsilon_spent_after_each_iteration_matches_pld():
    plan = calibrate(1.0, 1e-5, 8, preliminary_releases=1)
    spent = [plan.epsilon_spent(t) for t in range(plan.iterations + 1)]
    assert spent == sorted(spent)
    assert spent[-1] == pytest.approx(1.0, rel=1e-6)
    for t in (0, 3, 8):
        assert spent[t] == pytest.approx(pld_epsilon(plan.sigma, t + 1, 1e-5), rel=2e-3)
    with pytest.raises(ValueError):
        plan.epsilon_spent(9)


def test_gdp_curve_round_trips():
    mu = gdp_mu_for(1.0, 1e-5)
    assert gdp_delta(1.0, mu) == pytest.approx(1e-5, rel=1e-9)
    assert gdp_epsilon_for(mu, 1e-5) == pytest.approx(1.0, rel=1e-9)


def test_sigma_scales_with_the_square_root_of_the_releases():
    assert math.isclose(calibrate(1.0, 1e-5, 16).sigma, 2 * calibrate(1.0, 1e-5, 4).sigma, rel_tol=1e-12)


@pytest.mark.parametrize(
    ("epsilon", "delta", "iterations", "message"),
    [
        (0.0, 1e-5, 10, "epsilon"),
        (-1.0, 1e-5, 10, "epsilon"),
        (float("nan"), 1e-5, 10, "epsilon"),
        (1.0, 0.0, 10, "delta"),
        (1.0, 1.0, 10, "delta"),
        (1.0, 1.5, 10, "delta"),
        (1.0, 1e-5, 0, "iterations"),
    ],
)
def test_bad_budget_is_rejected(epsilon, delta, iterations, message):
    with pytest.raises(PrivacyConfigError, match=message):
        calibrate(epsilon, delta, iterations)


def test_seeded_noise_is_reproducible_and_unseeded_is_fresh():
    seeded = calibrate(1.0, 1e-5, 3, seed=7)
    assert seeded.noise_generator(1, 0).normal() == seeded.noise_generator(1, 0).normal()
    assert seeded.noise_generator(1, 0).normal() != seeded.noise_generator(2, 0).normal()
    fresh = calibrate(1.0, 1e-5, 3)
    assert fresh.noise_generator(1, 0).normal() != fresh.noise_generator(1, 0).normal()


@pytest.mark.parametrize(("share", "sensitivity"), [(0.25, math.sqrt(14)), (0.5, 3.0)])
def test_generator_statistics_share_is_accounted_exactly(share, sensitivity):
    plan = calibrate(1.0, 1e-5, 10, 1, statistics_sensitivity=sensitivity, statistics_share=share)
    accountant = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4)
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier=plan.sigma), count=plan.releases)
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier=plan.statistics_sigma / sensitivity))
    assert accountant.get_epsilon(1e-5) == pytest.approx(1.0, rel=1e-3)
    assert plan.statistics_mu_squared == pytest.approx(share * plan.mu**2)
    assert plan.epsilon_spent(0) > 0  # the statistics are released before the first iteration
    assert plan.epsilon_spent(10) == pytest.approx(1.0, rel=1e-6)


def test_statistics_share_needs_statistics_and_the_reverse():
    with pytest.raises(PrivacyConfigError, match="budget share"):
        calibrate(1.0, 1e-5, 3, statistics_share=0.2)
    with pytest.raises(PrivacyConfigError, match="budget share"):
        calibrate(1.0, 1e-5, 3, statistics_sensitivity=2.0)

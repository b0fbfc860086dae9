"""The noise of the DP releases: OpenDP's secure discrete Gaussian unless seeded, numpy's when seeded."""

from __future__ import annotations

import math

import numpy as np
import pytest
from dp_accounting.pld import privacy_loss_distribution as pld

from dp_synth.pe import noise
from dp_synth.pe.accounting import Stream, calibrate
from dp_synth.pe.histogram import release


@pytest.fixture
def secure_calls(monkeypatch):
    """Every call of the secure sampler, which still draws: (size, sigma, sensitivity)."""
    calls, real = [], noise.secure_gaussian

    def spy(values, sigma, sensitivity):
        calls.append((len(values), sigma, sensitivity))
        return real(values, sigma, sensitivity)

    monkeypatch.setattr(noise, "secure_gaussian", spy)
    return calls


@pytest.fixture
def no_secure_noise(monkeypatch):
    def refuse(values, sigma, sensitivity):
        raise AssertionError("a seeded release drew secure noise")

    monkeypatch.setattr(noise, "secure_gaussian", refuse)


def test_an_unseeded_plan_draws_its_noise_from_opendp(secure_calls):
    plan = calibrate(1.0, 1e-5, 3, preliminary_releases=1)
    source = plan.noise_source(1, Stream.HISTOGRAM_NOISE)
    assert source.secure
    votes = np.array([3.0, 0.5, 7.25, 0.0])
    histogram = release(votes, plan.sigma, 1.0, source, plan.count_sensitivity)
    assert secure_calls == [(4, plan.sigma, 1.0)]
    assert histogram.noisy.shape == votes.shape and not np.array_equal(histogram.noisy, votes)


def test_a_seeded_plan_draws_numpys_noise_as_before(no_secure_noise):
    plan = calibrate(1.0, 1e-5, 3, seed=7)
    source = plan.noise_source(2, Stream.HISTOGRAM_NOISE)
    assert not source.secure
    votes = np.arange(5, dtype=np.float64)
    before = votes + np.random.default_rng(np.random.SeedSequence([7, 2, 0])).normal(0.0, plan.sigma, size=5)
    assert np.array_equal(release(votes, plan.sigma, 0.0, source).noisy, before)
    arrays = [np.ones((2, 3)), np.zeros(4)]
    rng = np.random.default_rng(3)
    expected = [arrays[0] + rng.normal(0.0, 2.0, size=(2, 3)), arrays[1] + rng.normal(0.0, 2.0, size=4)]
    drawn = noise.as_source(np.random.default_rng(3)).add_each(arrays, 2.0, 1.0)  # a bare generator: numpy's
    assert all(np.array_equal(a, b) for a, b in zip(drawn, expected, strict=True))


def test_secure_noise_of_a_release_in_several_arrays_is_one_draw_split_back(secure_calls):
    arrays = [np.full((2, 3), 100.0), np.full(4, -50.0), np.zeros(0)]
    drawn = noise.NoiseSource(np.random.default_rng(), secure=True).add_each(arrays, 0.5, 2.0)
    assert secure_calls == [(10, 0.5, 2.0)]
    assert noise.NoiseSource(np.random.default_rng(), secure=True).add_each([], 0.5, 2.0) == ()  # nothing to release
    assert [a.shape for a in drawn] == [(2, 3), (4,), (0,)]
    assert np.all(np.abs(drawn[0] - 100.0) < 5) and np.all(np.abs(drawn[1] + 50.0) < 5)


def test_secure_noise_has_the_plan_variance_and_lies_on_its_lattice():
    sigma, counts = 2.5, np.arange(100_000, dtype=np.float64) % 40  # integer counts
    noisy = noise.secure_gaussian(counts, sigma, 1.0)
    error = noisy - counts
    # The sample variance of 100,000 draws is within 3% of sigma^2 (its standard error is 0.45%).
    assert error.var() == pytest.approx(sigma**2, rel=0.03)
    assert abs(error.mean()) < 4 * sigma / math.sqrt(len(counts))
    lattice = noisy * 2.0**-noise.GRANULARITY_EXPONENT  # every output is a multiple of 2**-30
    assert np.array_equal(lattice, np.round(lattice))


@pytest.mark.parametrize(("sigma", "sensitivity", "size"), [(11.8, 1.0, 50_000), (0.85, math.sqrt(2), 3), (1e-6, 1, 7)])
def test_opendp_certifies_the_zcdp_of_a_continuous_gaussian_of_the_same_sigma(sigma, sensitivity, size):
    """Canonne, Kamath and Steinke (2020): the discrete Gaussian's rho is (sensitivity/sigma)^2/2;
    OpenDP's map adds the rounding to its lattice, paid by a scale raised by as much."""
    granted = (sensitivity / sigma) ** 2 / 2
    charged = noise.secure_measurement(sigma, sensitivity, size).map(float(sensitivity))
    assert granted * (1 - 1e-6) <= charged <= granted


def test_a_run_of_secure_releases_is_the_plans_zcdp():
    """The rho OpenDP charges each release of a plan adds up to at most mu^2 / 2."""
    plan = calibrate(1.0, 1e-5, 5, preliminary_releases=1, statistics_sensitivity=math.sqrt(14), statistics_share=0.5)
    releases = [(plan.count_sensitivity, plan.sigma, 2)] * plan.releases
    releases.append((plan.statistics_sensitivity, plan.statistics_sigma, 400))
    rho = sum(noise.secure_measurement(sigma, d, size).map(d) for d, sigma, size in releases)
    assert plan.mu**2 / 2 * (1 - 1e-6) <= rho <= plan.mu**2 / 2


def test_the_lattice_noise_spends_the_reported_epsilon_on_dp_accounting():
    """The plan is calibrated in Gaussian DP, exact for continuous noise. dp-accounting's exact PLD
    of the discrete Gaussian on a lattice of 1/32 of the sensitivity is within 1e-4 of the target
    (on 2**-30 it is closer still); on the integers it is not, which is why counts are not noised
    on Z."""
    epsilon, delta = 4.0, 1e-5
    plan = calibrate(epsilon, delta, 2, preliminary_releases=1)

    def spent(lattice: int) -> float:
        mechanism = pld.from_discrete_gaussian_mechanism(
            plan.sigma * lattice, sensitivity=lattice, value_discretization_interval=1e-5
        )
        return mechanism.self_compose(plan.releases).get_epsilon_for_delta(delta)

    assert spent(32) == pytest.approx(epsilon, abs=1e-4)
    assert spent(1) > epsilon + 0.01


def test_every_statistics_release_draws_secure_noise_for_its_whole_sensitivity(secure_calls):
    from dp_synth.modalities.tabular.statistics import Release, gaussian_release

    tables = [np.array([[4.0, 1.0], [0.0, 2.0]]), np.array([3.0, 3.0, 1.0])]
    secure = noise.NoiseSource(np.random.default_rng(), secure=True)
    measurement = gaussian_release("edges", [(0, 1), (1, 2)], tables, Release(sigma=1.5, sensitivity=2.0), secure)
    assert secure_calls == [(7, 1.5, 2.0)]
    assert [array.shape for array in measurement.noisy] == [(2, 2), (3,)]


def test_secure_noise_refuses_values_it_cannot_release():
    with pytest.raises(ValueError, match="finite"):
        noise.secure_gaussian(np.array([1.0, np.nan]), 1.0, 1.0)
    with pytest.raises(ValueError, match="sigma > 0"):
        noise.secure_gaussian(np.array([1.0]), 0.0, 1.0)
    assert noise.secure_gaussian(np.zeros(0), 1.0, 1.0).shape == (0,)

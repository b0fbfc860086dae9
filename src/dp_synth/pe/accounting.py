"""Privacy accounting for Private Evolution with Gaussian noise.

Every DP release in a PE run is a Gaussian mechanism: one noisy nearest-neighbour histogram
per iteration and (optionally) one noisy class count, each with L2 sensitivity 1 and noise
``sigma``, plus (optionally) one release of generator statistics with sensitivity ``s`` and
noise ``sigma_s``. Gaussian mechanisms compose exactly in Gaussian DP (Dong, Roth and Su,
2019): ``r`` sensitivity-1 releases and the statistics give mu-GDP with
``mu**2 = r / sigma**2 + (s / sigma_s)**2``, and mu-GDP implies (epsilon, delta)-DP for every
pair on the curve

    delta(epsilon) = Phi(-epsilon / mu + mu / 2) - exp(epsilon) * Phi(-epsilon / mu - mu / 2).

The plan is calibrated before the run from the target (epsilon, delta) and the number of
releases, which the caller takes from the DAG that actually runs.

Sensitivities are stated for the neighbouring relation in force (``dp.neighbouring``):
``add_remove`` (one record added or removed, the default) or ``replace_one`` (one record
replaced by another). A modality states its add/remove sensitivities; the plan derives the
replace-one ones (``count_sensitivity``, ``statistics_sensitivity_factor``). With a declared
privacy unit (user-level DP), a record is a unit's whole contribution, at most
``rows_per_unit`` rows (``pe.contribution``), and every sensitivity grows by that factor.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import numpy as np
from scipy.special import log_ndtr, ndtr

from dp_synth.pe.noise import NoiseSource

_BISECTION_STEPS = 200

Neighbouring = Literal["add_remove", "replace_one"]
"""Which datasets are neighbours: one record added or removed, or one record replaced."""
NEIGHBOURING_RELATIONS: dict[str, str] = {"add_remove": "add/remove one record", "replace_one": "replace one record"}
"""How reports name each relation."""

AUDIT_NOISE_SCALE = 1e-6
"""The factor ``noise_off_for_audit`` multiplies every sigma by: no noise, in effect."""
_NOISE_SCALE: ContextVar[float] = ContextVar("dp_synth_audit_noise_scale", default=1.0)


class Stream(IntEnum):
    """The plan's random streams (``GaussianPrivacyPlan.noise_generator(iteration, stream)``)."""

    HISTOGRAM_NOISE = 0
    SELECTION = 1
    GENERATION = 2
    STATISTICS_NOISE = 3
    BINNING = 4
    CONTRIBUTION = 5
    FEWSHOT_GROUPS = 6


class PrivacyConfigError(ValueError):
    """Raised when a privacy setting (epsilon, delta, number of releases) is invalid."""


def gdp_delta(epsilon: float, mu: float) -> float:
    """Return the smallest delta such that mu-GDP implies (epsilon, delta)-DP.

    Args:
        epsilon: Target epsilon, >= 0.
        mu: GDP parameter, > 0.

    Returns:
        The delta on the mu-GDP privacy profile at ``epsilon``.
    """
    first = ndtr(-epsilon / mu + mu / 2.0)
    second = math.exp(epsilon + log_ndtr(-epsilon / mu - mu / 2.0))
    return float(max(first - second, 0.0))


def gdp_mu_for(epsilon: float, delta: float) -> float:
    """Return the largest mu such that mu-GDP implies (epsilon, delta)-DP.

    ``gdp_delta`` increases with mu, so the answer is found by bisection.
    """
    low, high = 0.0, 1.0
    while gdp_delta(epsilon, high) < delta:
        high *= 2.0
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2.0
        if gdp_delta(epsilon, middle) < delta:
            low = middle
        else:
            high = middle
    return low


def gdp_epsilon_for(mu: float, delta: float) -> float:
    """Return the smallest epsilon such that mu-GDP implies (epsilon, delta)-DP."""
    if gdp_delta(0.0, mu) <= delta:
        return 0.0
    low, high = 0.0, 1.0
    while gdp_delta(high, mu) > delta:
        high *= 2.0
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2.0
        if gdp_delta(middle, mu) > delta:
            low = middle
        else:
            high = middle
    return high


def epsilon_of_mu(mu: float, delta: float) -> float:
    """``gdp_epsilon_for``, with 0 for mu = 0 (nothing released)."""
    return gdp_epsilon_for(mu, delta) if mu > 0 else 0.0


def group_epsilon(mu: float, rows: int, delta: float) -> float:
    """The epsilon at ``delta`` that a mu-GDP run gives ``rows`` records together (a person's
    rows under a per-row guarantee): their sensitivity is ``rows`` times one record's, so the
    run is (``rows`` x mu)-GDP for them (group privacy, exact for Gaussian mechanisms)."""
    return epsilon_of_mu(rows * mu, delta)


def composed_mu(releases: Iterable[tuple[float, float]]) -> float:
    """The GDP mu of Gaussian releases composed: ``sqrt(sum (sensitivity / sigma)^2)``.

    Args:
        releases: ``(sensitivity, sigma)`` of each release.
    """
    return math.sqrt(math.fsum((sensitivity / sigma) ** 2 for sensitivity, sigma in releases))


def count_sensitivity(neighbouring: Neighbouring, rows_per_unit: int = 1) -> float:
    """L2 sensitivity of a release to which one row adds a non-negative vector of L2 norm
    at most 1: the class count (1 in its class's cell) and the nearest-neighbour histogram
    (k votes of 1/sqrt(k), or their sums over bins, inside its class).

    Adding or removing the row moves the release by that vector: 1. Replacing it by another
    moves it by ``w - v``, with ``|w - v|^2 = |v|^2 + |w|^2 - 2 <v, w> <= 2`` since both are
    non-negative: sqrt(2), reached when the two rows share no cell. A privacy unit of at most
    ``rows_per_unit`` rows adds the sum of their vectors, of norm at most ``rows_per_unit``
    (all in one cell), so both bounds grow by that factor (the same argument holds for the sums).
    """
    return (1.0 if neighbouring == "add_remove" else math.sqrt(2.0)) * rows_per_unit


def statistics_sensitivity_factor(neighbouring: Neighbouring, rows_per_unit: int = 1) -> float:
    """How much a generator statistic's add/remove sensitivity D of one row grows under the
    relation, for a privacy unit of at most ``rows_per_unit`` rows (triangle inequality over its
    rows: ``rows_per_unit`` x D for its addition or removal).

    A replacement is a removal and an addition, so any release moves by at most 2 D
    (triangle inequality). That bound is reached by the L1 statistics (the tabular generator's
    dependence and interaction scores: the record leaves a cell below its prediction and enters
    one above it, 1 + 1), so it is applied to every statistic: the generator does not say which
    of its releases are plain counts (those would need only sqrt(2) D).
    """
    return (1.0 if neighbouring == "add_remove" else 2.0) * rows_per_unit


def vote_sensitivity(neighbouring: Neighbouring, rows_per_unit: int = 1) -> float:
    """L2 sensitivity of a sum of probability vectors, one per group of a fixed, public set of
    groups, where each record is drawn into one group independently of the others (the DP
    few-shot vote: ``modalities.text.fewshot``).

    A group's vector ``p`` (its prompt's next-token distribution, or that distribution restricted
    to public candidate tokens) is non-negative with ``sum(p) <= 1``, so two such vectors differ
    by ``|p - q|^2 = |p|^2 + |q|^2 - 2 <p, q> <= 2``: at most sqrt(2) per group whose prompt changes.
    Adding or removing a record changes the prompt of its group only (the other records keep
    their groups), and the changes of distinct groups are orthogonal blocks or add up inside one
    sum: with ``g`` groups changed, ``|sum of changes| <= sqrt(2 g)`` by the triangle inequality
    within a block and Pythagoras across blocks (the worst case, ``g`` blocks, is the bound). A
    replaced record leaves its group and enters another (of its new class): ``g = 2``. A privacy
    unit of at most ``rows_per_unit`` rows changes at most that many groups, twice that when replaced.
    """
    groups = rows_per_unit * (1 if neighbouring == "add_remove" else 2)
    return math.sqrt(2.0 * groups)


@contextmanager
def noise_scaled_for_audit(factor: float) -> Iterator[None]:
    """TEST ONLY: plans calibrated inside this block multiply every sigma by ``factor``.

    The ledger and the privacy report state the true epsilon of such a plan. It exists to show
    that the empirical audit (``make audit``) detects a release with less noise than its
    budget claims (``factor`` 0.5: every mechanism's mu doubled); no setting reaches it.
    """
    if not factor > 0:
        raise ValueError(f"the audit's noise factor must be > 0, got {factor!r}")
    token = _NOISE_SCALE.set(float(factor))
    try:
        yield
    finally:
        _NOISE_SCALE.reset(token)


def noise_off_for_audit() -> AbstractContextManager[None]:
    """TEST ONLY: plans calibrated inside this block add (in effect) no noise.

    Every sigma is multiplied by ``AUDIT_NOISE_SCALE`` (``noise_scaled_for_audit``), so the
    ledger and the privacy report state the true, enormous, epsilon of such a run. It exists to
    show that the whole-run audit (``make audit``) detects a release that is not private.
    """
    return noise_scaled_for_audit(AUDIT_NOISE_SCALE)


def validate_budget(epsilon: float, delta: float) -> None:
    """Raise ``PrivacyConfigError`` unless epsilon > 0 and 0 < delta < 1."""
    if not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) or epsilon <= 0:
        raise PrivacyConfigError(f"dp.epsilon must be a finite number > 0, got {epsilon!r}")
    if not isinstance(delta, (int, float)) or not 0.0 < delta < 1.0:
        raise PrivacyConfigError(f"dp.delta must be in the open interval (0, 1), got {delta!r}")


def default_delta(row_count: int) -> float:
    """Return the customary delta = 1 / (n ln n) for a dataset of ``row_count`` rows."""
    if row_count < 3:
        raise PrivacyConfigError(
            f"delta = 1/(n ln n) needs a public row count n >= 3, got {row_count}; set dp.delta explicitly"
        )
    return 1.0 / (row_count * math.log(row_count))


@dataclass(frozen=True)
class GaussianPrivacyPlan:
    """The calibrated noise of a run and the budget it spends.

    A run makes, in order: an optional release of generator statistics (Gaussian mechanisms
    with L2 sensitivity ``statistics_sensitivity`` and noise ``statistics_sigma`` together),
    ``preliminary_releases`` count releases (the DP class count), then one histogram per
    iteration with noise ``sigma``; the count and histogram releases have L2 sensitivity
    ``count_sensitivity`` (1 under add/remove). Together they are mu-GDP with
    ``mu**2 = releases * (count_sensitivity / sigma)**2 + (statistics_sensitivity / statistics_sigma)**2``.

    Attributes:
        epsilon: Total epsilon of the run (all releases).
        delta: Total delta of the run.
        sigma: Noise of every count release (class count, histograms).
        releases: Number of count releases: preliminary ones plus one per iteration.
        preliminary_releases: Count releases made before the first iteration.
        seed: Seed of the noise generators (numpy's, reproducible, not private), or ``None``
            for secure noise (``noise_source``) and fresh OS entropy for the other draws.
        statistics_sigma: Noise of the generator-statistics release (``inf`` when there is none).
        statistics_sensitivity: L2 sensitivity of that release under ``neighbouring`` (0 when
            there is none).
        neighbouring: The neighbouring relation every sensitivity is stated for.
        rows_per_unit: The most rows of one privacy unit the data holds; every sensitivity is
            stated for a whole unit.
        privacy_unit: The column naming each record's person (user-level DP), or ``None``: a
            unit is a row, and a person with k rows is protected as ``group_epsilon`` says.
        release_sensitivity: The L2 sensitivity of every release under ``neighbouring``, for a
            mechanism that states its own (the DP few-shot vote, ``vote_sensitivity``); ``None``:
            ``count_sensitivity``, a count's or a histogram's.
    """

    epsilon: float
    delta: float
    sigma: float
    releases: int
    preliminary_releases: int
    seed: int | None
    statistics_sigma: float = math.inf
    statistics_sensitivity: float = 0.0
    neighbouring: Neighbouring = "add_remove"
    rows_per_unit: int = 1
    privacy_unit: str | None = None
    release_sensitivity: float | None = None

    @property
    def count_sensitivity(self) -> float:
        """L2 sensitivity of every release of sigma ``sigma`` under ``neighbouring``, for a whole
        privacy unit: the class count's and each histogram's, or ``release_sensitivity``."""
        if self.release_sensitivity is not None:
            return self.release_sensitivity
        return count_sensitivity(self.neighbouring, self.rows_per_unit)

    @property
    def neighbours(self) -> str:
        """The neighbouring relation in words, with the privacy unit and its bound if declared."""
        relation = NEIGHBOURING_RELATIONS[self.neighbouring]
        if self.privacy_unit is None:
            return f"{relation} (a row; not a person's rows together)"
        return (
            f"{relation.replace('record', 'person')}: all rows of one {self.privacy_unit!r}, at most "
            f"{self.rows_per_unit} read per person"
        )

    @property
    def statistics_mu_squared(self) -> float:
        """The generator-statistics release's share of mu squared (0 when there is none)."""
        return (self.statistics_sensitivity / self.statistics_sigma) ** 2

    @property
    def mu(self) -> float:
        """GDP parameter of the whole run."""
        return math.sqrt(self.releases * self.count_sensitivity**2 / self.sigma**2 + self.statistics_mu_squared)

    @property
    def iterations(self) -> int:
        """Number of PE iterations (histogram releases) the plan pays for."""
        return self.releases - self.preliminary_releases

    def epsilon_spent(self, iterations_done: int) -> float:
        """Epsilon spent (at this plan's delta) after ``iterations_done`` histograms.

        The statistics and preliminary releases are counted from the start.
        """
        if not 0 <= iterations_done <= self.iterations:
            raise ValueError(f"iterations_done must be in [0, {self.iterations}], got {iterations_done}")
        counts = self.preliminary_releases + iterations_done
        mu_squared = counts * self.count_sensitivity**2 / self.sigma**2 + self.statistics_mu_squared
        if mu_squared == 0:
            return 0.0
        return gdp_epsilon_for(math.sqrt(mu_squared), self.delta)

    def group_epsilon(self, rows: int) -> float:
        """The epsilon (at this plan's delta) that protects ``rows`` records together
        (``group_epsilon``)."""
        return group_epsilon(self.mu, rows, self.delta)

    def noise_generator(self, *stream: int) -> np.random.Generator:
        """Return the generator of one noise stream.

        With a seed, streams are reproducible and independent of each other; without one,
        every call draws fresh OS entropy.
        """
        if self.seed is None:
            return np.random.default_rng()
        return np.random.default_rng(np.random.SeedSequence([self.seed, *stream]))

    def noise_source(self, *stream: int) -> NoiseSource:
        """Return the source of one stream's Gaussian noise: without a seed, OpenDP's secure,
        floating-point-safe sampler (``noise.secure_gaussian``); with one, the stream's numpy
        generator (reproducible, not private). Either carries the stream's numpy generator for
        its other draws."""
        return NoiseSource(self.noise_generator(*stream), secure=self.seed is None)


def calibrate(
    epsilon: float,
    delta: float,
    iterations: int,
    preliminary_releases: int = 0,
    seed: int | None = None,
    statistics_sensitivity: float = 0.0,
    statistics_share: float = 0.0,
    neighbouring: Neighbouring = "add_remove",
    rows_per_unit: int = 1,
    privacy_unit: str | None = None,
    release_sensitivity: float | None = None,
) -> GaussianPrivacyPlan:
    """Calibrate the noise so the whole run is exactly (epsilon, delta)-DP.

    Args:
        epsilon: Total epsilon, > 0.
        delta: Total delta, in (0, 1).
        iterations: Number of PE iterations T (one histogram each), >= 1.
        preliminary_releases: Extra sensitivity-1 releases before the loop (1 for a DP class count).
        seed: Seed for the noise generators (numpy's), or ``None`` for secure noise
            (``GaussianPrivacyPlan.noise_source``) and OS entropy for the other draws.
        statistics_sensitivity: Add/remove L2 sensitivity of the generator-statistics release,
            or 0 for none.
        statistics_share: Share of mu squared spent on that release, in [0, 1); 0 when there is none.
        neighbouring: The neighbouring relation; under ``replace_one`` every sensitivity grows
            (``count_sensitivity``, ``statistics_sensitivity_factor``) and the noise with it.
        rows_per_unit: The most rows of one privacy unit (``pe.contribution``); every
            sensitivity, and the noise, grows by this factor.
        privacy_unit: The column naming each record's person, if declared.
        release_sensitivity: The L2 sensitivity of each release under ``neighbouring`` and for a
            whole privacy unit, for a mechanism that is not a count (``vote_sensitivity``);
            ``None``: ``count_sensitivity``.

    Returns:
        The calibrated plan.
    """
    validate_budget(epsilon, delta)
    if not isinstance(iterations, int) or iterations < 1:
        raise PrivacyConfigError(f"the number of iterations T must be >= 1, got {iterations!r}")
    if not 0.0 <= statistics_share < 1.0:
        raise PrivacyConfigError(f"the generator statistics' budget share must be in [0, 1), got {statistics_share!r}")
    if (statistics_share > 0) != (statistics_sensitivity > 0):
        raise PrivacyConfigError(
            "a budget share for generator statistics needs a generator that measures statistics, "
            f"and the reverse (share {statistics_share}, sensitivity {statistics_sensitivity})"
        )
    releases = iterations + preliminary_releases
    mu = gdp_mu_for(epsilon, delta)
    if not isinstance(rows_per_unit, int) or rows_per_unit < 1:
        raise PrivacyConfigError(f"the most rows per privacy unit must be an integer >= 1, got {rows_per_unit!r}")
    statistics_sensitivity *= statistics_sensitivity_factor(neighbouring, rows_per_unit)
    statistics_sigma = statistics_sensitivity / (math.sqrt(statistics_share) * mu) if statistics_share > 0 else math.inf
    if release_sensitivity is not None and not release_sensitivity > 0:
        raise PrivacyConfigError(f"a release's sensitivity must be > 0, got {release_sensitivity!r}")
    sensitivity = count_sensitivity(neighbouring, rows_per_unit) if release_sensitivity is None else release_sensitivity
    sigma = sensitivity * math.sqrt(releases) / (math.sqrt(1.0 - statistics_share) * mu)
    scale = _NOISE_SCALE.get()
    return GaussianPrivacyPlan(
        epsilon=float(epsilon),
        delta=float(delta),
        sigma=sigma * scale,
        releases=releases,
        preliminary_releases=preliminary_releases,
        seed=seed,
        statistics_sigma=statistics_sigma * scale,
        statistics_sensitivity=float(statistics_sensitivity),
        neighbouring=neighbouring,
        rows_per_unit=rows_per_unit,
        privacy_unit=privacy_unit,
        release_sensitivity=release_sensitivity,
    )

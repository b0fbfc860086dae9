"""The privacy report of a run: every Gaussian release and what the run spent, public quantities only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from dp_synth.pe.accounting import GaussianPrivacyPlan

NEIGHBOURING_RELATION = "add/remove one record"
ACCOUNTANT = "Gaussian DP, exact composition of Gaussian mechanisms (Dong, Roth and Su, 2019)"


@dataclass(frozen=True)
class ReleaseRecord:
    """One kind of Gaussian release of the run.

    Attributes:
        name: What was measured (``class counts``, ``histogram``, a generator statistic).
        sensitivity: Its L2 sensitivity under the neighbouring relation.
        sigma: The standard deviation of its Gaussian noise.
        count: How many such releases the run makes (one histogram per iteration).
    """

    name: str
    sensitivity: float
    sigma: float
    count: int = 1


@dataclass(frozen=True)
class PrivacyReport:
    """What a run released and spent. It holds only public quantities, so it may travel with
    the synthetic data.

    Attributes:
        epsilon: The run's epsilon at ``delta``.
        delta: The run's delta.
        mu: The run's Gaussian DP parameter (all releases composed).
        seeded: Whether the noise came from a seed: such a run is reproducible, and not private
            against anyone who knows the seed.
        releases: Every release, in the order the run makes them.
        neighbouring: The neighbouring relation the sensitivities are stated for.
        accountant: How the releases compose.
    """

    epsilon: float
    delta: float
    mu: float
    seeded: bool
    releases: tuple[ReleaseRecord, ...]
    neighbouring: str = NEIGHBOURING_RELATION
    accountant: str = ACCOUNTANT

    def to_dict(self) -> dict:
        """A JSON-ready dictionary."""
        return asdict(self)

    def __str__(self) -> str:
        lines = [
            f"(epsilon={self.epsilon:.4g}, delta={self.delta:.3g})-DP, mu={self.mu:.4g}; "
            f"neighbours: {self.neighbouring}; {self.accountant}",
            "noise SEEDED: reproducible, NOT private against anyone who knows the seed"
            if self.seeded
            else "noise from OS entropy",
        ]
        lines += [
            f"  {release.count} x {release.name}: sensitivity {release.sensitivity:.4g}, sigma {release.sigma:.4g}"
            for release in self.releases
        ]
        return "\n".join(lines)


def privacy_report(plan: GaussianPrivacyPlan, statistics: Sequence[ReleaseRecord] = ()) -> PrivacyReport:
    """The report of a run calibrated by ``plan``.

    Args:
        plan: The run's privacy plan.
        statistics: The generator's statistics releases, each with its own sensitivity and sigma
            (their mu squared adds up to the plan's statistics share); empty: the plan's single
            statistics release, if it has one.
    """
    releases = list(statistics)
    if not releases and plan.statistics_sensitivity > 0:
        releases.append(ReleaseRecord("generator statistics", plan.statistics_sensitivity, plan.statistics_sigma))
    if plan.preliminary_releases:
        releases.append(ReleaseRecord("class counts", 1.0, plan.sigma, plan.preliminary_releases))
    releases.append(ReleaseRecord("nearest-neighbour histogram", 1.0, plan.sigma, plan.iterations))
    return PrivacyReport(
        epsilon=plan.epsilon_spent(plan.iterations),
        delta=plan.delta,
        mu=plan.mu,
        seeded=plan.seed is not None,
        releases=tuple(releases),
    )

"""The privacy report of a run: every Gaussian release and what the run and its dataset spent,
public quantities only, so it may travel with the synthetic data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dp_synth.pe.accounting import GaussianPrivacyPlan, composed_mu, epsilon_of_mu, group_epsilon
from dp_synth.pe.ledger import Entry, LifetimeSpend

PERSON_ROWS = (2, 5, 10, 30)
"""Rows of one person for which a per-row report states the person's epsilon."""
ACCOUNTANT = "Gaussian DP, exact composition of Gaussian mechanisms (Dong, Roth and Su, 2019)"


@dataclass(frozen=True)
class ReleaseRecord:
    """One kind of Gaussian release of the run.

    Attributes:
        name: What was measured (``class counts``, ``nearest-neighbour histogram``, a generator
            statistic).
        sensitivity: Its L2 sensitivity under the neighbouring relation.
        sigma: The standard deviation of its Gaussian noise.
        count: How many such releases the run made (one histogram per iteration).
    """

    name: str
    sensitivity: float
    sigma: float
    count: int = 1


@dataclass(frozen=True)
class PrivacyReport:
    """What a run released and spent, and its dataset's lifetime spend.

    Attributes:
        epsilon: The run's epsilon at ``delta``: its releases composed.
        delta: The run's delta.
        mu: The run's Gaussian DP parameter (all its releases composed).
        seeded: Whether the noise came from a seed: such a run is reproducible, and NOT
            private against anyone who knows the seed.
        releases: Every release, in the order the run made them.
        neighbouring: The neighbouring relation the sensitivities are stated for.
        accountant: How the releases compose.
        run_id: The run's id in the privacy ledger.
        lifetime: The dataset's spend over all its runs.
        person_epsilons: Without a privacy unit (a per-row guarantee), the epsilon that protects
            a person's k rows together, for a few k (``GaussianPrivacyPlan.group_epsilon``);
            empty when the schema declares a privacy unit.
    """

    epsilon: float
    delta: float
    mu: float
    seeded: bool
    releases: tuple[ReleaseRecord, ...]
    neighbouring: str
    accountant: str
    run_id: str
    lifetime: LifetimeSpend
    person_epsilons: Mapping[str, float] = field(default_factory=dict)

    @property
    def private(self) -> bool:
        """Whether the run is differentially private: not with a seed anyone may know."""
        return not self.seeded

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (with ``private``)."""
        return {**asdict(self), "private": self.private}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyReport:
        """The report ``to_dict`` wrote."""
        fields = {key: value for key, value in data.items() if key != "private"}
        return cls(
            **{
                **fields,
                "releases": tuple(ReleaseRecord(**release) for release in data["releases"]),
                "lifetime": LifetimeSpend(**data["lifetime"]),
            }
        )

    def __str__(self) -> str:
        lifetime = self.lifetime
        budget = "no lifetime budget" if lifetime.budget is None else f"lifetime budget {lifetime.budget:g}"
        lines = [
            f"(epsilon={self.epsilon:.4g}, delta={self.delta:.3g})-DP, mu={self.mu:.4g}; "
            f"neighbours: {self.neighbouring}; {self.accountant}",
            "noise SEEDED: reproducible, NOT private against anyone who knows the seed"
            if self.seeded
            else "noise secure: OpenDP's discrete Gaussian, from a cryptographically secure source",
            f"dataset {lifetime.dataset_id!r}: lifetime epsilon {lifetime.epsilon:.4g} at delta {lifetime.delta:.3g} "
            f"over {lifetime.runs} run(s) ({budget}); ledger run {self.run_id}",
        ]
        if self.person_epsilons:
            lines.append(
                "per row: a person with k rows gets "
                + ", ".join(f"epsilon {epsilon:.3g} at k = {rows}" for rows, epsilon in self.person_epsilons.items())
            )
        lines += [
            f"  {release.count} x {release.name}: sensitivity {release.sensitivity:.4g}, sigma {release.sigma:.4g}"
            for release in self.releases
        ]
        return "\n".join(lines)


def grouped_releases(entries: Sequence[Entry]) -> tuple[ReleaseRecord, ...]:
    """The releases of a run, those with the same name, sensitivity and sigma counted together
    (the histograms), in the order first made."""
    counts: dict[tuple[str, float, float], int] = {}
    for entry in entries:
        key = (entry.name, entry.sensitivity, entry.sigma)
        counts[key] = counts.get(key, 0) + 1
    return tuple(ReleaseRecord(name, sensitivity, sigma, count) for (name, sensitivity, sigma), count in counts.items())


def privacy_report(
    plan: GaussianPrivacyPlan, entries: Sequence[Entry], lifetime: LifetimeSpend, run_id: str
) -> PrivacyReport:
    """The report of a run from what the privacy ledger recorded for it.

    Args:
        plan: The run's privacy plan (its delta, relation and seed).
        entries: Every release the ledger recorded for the run.
        lifetime: The run's dataset's spend over the ledger.
        run_id: The run's id in the ledger.
    """
    mu = composed_mu((entry.sensitivity, entry.sigma) for entry in entries)
    return PrivacyReport(
        epsilon=epsilon_of_mu(mu, plan.delta),
        delta=plan.delta,
        mu=mu,
        seeded=plan.seed is not None,
        releases=grouped_releases(entries),
        neighbouring=plan.neighbours,
        accountant=ACCOUNTANT,
        run_id=run_id,
        lifetime=lifetime,
        person_epsilons={}
        if plan.privacy_unit
        else {str(rows): group_epsilon(mu, rows, plan.delta) for rows in PERSON_ROWS},
    )

"""Schedules of the variation degree over PE iterations, shared by every modality."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VariationSchedule:
    """Degree of variation over iterations: r(t) = r0 - (r0 - rf) (t / T) ** gamma.

    Each modality reads r(t) its own way: the share of table cells redrawn, of words masked
    for an LLM to fill, a sampling temperature, a simulator's perturbation width or a diffusion
    model's noising strength. r0 and rf may be in either order (a rising schedule is allowed).
    """

    r0: float = 0.5
    rf: float = 0.01
    gamma: float = 0.2

    def degree(self, iteration: int, iterations: int) -> float:
        """Return r(t) for iteration ``iteration`` of ``iterations``."""
        return self.r0 - (self.r0 - self.rf) * (iteration / iterations) ** self.gamma

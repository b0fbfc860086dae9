"""The small interfaces through which the PE loop sees a data type (table, text, image).

The loop itself (histogram, selection, schedule, accounting) is written once. A modality is a
generator (the random and variation APIs), an embedder, the public facts of its schema and a
cheap quality diagnostic. A generator that is steered by DP statistics of the private data
(the tabular one) also implements the optional ``UsesStatistics``; the loop pays for those
statistics only then. Populations are pandas DataFrames with one row per candidate and a label
column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from dp_synth.pe.noise import Noise
from dp_synth.pe.report import ReleaseRecord


class PublicFacts(Protocol):
    """What the loop may know without spending budget: declared in the public schema.

    Attributes:
        label_column: Name of the population column holding each candidate's class.
        classes: The public list of classes.
        public_row_count: The private row count, if declared public (for the default delta).
        public_class_proportions: Class proportions, if declared public.
        privacy_unit: The private file's column naming each record's person, if declared.
    """

    label_column: str
    classes: tuple[str, ...]
    public_row_count: int | None
    public_class_proportions: Mapping[str, float] | None
    privacy_unit: str | None


class Generator(Protocol):
    """The public generator: a random API and a variation API."""

    def random_population(self, class_sizes: Mapping[str, int], rng: np.random.Generator) -> pd.DataFrame:
        """Random API: ``class_sizes[c]`` fresh candidates of each class, from public knowledge only."""
        ...

    def vary(self, survivors: pd.DataFrame, iteration: int, iterations: int, rng: np.random.Generator) -> pd.DataFrame:
        """Variation API: one variation of every survivor, same label, degree set by the schedule."""
        ...


class Embedder(Protocol):
    """The embedding in which private records vote for their nearest candidates."""

    def embed(self, population: pd.DataFrame) -> np.ndarray:
        """Shape (rows, dimensions)."""
        ...


class QualityDiagnostic(Protocol):
    """A cheap per-iteration diagnostic against held-out data (for the owner, not a release)."""

    def summarise_reference(self, reference: pd.DataFrame) -> Any:
        """Precompute whatever ``quality`` compares populations with."""
        ...

    def quality(self, population: pd.DataFrame, reference_summary: Any) -> dict[str, float]:
        """Metrics of a population against the reference summary."""
        ...


class Modality(PublicFacts, Generator, Embedder, QualityDiagnostic, Protocol):
    """What Private Evolution needs from a data type."""


@runtime_checkable
class UsesStatistics(Protocol):
    """Optional: a generator steered by DP statistics of the private data.

    Attributes:
        statistics_sensitivity: L2 sensitivity of the release ``measure_statistics`` makes.
    """

    statistics_sensitivity: float

    def measure_statistics(self, private: pd.DataFrame, sigma: float, rng: Noise) -> Any:
        """Release statistics of ``private`` with Gaussian noise calibrated to ``sigma`` for
        sensitivity ``statistics_sensitivity``, drawn from ``rng`` (``noise.NoiseSource``: secure
        unless the run is seeded; a bare numpy generator: numpy's noise). The result is a DP release: it is saved, so a
        resumed run reuses it instead of measuring again."""
        ...

    def with_statistics(self, statistics: Any) -> Modality:
        """A copy whose generator uses the released statistics."""
        ...

    def reweight(self, population: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
        """Release weights of a population's candidates, adjusted to the statistics
        (post-processing only)."""
        ...

    def statistics_releases(self) -> tuple[ReleaseRecord, ...]:
        """Each Gaussian release of the statistics in use, with its sensitivity and sigma."""
        ...


class PublicSchemaFacts:
    """Mixin: the public facts the loop needs besides the label column, read from the
    modality's declared ``schema``."""

    schema: Any

    @property
    def classes(self) -> tuple[str, ...]:
        """The schema's declared classes."""
        return self.schema.classes

    @property
    def public_row_count(self) -> int | None:
        """The private record count, if the schema declares it public."""
        return self.schema.public_row_count

    @property
    def public_class_proportions(self) -> Mapping[str, float] | None:
        """Class proportions, if the schema declares them public."""
        return self.schema.class_proportions

    @property
    def privacy_unit(self) -> str | None:
        """The private file's column naming each record's person, if the schema declares one."""
        return self.schema.privacy_unit

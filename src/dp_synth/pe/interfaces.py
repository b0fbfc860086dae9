"""The small interface through which the PE loop sees a data type (table, text, image).

The loop itself (histogram, selection, schedule, accounting) is written once; a modality
supplies the public generator (random and variation APIs), the embedding, and a cheap quality
diagnostic. Populations are pandas DataFrames with one row per candidate and a label column.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd


class Modality(Protocol):
    """What Private Evolution needs from a data type.

    Attributes:
        label_column: Name of the population column holding each candidate's class.
        classes: The public list of classes.
        public_row_count: The private row count, if declared public (for the default delta).
        public_class_proportions: Class proportions, if declared public.
        statistics_sensitivity: L2 sensitivity of the DP statistics ``measure_statistics`` releases
            for the generator; 0 for a generator that uses none.
    """

    label_column: str
    classes: tuple[str, ...]
    public_row_count: int | None
    public_class_proportions: Mapping[str, float] | None
    statistics_sensitivity: float

    def measure_statistics(self, private: pd.DataFrame, sigma: float, rng: np.random.Generator) -> dict[str, Any]:
        """Release a statistic of ``private`` plus N(0, sigma^2) noise (a Gaussian mechanism of
        sensitivity ``statistics_sensitivity``) for the generator. The result is a DP release:
        it is saved, so a resumed run reuses it instead of measuring again."""
        ...

    def with_statistics(self, statistics: Mapping[str, Any]) -> Modality:
        """Return a copy whose generator uses released statistics (``measure_statistics``)."""
        ...

    def random_population(self, class_sizes: Mapping[str, int], rng: np.random.Generator) -> pd.DataFrame:
        """Random API: ``class_sizes[c]`` fresh candidates of each class, from public knowledge only."""
        ...

    def vary(
        self, survivors: pd.DataFrame, iteration: int, iterations: int, rng: np.random.Generator
    ) -> pd.DataFrame:
        """Variation API: one variation of every survivor, same label, degree set by the schedule."""
        ...

    def reweight(self, population: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
        """Release weights of a population's candidates, adjusted by post-processing only."""
        ...

    def embed(self, population: pd.DataFrame) -> np.ndarray:
        """Embedding used by the nearest-neighbour vote, shape (rows, dimensions)."""
        ...

    def summarise_reference(self, reference: pd.DataFrame) -> Any:
        """Precompute whatever ``quality`` compares populations with (held-out data)."""
        ...

    def quality(self, population: pd.DataFrame, reference_summary: Any) -> dict[str, float]:
        """Cheap diagnostic metrics of a population against the reference summary."""
        ...


class PublicSchemaFacts:
    """Mixin: the public facts the loop needs (``classes``, ``public_row_count``,
    ``public_class_proportions``), read from the modality's declared ``schema``."""

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


class WithoutStatistics:
    """Mixin of a generator that uses no DP statistics: the plan pays for none
    (``calibrate_privacy`` refuses a ``generator_share``), so these are never called."""

    @property
    def statistics_sensitivity(self) -> float:
        """No statistics, no sensitivity."""
        return 0.0

    def measure_statistics(self, private: pd.DataFrame, sigma: float, rng: np.random.Generator) -> dict[str, Any]:
        """Refuse: there is nothing to measure."""
        raise ValueError("this generator uses no DP statistics; set dp.generator_share to 0")

    def with_statistics(self, statistics: Mapping[str, Any]) -> WithoutStatistics:
        """Refuse, for the same reason."""
        raise ValueError("this generator uses no DP statistics; set dp.generator_share to 0")

"""The release: rows drawn from the last population by its released histogram (post-processing)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from dp_synth.pe.accounting import GaussianPrivacyPlan, Stream
from dp_synth.pe.interfaces import Modality
from dp_synth.pe.selection import allocate_class_sizes, sample_proportional


@dataclass(frozen=True)
class ReleaseBasis:
    """Everything a release draws from, all DP releases or public: drawing from it any number
    of times costs no privacy.

    Attributes:
        modality: The generator the loop used (with its released statistics, if any).
        candidates: The last iteration's population.
        weights: Each candidate's release weight: the last thresholded histogram, re-weighted by
            the modality to its DP statistics if it uses any.
        class_weights: The DP class counts (or the declared public proportions).
        plan: The run's privacy plan (its T and noise streams).
    """

    modality: Modality
    candidates: pd.DataFrame
    weights: np.ndarray
    class_weights: Mapping[str, float]
    plan: GaussianPrivacyPlan

    def default_rows(self) -> int:
        """The public row count if declared, else the DP class counts' total (already released)."""
        if self.modality.public_row_count is not None:
            return self.modality.public_row_count
        total = round(sum(max(weight, 0.0) for weight in self.class_weights.values()))
        return max(total, len(self.modality.classes))

    def rows(self, requested: int | Literal["auto"]) -> int:
        """The rows of a release: ``requested``, or with ``"auto"`` the ``default_rows``."""
        return self.default_rows() if requested == "auto" else requested

    def release_rng(self, draw: int) -> np.random.Generator:
        """The random stream of the ``draw``-th release from this basis (0: the job's own)."""
        return self.plan.noise_generator(self.plan.iterations + 1 + draw, Stream.SELECTION)

    def draw(self, rows: int, vary: bool | str, rng: np.random.Generator) -> pd.DataFrame:
        """``rows`` rows drawn per class (in proportion to the class weights), with replacement,
        in proportion to the release weights; with ``vary``, each (``"repeats"`` and
        ``"distinct"``: each that repeats a row drawn before it) passed once through the
        variation API at the last iteration's degree; with ``"distinct"``, a row that still
        repeats an earlier one (its variation failed) is then replaced by a candidate not
        released yet (``_without_repeats``)."""
        labels = self.candidates[self.modality.label_column].to_numpy()
        chosen = sample_proportional(self.weights, labels, allocate_class_sizes(rows, self.class_weights), rng)
        drawn = self.candidates.iloc[chosen].reset_index(drop=True)
        if vary in ("repeats", "distinct"):
            repeats = np.flatnonzero(pd.Series(chosen).duplicated().to_numpy())
            varied = self.modality.vary(drawn.iloc[repeats], self.plan.iterations, self.plan.iterations, rng)
            for column in drawn.columns:
                drawn.loc[repeats, column] = varied[column].to_numpy()
            return self._without_repeats(drawn, rng) if vary == "distinct" else drawn
        if vary:
            return self.modality.vary(drawn, self.plan.iterations, self.plan.iterations, rng)
        return drawn

    def _without_repeats(self, drawn: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        """``drawn`` with each row that repeats an earlier one replaced by a candidate of its
        class whose values are not released yet, drawn in proportion to the release weights
        (uniformly where they are all zero); a row stays repeated only when its class has no
        such candidate left."""
        label = self.modality.label_column
        columns = list(drawn.columns)
        candidate_keys = pd.util.hash_pandas_object(self.candidates[columns], index=False).to_numpy()
        released = set(pd.util.hash_pandas_object(drawn, index=False).to_numpy())
        candidate_labels = self.candidates[label].to_numpy()
        for position in np.flatnonzero(drawn.duplicated().to_numpy()):
            free = np.flatnonzero(
                (candidate_labels == drawn.at[position, label]) & ~np.isin(candidate_keys, list(released))
            )
            if free.size == 0:
                continue
            weights = np.clip(self.weights[free], 0.0, None)
            pick = free[rng.choice(free.size, p=weights / weights.sum() if weights.sum() > 0 else None)]
            drawn.loc[position, columns] = self.candidates.iloc[pick][columns].to_numpy()
            released.add(candidate_keys[pick])
        return drawn

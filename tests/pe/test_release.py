"""The release: drawn from the last histogram; repeats varied on request, post-processing only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dp_synth.pe.accounting import calibrate
from dp_synth.pe.release import ReleaseBasis
from tests.pipelines.test_pe_pipeline import PointModality


def basis() -> ReleaseBasis:
    candidates = pd.DataFrame({"x": [0.1, 0.2, 0.8, 0.9], "label": ["left", "left", "right", "right"]})
    plan = calibrate(epsilon=1.0, delta=1e-5, iterations=2, seed=0)
    return ReleaseBasis(PointModality(), candidates, np.array([3.0, 1.0, 1.0, 3.0]), {"left": 1.0, "right": 1.0}, plan)


def test_repeats_are_varied_and_first_draws_kept():
    release_basis = basis()
    plain = release_basis.draw(200, False, release_basis.release_rng(0))
    varied = release_basis.draw(200, "repeats", release_basis.release_rng(0))
    first = ~plain["x"].duplicated()
    assert plain[first].equals(varied[first])  # a row's first draw is released as drawn
    assert varied["x"].nunique() > 150 > plain["x"].nunique()  # repeats moved by the variation API
    assert (varied["label"] == plain["label"]).all() and varied["x"].dtype == np.float64


class FailingVariation(PointModality):
    """A variation API that returns every row unchanged (a model whose rewrites all fail)."""

    def vary(self, survivors, iteration, iterations, rng):
        return survivors.reset_index(drop=True)


def test_distinct_replaces_a_failed_variation_of_a_repeat_by_a_candidate_not_released_yet():
    candidates = pd.DataFrame({"x": np.linspace(0.0, 1.0, 12), "label": ["left"] * 6 + ["right"] * 6})
    weights = np.array([5.0, 0.0, 1.0, 1.0, 1.0, 1.0, 5.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    plan = calibrate(epsilon=1.0, delta=1e-5, iterations=2, seed=0)
    release_basis = ReleaseBasis(FailingVariation(), candidates, weights, {"left": 1.0, "right": 1.0}, plan)
    repeats = release_basis.draw(10, "repeats", release_basis.release_rng(0))
    distinct = release_basis.draw(10, "distinct", release_basis.release_rng(0))
    assert repeats["x"].duplicated().any()  # the failed variations left repeats
    assert not distinct["x"].duplicated().any() and (distinct["label"] == repeats["label"]).all()
    assert set(distinct["x"]) <= set(candidates["x"])
    many = release_basis.draw(16, "distinct", release_basis.release_rng(1))  # more rows than candidates
    assert many.groupby("label")["x"].nunique().to_dict() == {"left": 6, "right": 6}

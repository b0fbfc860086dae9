"""The released tabular statistics: every Gaussian release is recorded, the record adds up to the
plan's budget, and it survives a save and load (a resumed run)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from dp_synth.modalities.tabular.modality import TabularModality
from dp_synth.pe.schedule import VariationSchedule


@pytest.fixture
def tree_modality(tiny_schema) -> TabularModality:
    return TabularModality(
        schema=tiny_schema,
        schedule=VariationSchedule(),
        structure="tree",
        interactions=1,
        refine_cells=4,
        locate_bounds=True,
    )


def test_every_release_is_recorded_and_their_budget_adds_up_to_the_plans(tree_modality):
    rng = np.random.default_rng(0)
    private = tree_modality.random_population({"no": 300, "yes": 100}, rng)
    sigma = 2.0
    statistics = tree_modality.measure_statistics(private, sigma, rng)
    names = [measurement.name for measurement in statistics.measurements]
    assert names == ["bounds", "one_way", "refinement", "scores", "edges", "interaction_scores", "cliques"]
    plan = tree_modality.release_plan(sigma)
    for measurement in statistics.measurements:
        assert (measurement.sigma, measurement.sensitivity) == (
            plan[measurement.name].sigma,
            plan[measurement.name].sensitivity,
        )
    spent = sum((measurement.sensitivity / measurement.sigma) ** 2 for measurement in statistics.measurements)
    assert spent == pytest.approx((tree_modality.statistics_sensitivity / sigma) ** 2)
    bounds, one_way, refinement, scores, edges = statistics.measurements[:5]
    assert bounds.queries == ((1,),) and bounds.sensitivity == 1.0  # the one binned feature, "score"
    assert one_way.queries == ((0,), (1,), (2,)) and one_way.noisy[0].size == 2 * sum(
        grid.size for grid in tree_modality.grids
    )
    assert refinement.queries == ((1,),) and refinement.noisy[0].size == 2 * 32 * 4  # score: 32 bins of 4 sub-cells
    assert scores.queries == ((0, 1), (0, 2), (1, 2)) and scores.noisy[0].shape == (3,)
    assert len(edges.noisy) == len(edges.queries) and all(table.shape[0] == 2 for table in edges.noisy)


def test_saved_statistics_give_the_same_generator(tree_modality):
    rng = np.random.default_rng(1)
    private = tree_modality.random_population({"no": 300, "yes": 100}, rng)
    statistics = tree_modality.measure_statistics(private, 1e-6, rng)
    assert statistics  # the pipeline applies statistics only when they are truthy
    fitted, loaded = (
        tree_modality.with_statistics(value) for value in (statistics, pickle.loads(pickle.dumps(statistics)))
    )
    drawn = [
        modality.random_population({"no": 50, "yes": 50}, np.random.default_rng(2)) for modality in (fitted, loaded)
    ]
    assert drawn[0].equals(drawn[1])

"""The neighbouring relation: sensitivities under add/remove and replace-one, measured on the
releases' own functions, and the replace-one calibration checked against dp-accounting's PLD."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from dp_accounting.pld import privacy_loss_distribution

from dp_synth.modalities.tabular.dependency_tree import dependence_scores, feature_pairs, query_tables
from dp_synth.modalities.tabular.statistics import marginal_counts
from dp_synth.pe import histogram as dp_hist
from dp_synth.pe.accounting import calibrate, count_sensitivity, statistics_sensitivity_factor

DELTA = 1e-5


def pld_epsilon(releases: list[tuple[float, float]], delta: float) -> float:
    """Epsilon of Gaussian releases ``(sensitivity, sigma)`` composed by dp-accounting's PLD."""
    composed = None
    for sensitivity, sigma in releases:
        pld = privacy_loss_distribution.from_gaussian_mechanism(
            standard_deviation=sigma, sensitivity=sensitivity, value_discretization_interval=1e-4
        )
        composed = pld if composed is None else composed.compose(pld)
    return composed.get_epsilon_for_delta(delta)


def plan_releases(plan) -> list[tuple[float, float]]:
    return [(plan.count_sensitivity, plan.sigma)] * plan.releases + [
        (plan.statistics_sensitivity, plan.statistics_sigma)
    ]


@pytest.mark.parametrize(("epsilon", "iterations"), [(1.0, 1), (4.0, 10)])
def test_replace_one_is_calibrated_exactly_and_add_remove_noise_would_not_cover_it(epsilon, iterations):
    add_remove = calibrate(epsilon, DELTA, iterations, 1, statistics_sensitivity=math.sqrt(14), statistics_share=0.8)
    replace_one = calibrate(
        epsilon,
        DELTA,
        iterations,
        1,
        statistics_sensitivity=math.sqrt(14),
        statistics_share=0.8,
        neighbouring="replace_one",
    )
    assert replace_one.sigma == pytest.approx(math.sqrt(2) * add_remove.sigma, rel=1e-12)
    assert replace_one.statistics_sigma == pytest.approx(2 * add_remove.statistics_sigma, rel=1e-12)
    assert replace_one.mu == pytest.approx(add_remove.mu, rel=1e-12)
    assert pld_epsilon(plan_releases(replace_one), DELTA) == pytest.approx(epsilon, rel=2e-3)
    # The add/remove noise, judged under replace-one (counts sqrt(2), statistics 2 x), spends far more.
    judged = [(math.sqrt(2), add_remove.sigma)] * add_remove.releases
    judged.append((2 * add_remove.statistics_sensitivity, add_remove.statistics_sigma))
    assert pld_epsilon(judged, DELTA) > 1.5 * epsilon


def largest_moves(release, table: pd.DataFrame, others: pd.DataFrame, trials: int) -> tuple[float, float]:
    """The largest L2 move of ``release`` over ``trials`` records removed, and replaced by a row of ``others``."""
    rng = np.random.default_rng(0)
    full = release(table)
    removed = replaced = 0.0
    for record, other in zip(rng.choice(len(table), trials), rng.choice(len(others), trials), strict=True):
        rest = table.drop(index=table.index[record])
        removed = max(removed, float(np.linalg.norm(release(rest) - full)))
        swapped = pd.concat([rest, others.iloc[[other]]], ignore_index=True)
        replaced = max(replaced, float(np.linalg.norm(release(swapped) - full)))
    return removed, replaced


@pytest.mark.parametrize("k", [1, 4])
def test_the_histogram_moves_by_1_when_a_record_leaves_and_by_sqrt_2_when_it_is_replaced(adult_modality, k):
    modality, table, others = adult_modality
    candidates = modality.random_population({"<=50K": 60, ">50K": 20}, np.random.default_rng(1))
    candidate_embeddings, candidate_labels = modality.embed(candidates), candidates["class"].to_numpy()
    bins = dp_hist.cluster_bins(candidate_embeddings, candidate_labels, 4, seed=0)

    def votes(rows: pd.DataFrame) -> np.ndarray:
        return dp_hist.class_conditional_votes(
            modality.embed(rows), rows["class"].to_numpy(), candidate_embeddings, candidate_labels, k, bins
        )

    removed, replaced = largest_moves(votes, table, others, trials=60)
    assert removed <= count_sensitivity("add_remove") + 1e-9
    assert replaced <= count_sensitivity("replace_one") + 1e-9
    assert replaced > 1.0  # a replacement moves it further than a removal can


def test_the_one_way_marginals_move_by_sqrt_d_when_a_record_leaves_and_sqrt_2d_when_it_is_replaced(adult_modality):
    modality, table, others = adult_modality
    d = len(modality.schema.features)
    assert modality.statistics_sensitivity == pytest.approx(math.sqrt(d))
    removed, replaced = largest_moves(lambda rows: marginal_counts(modality.layout, rows), table, others, trials=60)
    assert removed == pytest.approx(math.sqrt(d))  # a record is one cell of each feature
    assert math.sqrt(d) < replaced <= math.sqrt(2 * d) + 1e-9
    assert math.sqrt(2 * d) <= statistics_sensitivity_factor("replace_one") * modality.statistics_sensitivity


def test_an_l1_score_moves_by_2_when_a_record_is_replaced_so_statistics_get_factor_2():
    """A dependence score is the L1 distance of a pair's counts from a (released, fixed)
    prediction: the record leaves a cell below its prediction and enters one above it."""
    prediction = [np.array([[4.0, 4.0]]), np.array([[4.0, 4.0]])]  # 2 in each of the 4 joint cells
    cells = np.array([[0, 0], [0, 1], [0, 1], [1, 0], [1, 0], [1, 1], [1, 1], [1, 1]])

    def score(rows: np.ndarray) -> float:
        tables = query_tables(feature_pairs(2), rows, np.zeros(len(rows), dtype=int), 1, [2, 2])
        return float(dependence_scores(tables, prediction)[0])

    removed = np.delete(cells, 0, axis=0)
    assert abs(score(removed) - score(cells)) == 1  # add/remove: sensitivity 1 per score
    replaced = np.vstack([removed, [[1, 1]]])
    assert abs(score(replaced) - score(cells)) == 2 > math.sqrt(2)
    assert statistics_sensitivity_factor("replace_one") == 2

"""The DP dependency tree: sensitivities of its releases, its accounting, its generator."""

from __future__ import annotations

import math

import dp_accounting
import numpy as np
import pandas as pd
import pytest
from dp_accounting.pld import pld_privacy_accountant

from dp_synth.modalities.tabular.dependency_tree import (
    DependencyTree,
    NoisyClique,
    coarse_cells,
    dependence_scores,
    disjoint_best,
    draw_rows,
    equal_mass_cells,
    feature_pairs,
    feature_triples,
    interaction_scores,
    joint_counts,
    lost_edge_weight,
    maximum_spanning_forest,
    monotone_coupling,
    monotone_direction,
    occupied_width_cells,
    posterior_counts,
    query_tables,
)
from dp_synth.modalities.tabular.modality import TabularModality
from dp_synth.modalities.tabular.schema import parse_schema
from dp_synth.modalities.tabular.statistics import Release
from dp_synth.pe.accounting import calibrate
from dp_synth.pe.schedule import VariationSchedule

SIZES = (3, 5, 2, 4)


def random_cells(rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    cells = np.column_stack([rng.integers(size, size=rows) for size in SIZES])
    return cells, rng.integers(2, size=rows)


def pair_tables(cells: np.ndarray, classes: np.ndarray) -> list[np.ndarray]:
    return query_tables(feature_pairs(len(SIZES)), cells, classes, 2, SIZES)


def triple_tables(cells: np.ndarray, classes: np.ndarray) -> list[np.ndarray]:
    return query_tables(feature_triples(len(SIZES)), cells, classes, 2, SIZES)


def test_each_dependence_score_moves_by_at_most_one_when_a_record_is_removed():
    rng = np.random.default_rng(0)
    cells, classes = random_cells(300, rng)
    expected = [rng.uniform(0, 20, size=(2, size)) for size in SIZES]  # earlier releases: fixed
    scores = dependence_scores(pair_tables(cells, classes), expected)
    largest = 0.0
    for removed in range(0, 300, 7):
        keep = np.arange(300) != removed
        change = np.abs(dependence_scores(pair_tables(cells[keep], classes[keep]), expected) - scores)
        largest = max(largest, change.max())
    assert largest <= 1.0 + 1e-9
    assert largest == pytest.approx(1.0)  # the bound is reached


def test_edge_tables_move_by_exactly_sqrt_edges_when_a_record_is_removed():
    rng = np.random.default_rng(1)
    cells, classes = random_cells(100, rng)
    edges = [(0, 1), (1, 2), (1, 3)]

    def tables(rows: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                joint_counts([cells[rows, a], cells[rows, b]], classes[rows], (2, SIZES[a], SIZES[b])).ravel()
                for a, b in edges
            ]
        )

    everyone = tables(np.arange(100))
    for removed in (0, 50, 99):
        change = everyone - tables(np.flatnonzero(np.arange(100) != removed))
        assert np.linalg.norm(change) == pytest.approx(math.sqrt(len(edges)))


def test_each_interaction_score_moves_by_at_most_one_when_a_record_is_removed():
    rng = np.random.default_rng(5)
    cells, classes = random_cells(300, rng)
    model_cells, model_classes = random_cells(2000, rng)  # rows of an earlier release: fixed
    totals = np.array([140.0, 160.0])
    scores, expected = interaction_scores(triple_tables(cells, classes), model_cells, model_classes, totals, SIZES)
    assert len(scores) == len(expected) == math.comb(len(SIZES), 3) and (expected > 0).all()
    largest = 0.0
    for removed in range(0, 300, 7):
        keep = np.arange(300) != removed
        changed, same = interaction_scores(
            triple_tables(cells[keep], classes[keep]), model_cells, model_classes, totals, SIZES
        )
        assert np.array_equal(same, expected)  # public: no private record in it
        largest = max(largest, np.abs(changed - scores).max())
    assert largest <= 1.0 + 1e-9
    assert largest == pytest.approx(1.0)


def _epsilon_of(plan, noise: dict[str, float], sensitivities: dict[str, float]) -> float:
    """The plan's epsilon at delta 1e-5 by an independent PLD accountant, with these statistics releases."""
    assert set(noise) == set(sensitivities)
    accountant = pld_privacy_accountant.PLDAccountant(value_discretization_interval=1e-4)
    accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier=plan.sigma), count=plan.releases)
    for name, sensitivity in sensitivities.items():
        accountant.compose(dp_accounting.GaussianDpEvent(noise_multiplier=noise[name] / sensitivity))
    return accountant.get_epsilon(1e-5)


@pytest.mark.parametrize(("interactions", "refine_cells"), [(0, 1), (1, 1), (4, 1), (1, 16)])
def test_tree_releases_add_up_to_the_plans_statistics_budget_under_an_independent_accountant(
    adult_schema_json, interactions, refine_cells
):
    modality = TabularModality(
        schema=parse_schema(adult_schema_json),
        schedule=VariationSchedule(),
        structure="tree",
        interactions=interactions,
        refine_cells=refine_cells,
    )
    features = len(modality.schema.features)
    plan = calibrate(1.0, 1e-5, 10, 1, statistics_sensitivity=modality.statistics_sensitivity, statistics_share=0.5)
    noise = {name: release.sigma for name, release in modality.release_plan(plan.statistics_sigma).items()}
    sensitivities = {
        "one_way": math.sqrt(features),
        "scores": math.sqrt(features * (features - 1) / 2),
        "edges": math.sqrt(features - 1),
    }
    if interactions:  # every triple's score; one cell of each of at most interactions disjoint tables
        sensitivities["interaction_scores"] = math.sqrt(math.comb(features, 3))
        sensitivities["cliques"] = math.sqrt(min(interactions, features // 3))
    if refine_cells > 1:  # one sub-cell of each binned column: fnlwgt, capital gain and loss
        sensitivities["refinement"] = math.sqrt(3)
    assert _epsilon_of(plan, noise, sensitivities) == pytest.approx(1.0, rel=1e-3)
    independent = TabularModality(schema=modality.schema, schedule=VariationSchedule())
    assert independent.release_plan(plan.statistics_sigma) == {
        "one_way": Release(plan.statistics_sigma, math.sqrt(features))
    }
    refined = TabularModality(schema=modality.schema, schedule=VariationSchedule(), refine_cells=refine_cells)
    sensitivities = {"one_way": math.sqrt(features)} | ({"refinement": math.sqrt(3)} if refine_cells > 1 else {})
    refined_noise = {name: release.sigma for name, release in refined.release_plan(plan.statistics_sigma).items()}
    assert _epsilon_of(plan, refined_noise, sensitivities) == pytest.approx(1.0, rel=1e-3)


def test_spanning_forest_takes_the_heaviest_pairs_without_cycles_and_skips_worthless_ones():
    pairs = feature_pairs(4)  # (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    weights = np.array([9.0, 8.0, -1.0, 7.0, 0.0, -2.0])
    assert maximum_spanning_forest(weights, 4) == [pairs[0], pairs[1]]  # (1,2) would close a cycle
    tree = DependencyTree.from_noisy_tables(
        [(0, 1), (0, 2)],
        [np.ones((2, 3, 3)), np.ones((2, 3, 3))],
        [np.full((2, 3), 1 / 3)] * 4,
        0.1,
        [np.arange(3)] * 4,
    )
    assert tree.parents == (-1, 0, 0, -1) and sorted(tree.order) == [0, 1, 2, 3]
    assert tree.order.index(0) < tree.order.index(1) and tree.children(0) == [1, 2]


def test_interaction_cliques_are_disjoint_and_the_forest_grows_around_them():
    groups = [(0, 1, 2), (1, 3, 4), (3, 4, 5), (6, 7, 8)]
    assert disjoint_best(np.array([5.0, 9.0, 4.0, -1.0]), groups, 3) == [1]  # the rest overlap or are worthless
    assert disjoint_best(np.array([5.0, 1.0, 4.0, 3.0]), groups, 2) == [0, 2]
    weights = np.array([9.0, 8.0, -1.0, 7.0, 2.0, 1.0])  # over feature_pairs(4)
    assert maximum_spanning_forest(weights, 4, merged=[(0, 1, 2)]) == [(1, 3)]  # no pair inside, no cycle through it
    clique_counts = np.array([[[[30.0, 10.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 60.0]]]])  # (class, a, b, c groups)
    prior = np.ones((1, 2, 2, 4))
    prior[0, :, :, 0] = 3.0  # coarse cells 0, 1 of c form group 0; 2, 3 group 1
    tree = DependencyTree.from_noisy_tables(
        [(2, 3), (0, 3)],
        [np.ones((1, 4, 2)), np.ones((1, 2, 2))],
        [np.full((1, 2), 0.5)] * 2 + [np.full((1, 4), 0.25), np.full((1, 2), 0.5)],
        1.0,
        [np.arange(2), np.arange(2), np.arange(4), np.arange(2)],
        [NoisyClique((0, 1, 2), clique_counts, (np.arange(2), np.arange(2), np.array([0, 0, 1, 1])), prior)],
        1.0,
    )
    (clique,) = tree.cliques
    assert clique.members == (0, 1, 2) and tree.parents == (-1, -1, -1, 2)  # (0, 3) would close a cycle
    assert clique.joint[0, 0, 0].tolist() == pytest.approx([0.225, 0.075, 0.05, 0.05])  # 0.3 split 3:1, 0.1 split 1:1
    assert clique.joint.sum() == pytest.approx(1.0) and clique.joint[0, 1, 1, 2:].sum() == pytest.approx(0.6)
    drawn = tree.draw_coarse(0, 4000, np.random.default_rng(6))
    assert not (drawn[:, 0] != drawn[:, 1]).any()  # only the released combinations appear


def test_suppressed_conditionals_drop_cells_of_pure_noise_and_fall_back_to_the_one_way_marginal():
    noisy = np.array([[[100.0, 1.0, -3.0], [0.5, 0.2, 0.1]]])  # class 0: parent cell 0 real, cell 1 noise
    one_way = np.array([[0.2, 0.3, 0.5]])
    tree = DependencyTree.from_noisy_tables(
        [(0, 1)], [noisy], [np.array([[0.5, 0.5]]), one_way], 1.0, [np.arange(2), np.arange(3)], estimate="suppress"
    )
    assert tree.conditionals[1][0, 0].tolist() == [1.0, 0.0, 0.0]
    assert tree.conditionals[1][0, 1].tolist() == one_way[0].tolist()


def test_posterior_counts_match_the_exponential_prior_posterior_mean():
    sigma, prior = 10.0, np.array([5.0, 5.0, 5.0, 50.0, 50.0])
    noisy = np.array([-40.0, 0.0, 15.0, 30.0, 400.0])
    grid = np.linspace(0.0, 1000.0, 200_001)  # the posterior by numerical integration
    expected = []
    for value, mean in zip(noisy, prior, strict=True):
        density = np.exp(-0.5 * ((value - grid) / sigma) ** 2 - grid / mean)
        expected.append(np.trapezoid(grid * density, grid) / np.trapezoid(density, grid))
    estimated = posterior_counts(noisy, prior, sigma)
    assert estimated == pytest.approx(expected, rel=1e-3)
    assert (np.diff(estimated[:3]) > 0).all() and (estimated > 0).all()  # monotone, never zero
    assert estimated[-1] == pytest.approx(400.0 - sigma**2 / 50.0, rel=1e-6)  # far above the noise: shifted


def test_posterior_conditionals_keep_rare_cells_in_proportion_to_the_one_way_marginal():
    noisy = np.array([[[300.0, 2.0, -3.0]]])  # one class, one parent cell
    one_way = np.array([[0.9, 0.05, 0.05]])
    tree = DependencyTree.from_noisy_tables(
        [(0, 1)], [noisy], [np.array([[1.0]]), one_way], 5.0, [np.arange(1), np.arange(3)]
    )
    conditional = tree.conditionals[1][0, 0]
    assert conditional.sum() == pytest.approx(1.0) and conditional[0] > 0.95
    assert 0 < conditional[2] < conditional[1] < 0.03  # small, ordered by the noisy counts, not zero


def test_draw_rows_follows_each_rows_probabilities():
    rng = np.random.default_rng(2)
    probabilities = np.tile([[0.0, 3.0, 1.0], [1.0, 0.0, 0.0]], (5000, 1))
    drawn = draw_rows(probabilities, rng).reshape(5000, 2)
    assert set(drawn[:, 1]) == {0} and 0 not in set(drawn[:, 0])
    assert (drawn[:, 0] == 1).mean() == pytest.approx(0.75, abs=0.03)


def test_coarse_cells_are_contiguous_and_bounded():
    assert coarse_cells(5, 12).tolist() == [0, 1, 2, 3, 4]
    assert coarse_cells(16, 8).tolist() == list(range(16))  # up to twice max_cells: kept
    mapping = coarse_cells(34, 8)
    assert mapping.max() == 7 and (np.diff(mapping) >= 0).all() and len(set(mapping)) == 8


def test_equal_mass_cells_isolate_a_spike_and_share_the_rest_evenly():
    tail = np.linspace(2.0, 1.0, 33)
    mass = np.concatenate([[0.92], 0.08 * tail / tail.sum()])  # a capital gain: 92% at exactly 0
    mapping = equal_mass_cells(mass, 12)
    assert (np.diff(mapping) >= 0).all() and set(np.diff(mapping)) <= {0, 1} and mapping.max() <= 11
    assert (mapping == mapping[0]).sum() == 1  # the spike is a coarse cell alone
    tail_groups = np.bincount(mapping, weights=mass)[1:]
    assert len(tail_groups) == 11 and tail_groups.max() < 2 * tail_groups.min()
    assert coarse_cells(34, 12)[1] == coarse_cells(34, 12)[0]  # equal width merges it with the smallest gains
    assert equal_mass_cells(np.full(20, 0.05), 12).tolist() == list(range(20))  # up to twice max_cells: kept
    assert equal_mass_cells(np.zeros(34), 12).tolist() == coarse_cells(34, 12).tolist()


SPIKED_SCHEMA = {
    "label_column": "label",
    "columns": {
        "gain": {"type": "integer", "min": 0, "max": 99999},
        "score": {"type": "float", "min": 0.0, "max": 1.0},
        "label": {"type": "categorical", "categories": ["no", "yes"]},
    },
}


@pytest.mark.parametrize("pair_split", ["auto", "mass", "width"])
def test_pair_split_gives_a_spike_its_own_coarse_cell_and_auto_keeps_a_spread_column_by_width(pair_split):
    rng = np.random.default_rng(6)
    rows = 6000
    gain = np.where(rng.random(rows) < 0.9, 0, rng.integers(1, 100_000, size=rows))  # over the whole range
    table = pd.DataFrame(
        {
            "gain": gain,
            "score": rng.random(rows) ** 2,  # spread, but not evenly: equal mass differs from equal width
            "label": np.where(gain > 0, "yes", "no").astype(object),
        }
    )
    modality = TabularModality(
        schema=parse_schema(SPIKED_SCHEMA), schedule=VariationSchedule(), structure="tree", pair_split=pair_split
    )
    tree = modality.measure_statistics(table, sigma=1e-6, rng=rng).tree
    gain_map, score_map = tree.coarse
    assert ((gain_map == gain_map[0]).sum() == 1) == (pair_split != "width")
    by_width = coarse_cells(len(score_map), modality.pair_cells)
    assert (score_map.tolist() == by_width.tolist()) == (pair_split != "mass")


def test_width_cells_span_only_the_fine_cells_that_hold_mass():
    mass = np.zeros(34)
    mass[3:15] = 1.0  # the data fills fine cells 3-14 of 34 (a range located three times too wide)
    mapping = occupied_width_cells(mass, 12)
    assert mapping[:4].tolist() == [0, 0, 0, 0] and mapping[14:].tolist() == [11] * 20  # the empty ends join
    assert np.array_equal(mapping[3:15], np.arange(12))  # every coarse cell on the data
    assert np.array_equal(occupied_width_cells(np.ones(34), 12), coarse_cells(34, 12))  # a full range: as before
    assert np.array_equal(occupied_width_cells(np.zeros(34), 12), coarse_cells(34, 12))  # no mass: as before


def test_a_column_that_fills_a_third_of_its_range_gets_its_pair_cells_across_its_data():
    rng = np.random.default_rng(2)
    rows = 6000
    table = pd.DataFrame(
        {
            "gain": rng.integers(0, 100_000, size=rows),
            "score": rng.random(rows) / 3,  # in the first third of 0-1
            "label": np.where(rng.random(rows) < 0.5, "yes", "no").astype(object),
        }
    )
    modality = TabularModality(schema=parse_schema(SPIKED_SCHEMA), schedule=VariationSchedule(), structure="tree")
    _, score_map = modality.measure_statistics(table, sigma=1e-6, rng=rng).tree.coarse
    on_data = score_map[1 : 1 + 11]  # the 32 bins' first third, after the lower bound's cell
    assert len(np.unique(on_data)) == 11  # a coarse cell each (equal width over the range: 4 in all)
    assert len(np.unique(score_map[13:])) == 1  # the empty range beyond shares one


PAIRED_SCHEMA = {
    "label_column": "label",
    "columns": {
        "level": {"type": "categorical", "categories": ["a", "b", "c", "d"]},
        "years": {"type": "integer", "min": 1, "max": 4},
        "noise": {"type": "float", "min": 0.0, "max": 1.0},
        "label": {"type": "categorical", "categories": ["no", "yes"]},
    },
}


def paired_table(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """``years`` is a function of ``level`` (as education-num of education in Adult)."""
    level = rng.integers(4, size=rows)
    return pd.DataFrame(
        {
            "level": np.array(["a", "b", "c", "d"], dtype=object)[level],
            "years": level + 1,
            "noise": rng.random(rows),
            "label": np.where(rng.random(rows) < 0.3, "yes", "no").astype(object),
        }
    )


@pytest.mark.parametrize("structure", ["independent", "tree"])
def test_only_the_tree_generator_keeps_a_deterministic_pair(structure):
    rng = np.random.default_rng(3)
    modality = TabularModality(schema=parse_schema(PAIRED_SCHEMA), schedule=VariationSchedule(), structure=structure)
    fitted = modality.with_statistics(modality.measure_statistics(paired_table(4000, rng), sigma=1e-6, rng=rng))
    population = fitted.random_population({"no": 1000, "yes": 1000}, rng)
    varied = fitted.vary(population, 1, 10, rng)  # r(1) close to r0: many cells redrawn
    kept = [
        (table["years"] == table["level"].map({"a": 1, "b": 2, "c": 3, "d": 4})).mean()
        for table in (population, varied)
    ]
    tree = fitted.generator.tree
    if structure == "tree":
        assert tree is not None and tree.parents[:2] in ((-1, 0), (1, -1))  # level -- years
        assert kept == [1.0, 1.0]
    else:
        assert tree is None and max(kept) < 0.5


def test_a_saved_tree_keeps_its_coarse_cells_when_pair_cells_changes():
    rng = np.random.default_rng(4)
    schema = parse_schema(
        {**PAIRED_SCHEMA, "columns": {**PAIRED_SCHEMA["columns"], "years": {"type": "integer", "min": 1, "max": 40}}}
    )
    table = paired_table(2000, rng).assign(years=lambda frame: frame["years"] * 10)
    measured = TabularModality(schema=schema, schedule=VariationSchedule(), structure="tree", pair_cells=12)
    statistics = measured.measure_statistics(table, sigma=1e-6, rng=rng)
    resumed = TabularModality(schema=schema, schedule=VariationSchedule(), structure="tree", pair_cells=3)
    fitted = resumed.with_statistics(statistics)  # as a resumed run with edited settings loads it
    varied = fitted.vary(fitted.random_population({"no": 200, "yes": 200}, rng), 1, 10, rng)
    assert varied["years"].between(1, 40).all() and len(varied) == 400


XOR_SCHEMA = {
    "label_column": "label",
    "columns": {
        "level": {"type": "categorical", "categories": ["a", "b", "c", "d"]},
        "flag": {"type": "categorical", "categories": ["n", "y"]},
        "score": {"type": "float", "min": 0.0, "max": 1.0},
        "other": {"type": "categorical", "categories": ["p", "q", "r"]},
        "label": {"type": "categorical", "categories": ["0", "1"]},
    },
}


def xor_bits(table: pd.DataFrame) -> np.ndarray:
    """The label as a 3-way XOR: odd level, flag y, score above 0.5."""
    return (
        table["level"].isin(["b", "d"]).to_numpy()
        ^ (table["flag"] == "y").to_numpy()
        ^ (table["score"] > 0.5).to_numpy()
    )


def xor_table(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """No 1- or 2-way marginal of this table says anything of the label."""
    table = pd.DataFrame(
        {
            "level": np.array(["a", "b", "c", "d"], dtype=object)[rng.integers(4, size=rows)],
            "flag": np.array(["n", "y"], dtype=object)[rng.integers(2, size=rows)],
            "score": rng.random(rows),
            "other": np.array(["p", "q", "r"], dtype=object)[rng.integers(3, size=rows)],
        }
    )
    return table.assign(label=np.where(xor_bits(table), "1", "0").astype(object))


@pytest.mark.parametrize("interactions", [0, 1])
def test_only_an_interaction_clique_keeps_a_three_way_xor(interactions):
    rng = np.random.default_rng(7)
    modality = TabularModality(
        schema=parse_schema(XOR_SCHEMA), schedule=VariationSchedule(), structure="tree", interactions=interactions
    )
    fitted = modality.with_statistics(modality.measure_statistics(xor_table(6000, rng), sigma=1e-6, rng=rng))
    population = fitted.random_population({"0": 1000, "1": 1000}, rng)
    varied = fitted.vary(population, 1, 10, rng)  # r(1) close to r0: many cells redrawn or moved
    agree = [(xor_bits(table) == (table["label"] == "1")).mean() for table in (population, varied)]
    tree = fitted.generator.tree
    assert tree is not None
    if interactions:
        assert [clique.members for clique in tree.cliques] == [(0, 1, 2)]
        assert agree[0] == 1.0 and agree[1] > 0.85  # the score moves locally: it may cross 0.5
    else:
        assert tree.cliques == () and max(agree) < 0.56


def test_interactions_cost_nothing_without_the_tree():
    independent = TabularModality(schema=parse_schema(XOR_SCHEMA), schedule=VariationSchedule(), interactions=1)
    assert independent.release_plan(1.0) == {"one_way": Release(1.0, math.sqrt(4))}


def test_a_clique_costs_the_weight_of_the_forest_edges_it_would_drop():
    chain = [((0, 1), 5.0), ((1, 2), 3.0), ((2, 3), 1.0)]  # heaviest first
    assert lost_edge_weight(chain, 6, (0, 2, 3)) == 3.0  # 1 -- 2 would close the cycle 0 -- 1 -- 2 through the clique
    assert lost_edge_weight(chain, 6, (0, 1, 2)) == 0.0  # a path of the forest: its edges are inside the clique
    assert lost_edge_weight(chain, 6, (0, 4, 5)) == 0.0  # members in different trees: nothing dropped
    assert lost_edge_weight(chain, 6, (0, 3, 5)) == 1.0  # the cycle 0 -- 1 -- 2 -- 3 loses its lightest edge
    tree = DependencyTree.from_noisy_tables(
        [edge for edge, _ in chain],
        [np.ones((1, 2, 2))] * 3,
        [np.full((1, 2), 0.5)] * 6,
        1.0,
        [np.arange(2)] * 6,
        [NoisyClique((0, 3, 5), np.ones((1, 2, 2, 2)), (np.arange(2),) * 3, np.ones((1, 2, 2, 2)))],
    )
    kept = {frozenset((child, parent)) for child, parent in enumerate(tree.parents) if parent >= 0}
    assert kept == {frozenset((0, 1)), frozenset((1, 2))}  # the tree drops what the cost counted: 2 -- 3


def test_the_monotone_coupling_keeps_both_marginals_on_a_staircase():
    first, second = np.array([0.1, 0.4, 0.2, 0.3]), np.array([0.25, 0.25, 0.5])
    joint = monotone_coupling(first, second)
    np.testing.assert_allclose(joint.sum(axis=1), first)
    np.testing.assert_allclose(joint.sum(axis=0), second)
    cells = np.argwhere(joint > 1e-12)
    assert np.all(np.diff(cells[:, 0]) >= 0) and np.all(np.diff(cells[:, 1]) >= 0)  # a staircase


def test_monotone_direction_finds_increasing_and_decreasing_relations_and_not_independence():
    rng = np.random.default_rng(5)
    x = rng.random(3000)

    def counts(y: np.ndarray) -> np.ndarray:
        """6 x 6 counts of x and y in six equal cells of 0-1 each."""
        cells = [np.minimum((values * 6).astype(int), 5) for values in (x, y)]
        return joint_counts(cells, np.zeros(3000, dtype=np.int64), (1, 6, 6))[0]

    noisy = counts(np.clip(0.8 * x + 0.05, 0, 1)) + rng.normal(0, 3, size=(6, 6))  # a rate times x, with noise
    assert monotone_direction(noisy) == 1
    assert monotone_direction(counts(1 - x)) == -1
    assert monotone_direction(counts(rng.random(3000))) == 0
    assert monotone_direction(counts(np.clip(x + rng.normal(0, 0.3, 3000), 0, 1))) == 0  # related, not monotone
    two_cells = np.zeros((6, 6))
    two_cells[0, 0], two_cells[1, 1] = 2000, 1000  # zero or not in both: any two cells are in order
    assert monotone_direction(two_cells) == 0


def test_a_monotone_child_is_put_in_its_parents_order_and_keeps_its_values():
    tree = DependencyTree(
        parents=(-1, 0, 1), order=(0, 1, 2), conditionals={}, coarse=(), one_way=(), monotone=(0, -1, 0)
    )
    rng = np.random.default_rng(6)
    parent, child, below = rng.random(500), rng.random(500), rng.random(500)
    coupled = tree.couple_monotone([parent, child, below], rng)
    np.testing.assert_array_equal(coupled[0], parent)
    np.testing.assert_array_equal(coupled[2], below)
    np.testing.assert_array_equal(np.sort(coupled[1]), np.sort(child))
    assert np.all(np.diff(coupled[1][np.argsort(parent)]) <= 0)  # decreasing in the parent


MONOTONE_SCHEMA = {
    "label_column": "label",
    "columns": {
        "minutes": {"type": "float", "min": 0.0, "max": 300.0},
        "charge": {"type": "float", "min": 0.0, "max": 60.0},
        "calls": {"type": "float", "min": 0.0, "max": 200.0},
        "label": {"type": "categorical", "categories": ["no", "yes"]},
    },
}


def test_a_charge_that_is_a_rate_times_the_minutes_is_released_as_a_line():
    rng = np.random.default_rng(7)
    rows = 4000
    minutes = rng.normal(180, 50, size=rows).clip(0, 300)
    table = pd.DataFrame(
        {
            "minutes": minutes,
            "charge": minutes * 0.17,
            "calls": rng.normal(100, 20, size=rows).clip(0, 200),
            "label": np.where(rng.random(rows) < 0.3, "yes", "no").astype(object),
        }
    )
    modality = TabularModality(schema=parse_schema(MONOTONE_SCHEMA), schedule=VariationSchedule(), structure="tree")
    fitted = modality.with_statistics(modality.measure_statistics(table, sigma=1e-6, rng=rng))
    tree = fitted.generator.tree
    assert tree is not None and sorted(np.flatnonzero(tree.monotone)) in ([0], [1])  # minutes -- charge only
    released = fitted.random_population({"no": 1400, "yes": 600}, rng)
    assert released[["minutes", "charge"]].corr(method="spearman").iloc[0, 1] > 0.995
    assert abs(released[["minutes", "calls"]].corr(method="spearman").iloc[0, 1]) < 0.1

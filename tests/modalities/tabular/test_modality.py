"""Tabular random and variation APIs, the embedding, and class-size allocation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dp_synth.modalities.tabular.cells import CellGrid, linear_positions, polygon_slopes
from dp_synth.modalities.tabular.estimation import (
    consistent_tree_counts,
    denoised_marginal,
    groups_with_data,
    refined_within,
    rescaled_within_coarse,
)
from dp_synth.modalities.tabular.modality import TabularModality
from dp_synth.modalities.tabular.schema import Column, parse_schema
from dp_synth.modalities.tabular.statistics import marginal_counts, refined_counts
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pe.selection import allocate_class_sizes, sample_proportional, top_by_count


@pytest.fixture
def modality(tiny_schema) -> TabularModality:
    return TabularModality(schema=tiny_schema, schedule=VariationSchedule())


def within_domain(table: pd.DataFrame, modality: TabularModality) -> bool:
    for column in modality.schema.columns:
        values = table[column.name]
        if column.is_numeric:
            if not values.between(column.low, column.high).all():
                return False
        elif not values.isin(column.categories).all():
            return False
    return bool((table["age"] == np.round(table["age"])).all())


def test_random_population_covers_the_public_domain_with_requested_class_sizes(modality):
    population = modality.random_population({"no": 700, "yes": 300}, np.random.default_rng(0))
    assert population["label"].value_counts().to_dict() == {"no": 700, "yes": 300}
    assert within_domain(population, modality)
    assert population["age"].min() == 18 and population["age"].max() == 90
    assert set(population["colour"]) == {"red", "green", "blue"}


def test_variation_stays_in_domain_and_keeps_labels(modality):
    rng = np.random.default_rng(1)
    population = modality.random_population({"no": 500, "yes": 500}, rng)
    varied = modality.vary(population, 1, 10, rng)
    assert within_domain(varied, modality)
    assert varied["label"].tolist() == population["label"].tolist()
    degree = VariationSchedule().degree(1, 10)
    assert (np.abs(varied["score"] - population["score"]) <= degree * 2.0 + 1e-12).all()
    assert (varied["colour"] != population["colour"]).mean() == pytest.approx(degree * 2 / 3, abs=0.05)


def test_variation_degree_follows_the_schedule():
    schedule = VariationSchedule(r0=0.5, rf=0.01, gamma=0.2)
    degrees = [schedule.degree(t, 30) for t in range(0, 31)]
    assert degrees[0] == pytest.approx(0.5)
    assert degrees[30] == pytest.approx(0.01)
    assert degrees == sorted(degrees, reverse=True)
    assert degrees[1] == pytest.approx(0.5 - 0.49 * (1 / 30) ** 0.2)


def test_embedding_scales_numeric_on_public_bounds_and_one_hots_categories(modality, tiny_table):
    embedding = modality.embed(tiny_table)
    assert embedding.shape == (4, 2 + 3)
    assert embedding[:, 0].tolist() == pytest.approx([0.0, 22 / 72, 1.0, 15 / 72])
    assert embedding[:, 1].tolist() == pytest.approx([0.0, 0.75, 1.0, 0.5])
    assert embedding[1, 2:].tolist() == pytest.approx([0.0, 0.0, 1 / 3])


def test_quality_is_zero_for_identical_tables(modality, tiny_table):
    assert modality.quality(tiny_table, modality.summarise_reference(tiny_table)) == {"tvd_1way": 0.0}


def test_class_sizes_add_up_with_at_least_one_row_per_class():
    sizes = allocate_class_sizes(1000, {"a": 760.4, "b": 239.6, "c": -12.0})
    assert sum(sizes.values()) == 1000
    assert min(sizes.values()) >= 1
    assert sizes["a"] > 3 * sizes["c"]
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        allocate_class_sizes(2, {"a": 1, "b": 1, "c": 1})


def test_selection_respects_class_sizes_and_weights():
    labels = np.array(["a", "a", "a", "b", "b"])
    weights = np.array([0.0, 5.0, 1.0, 0.0, 0.0])
    top = top_by_count(weights, labels, {"a": 2, "b": 1})
    assert top.tolist() == [1, 2, 3]
    drawn = sample_proportional(weights, labels, {"a": 1000, "b": 10}, np.random.default_rng(0))
    assert np.count_nonzero(drawn == 0) == 0
    assert np.count_nonzero(drawn == 1) == pytest.approx(5 / 6 * 1000, rel=0.1)
    assert set(drawn[1000:]) <= {3, 4}


def test_marginal_counts_move_by_exactly_sqrt_d_when_a_record_is_removed(modality, tiny_table):
    full = marginal_counts(modality.layout, tiny_table)
    assert full.sum() == len(tiny_table) * len(modality.schema.features)
    for row in range(len(tiny_table)):
        without = marginal_counts(modality.layout, tiny_table.drop(index=row))
        assert np.linalg.norm(full - without) == pytest.approx(modality.statistics_sensitivity)
    assert modality.statistics_sensitivity == pytest.approx(np.sqrt(3))


def test_cell_grid_round_trips_and_keeps_atoms_on_the_bounds():
    wide = CellGrid(Column("gain", "integer", low=0, high=99999), bins=8)
    values = pd.Series([0, 1, 50000, 99998, 99999])
    cells = wide.cells(values)
    assert cells.tolist() == [0, 1, 5, 8, 9] and wide.size == 10
    redrawn = wide.values(cells, np.random.default_rng(0))
    assert redrawn[0] == 0 and redrawn[-1] == 99999
    assert (wide.cells(pd.Series(redrawn)) == cells).all()
    narrow = CellGrid(Column("age", "integer", low=18, high=90), bins=8)
    assert narrow.size == 73 and narrow.cells(pd.Series([18, 90])).tolist() == [0, 72]


def test_cell_grid_draws_at_the_midpoints_of_the_given_sub_cells():
    gain = CellGrid(Column("gain", "integer", low=0, high=99999), bins=8)  # bins of 12,499.875
    within = np.zeros((gain.size, 4))
    within[:, 0] = 1.0  # every bin: its first quarter
    within[3] = [0.0, 0.0, 0.5, 0.5]  # bin 3 (24,999.75 to 37,499.6): its last two quarters
    cells = np.array([0, 1, 3, 3, 3, 3, 9])
    values = gain.values(cells, np.random.default_rng(0), within)
    assert values[0] == 0 and values[-1] == 99999 and values[1] == round(12499.875 / 8)
    assert set(values[2:6]) <= {round(24999.75 + 12499.875 * 5 / 8), round(24999.75 + 12499.875 * 7 / 8)}
    assert (gain.cells(pd.Series(values)) == cells).all()
    inner, parts = gain.sub_cells(pd.Series([0, 1, 40000, 99998, 99999]), 4)
    assert inner.tolist() == [1, 4, 8] and parts.tolist() == [0, 0, 3]  # the bounds have no sub-cell


def test_refined_counts_move_by_at_most_one_per_binned_feature_when_a_record_is_removed(tiny_schema, tiny_table):
    refined = TabularModality(schema=tiny_schema, schedule=VariationSchedule(), refine_cells=8)
    assert [refined.grids[feature].column.name for feature in refined.refined_features] == [
        "score"
    ]  # age has a cell per value
    full = refined_counts(refined.layout, refined.refined_features, 8, tiny_table)
    assert full.size == 2 * 32 * 8 and full.sum() == 2  # scores -1 and 1 sit on the bounds
    for row in range(len(tiny_table)):
        change = np.linalg.norm(
            full - refined_counts(refined.layout, refined.refined_features, 8, tiny_table.drop(index=row))
        )
        assert change == (1.0 if -1.0 < tiny_table["score"][row] < 1.0 else 0.0)
    assert TabularModality(schema=tiny_schema, schedule=VariationSchedule()).refined_features == ()


def test_refined_within_keeps_sub_cells_above_their_noise_and_spreads_the_rest_of_the_bin():
    sigma = 10.0
    noisy = np.array([[0.0, 80.0, -12.0, 15.0], [5.0, -3.0, 12.0, 19.0], [9.0, 9.0, 9.0, 9.0]])
    cell_counts = np.array([100.0, 40.0, 0.0])
    within = refined_within(noisy, cell_counts, sigma)
    assert within[0] == pytest.approx([0.05, 0.85, 0.05, 0.05])  # 80 kept, the other 20 spread evenly
    assert within[1] == pytest.approx([0.25] * 4)  # nothing at 2 sigma or above: uniform
    assert within[2] == pytest.approx([0.25] * 4)  # an empty bin: uniform (never drawn)
    assert refined_within(np.array([[0.0, 90.0, 60.0, 0.0]]), np.array([100.0]), sigma)[0] == pytest.approx(
        [0, 0.6, 0.4, 0]
    )


def test_refined_generator_puts_values_where_the_private_values_are():
    schema = parse_schema(
        {
            "label_column": "label",
            "columns": {
                "gain": {"type": "integer", "min": 0, "max": 99999},
                "label": {"type": "categorical", "categories": ["no", "yes"]},
            },
        }
    )
    rng = np.random.default_rng(3)
    gain = np.where(rng.random(4000) < 0.5, 5178, 5013)  # one bin of 3,125 (32 bins), two sub-cells of 98
    private = pd.DataFrame({"gain": gain, "label": np.where(gain == 5178, "yes", "no")})
    coarse = TabularModality(schema=schema, schedule=VariationSchedule())
    refined = TabularModality(schema=schema, schedule=VariationSchedule(), refine_cells=32)
    for modality, spread in ((coarse, 3125), (refined, 98)):
        fitted = modality.with_statistics(modality.measure_statistics(private, sigma=1e-9, rng=rng))
        synthetic = fitted.random_population({"no": 1000, "yes": 1000}, rng)
        for label, value in (("no", 5013), ("yes", 5178)):
            drawn = synthetic.loc[synthetic["label"] == label, "gain"]
            assert np.abs(drawn - value).max() < spread
            assert (drawn.nunique() == 1) == (modality is refined)  # a sub-cell's midpoint


def test_generator_with_noiseless_statistics_reproduces_class_conditional_marginals(modality):
    rng = np.random.default_rng(0)
    private = modality.random_population({"no": 3000, "yes": 1000}, rng)
    private.loc[private["label"] == "yes", "colour"] = "blue"
    private.loc[private["label"] == "no", "age"] = 30
    fitted = modality.with_statistics(modality.measure_statistics(private, sigma=1e-9, rng=rng))
    synthetic = fitted.random_population({"no": 2000, "yes": 2000}, rng)
    assert set(synthetic.loc[synthetic["label"] == "yes", "colour"]) == {"blue"}
    assert set(synthetic.loc[synthetic["label"] == "no", "age"]) == {30}
    varied = fitted.vary(synthetic, 1, 10, rng)
    assert within_domain(varied, fitted)
    assert set(varied.loc[varied["label"] == "yes", "colour"]) == {"blue"}  # redraws follow the marginal


def test_reweighting_matches_the_noisy_marginals(modality):
    rng = np.random.default_rng(1)
    private = modality.random_population({"no": 4000, "yes": 1000}, rng)
    private.loc[:2999, "colour"] = "red"
    fitted = modality.with_statistics(modality.measure_statistics(private, sigma=1e-9, rng=rng))
    population = modality.random_population({"no": 500, "yes": 500}, rng)
    weights = fitted.reweight(population, np.ones(len(population)))
    is_no = (population["label"] == "no").to_numpy()
    red_share = weights[is_no & (population["colour"] == "red").to_numpy()].sum() / weights[is_no].sum()
    true_share = (private.loc[private["label"] == "no", "colour"] == "red").mean()
    assert red_share == pytest.approx(true_share, abs=0.01)
    assert np.array_equal(modality.reweight(population, np.ones(3)), np.ones(3))  # no statistics: unchanged


def test_numeric_features_without_a_spike_move_locally_and_spiky_ones_are_redrawn(modality):
    rng = np.random.default_rng(2)
    private = modality.random_population({"no": 3000, "yes": 1000}, rng)
    private["age"] = 30  # a spike: all the mass in one cell; score stays uniform on [-1, 1]
    fitted = modality.with_statistics(modality.measure_statistics(private, sigma=1e-9, rng=rng))
    grids = {grid.column.name: grid for grid in fitted.grids}
    moves_locally, public_moves_locally = fitted.generator.moves_locally, modality.generator.moves_locally
    assert moves_locally(grids["score"]) and not moves_locally(grids["age"])
    assert not moves_locally(grids["colour"]) and public_moves_locally(grids["age"])  # no statistics
    survivors = fitted.random_population({"no": 500, "yes": 500}, rng)
    varied = fitted.vary(survivors, 10, 10, rng)  # r(T) = rf = 0.01
    moved = np.abs(varied["score"] - survivors["score"])
    assert (moved > 0).all() and moved.max() <= 0.01 * 2.0 + 1e-12  # every cell, by at most r x span
    assert set(varied["age"]) == {30}  # redrawn from the spiky marginal, never moved off it


def test_denoised_marginal_keeps_empty_groups_empty_where_clipping_adds_mass():
    rng = np.random.default_rng(5)
    true = np.zeros(34)
    true[0], true[20] = 5000.0, 300.0  # a capital-gain-like column: a spike at 0, one large value
    sigma = 25.0
    group = np.minimum(np.arange(34) * 8 // 34, 7)  # the data lies in groups 0 and 4
    beside, apart = np.isin(group, [1, 3, 5]), np.isin(group, [2, 6, 7])  # empty groups next to it, and not
    clipped, denoised_sums, clipped_spurious, denoised_spurious, spike = [], [], [], [], []
    for _ in range(200):
        noisy = true + rng.normal(0.0, sigma, size=true.size)
        denoised = denoised_marginal(noisy, sigma, groups=8)
        assert (denoised >= 0).all()
        clipped.append([np.maximum(noisy, 0.0)[cells].sum() for cells in (beside, apart)])
        denoised_sums.append([denoised[cells].sum() for cells in (beside, apart)])
        clipped_spurious.append(np.maximum(noisy, 0.0)[true == 0].sum())
        denoised_spurious.append(denoised[true == 0].sum())
        spike.append(denoised[20])
    (clipped_beside, clipped_apart), (denoised_beside, denoised_apart) = np.mean(clipped, 0), np.mean(denoised_sums, 0)
    assert clipped_apart == pytest.approx(apart.sum() * sigma / np.sqrt(2 * np.pi), rel=0.05)  # 0.4 sigma a cell
    assert denoised_apart < 0.1 * clipped_apart  # an isolated group passes 2 sigma by chance 2% of the time
    assert denoised_beside < 0.4 * clipped_beside  # one beside the data passes 1 sigma 16% of the time, shrunk
    assert np.mean(denoised_spurious) < 0.7 * np.mean(clipped_spurious)  # all empty cells: a third less than clipping
    assert np.mean(spike) == pytest.approx(300.0, abs=sigma)  # a cell far above its noise keeps its count


def test_denoised_marginal_of_a_smooth_column_keeps_its_shape():
    rng = np.random.default_rng(6)
    true = np.linspace(50.0, 400.0, 34)
    errors = {"denoise": [], "clip": []}
    for _ in range(200):
        noisy = true + rng.normal(0.0, 25.0, size=34)
        for name, counts in (("denoise", denoised_marginal(noisy, 25.0, groups=8)), ("clip", np.maximum(noisy, 0.0))):
            errors[name].append(0.5 * np.abs(counts / counts.sum() - true / true.sum()).sum())
    assert np.mean(errors["denoise"]) <= np.mean(errors["clip"]) * 1.05  # no worse than clipping where nothing is empty


def test_groups_with_data_keep_a_weak_run_next_to_data_and_drop_an_isolated_one():
    noise = np.full(8, 20.0)
    totals = np.array([0.0, 30.0, 100.0, 30.0, 15.0, 0.0, 30.0, 0.0])  # 1.5 sigma beside the bulk, and alone
    assert groups_with_data(totals, noise).tolist() == [False, True, True, True, False, False, False, False]
    assert not groups_with_data(np.array([30.0, 35.0, 0.0]), np.full(3, 20.0)).any()  # no run reaches 2 sigma


def test_denoised_marginal_keeps_the_tails_of_a_normal_column():
    rng = np.random.default_rng(7)
    centres = np.arange(32) + 0.5
    true = 600.0 * np.exp(-0.5 * ((centres - 16.0) / 4.0) ** 2)  # a class's calls per night over 32 bins
    tails = (centres < 9) | (centres > 23)  # 1.7 sigma of the column and beyond: 8% of its rows
    kept = []
    for _ in range(200):
        noisy = true + rng.normal(0.0, 28.0, size=true.size)
        kept.append(denoised_marginal(noisy, 28.0, groups=8)[tails].sum() / true[tails].sum())
    assert np.mean(kept) > 0.8  # when every group had to reach 2 sigma on its own: about half


def _noisy_chain(rng: np.random.Generator, sigma: float) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """A chain of three features (3, 4, 2 cells) in two classes: its true pair tables and noisy
    one-way counts and pair tables."""
    joint = rng.dirichlet(np.ones(2 * 3 * 4 * 2)).reshape(2, 3, 4, 2) * 4000
    true_tables = [joint.sum(axis=3), joint.sum(axis=1)]
    one_way = [joint.sum(axis=(2, 3)), joint.sum(axis=(1, 3)), joint.sum(axis=(1, 2))]
    noisy_one_way = [counts + rng.normal(0.0, sigma, counts.shape) for counts in one_way]
    noisy_tables = [table + rng.normal(0.0, sigma, table.shape) for table in true_tables]
    return noisy_one_way, noisy_tables, joint.sum(axis=(1, 2, 3))


def test_consistent_tree_counts_agree_with_every_table_and_the_class_totals():
    rng = np.random.default_rng(8)
    one_way, tables, totals = _noisy_chain(rng, sigma=20.0)
    variance = [np.full(counts.shape[1], 400.0) for counts in one_way]
    coarse, adjusted = consistent_tree_counts(one_way, variance, [(0, 1), (1, 2)], tables, 20.0, totals)
    for counts in coarse:
        assert (counts >= 0).all() and np.allclose(counts.sum(axis=1), totals)
    assert np.allclose(adjusted[0].sum(axis=2), coarse[0]) and np.allclose(adjusted[0].sum(axis=1), coarse[1])
    assert np.allclose(adjusted[1].sum(axis=2), coarse[1]) and np.allclose(adjusted[1].sum(axis=1), coarse[2])


def test_consistent_tree_counts_stay_non_negative_for_a_class_whose_noisy_count_is_not():
    rng = np.random.default_rng(10)
    one_way, tables, totals = _noisy_chain(rng, sigma=20.0)
    totals = np.array([totals[0], -7.0])  # a class with no rows: its DP count is noise
    variance = [np.full(counts.shape[1], 400.0) for counts in one_way]
    coarse, _ = consistent_tree_counts(one_way, variance, [(0, 1), (1, 2)], tables, 20.0, totals)
    assert all((counts >= 0).all() for counts in coarse) and np.isclose(coarse[0][0].sum(), totals[0])


def test_consistent_tree_counts_leave_consistent_noiseless_counts_unchanged():
    rng = np.random.default_rng(9)
    one_way, tables, totals = _noisy_chain(rng, sigma=0.0)
    variance = [np.ones(counts.shape[1]) for counts in one_way]
    coarse, adjusted = consistent_tree_counts(one_way, variance, [(0, 1), (1, 2)], tables, 1.0, totals)
    assert all(np.allclose(a, b) for a, b in zip(coarse, one_way, strict=True))
    assert all(np.allclose(a, b) for a, b in zip(adjusted, tables, strict=True))


def test_consistent_tree_counts_are_closer_to_the_truth_than_the_one_way_release():
    errors = {"one-way": [], "joint": []}
    for seed in range(50):
        rng = np.random.default_rng(seed)
        truth, _, _ = _noisy_chain(np.random.default_rng(seed), sigma=0.0)
        one_way, tables, totals = _noisy_chain(rng, sigma=20.0)
        variance = [np.full(counts.shape[1], 400.0) for counts in one_way]
        coarse, _ = consistent_tree_counts(one_way, variance, [(0, 1), (1, 2)], tables, 20.0, totals)
        errors["one-way"].append(sum(np.abs(a - b).sum() for a, b in zip(one_way, truth, strict=True)))
        errors["joint"].append(sum(np.abs(a - b).sum() for a, b in zip(coarse, truth, strict=True)))
    assert np.mean(errors["joint"]) < 0.85 * np.mean(errors["one-way"])  # every margin measured two or three times


def test_rescaled_within_coarse_moves_mass_between_coarse_cells_and_keeps_their_shape():
    fine = np.array([0.1, 0.3, 0.2, 0.4, 0.0])
    mapping = np.array([0, 0, 1, 1, 1])
    rescaled = rescaled_within_coarse(fine, mapping, np.array([60.0, 40.0]))
    assert np.allclose(rescaled, [0.15, 0.45, 0.4 / 3, 0.8 / 3, 0.0])


def test_marginal_estimate_switches_binned_columns_only(tiny_schema):
    rng = np.random.default_rng(7)
    base = TabularModality(schema=tiny_schema, schedule=VariationSchedule())
    private = base.random_population({"no": 300, "yes": 100}, rng)
    denoised = base.measure_statistics(private, sigma=30.0, rng=np.random.default_rng(8)).marginals
    clip = TabularModality(schema=tiny_schema, schedule=VariationSchedule(), marginal_estimate="clip")
    clipped = clip.measure_statistics(private, sigma=30.0, rng=np.random.default_rng(8)).marginals
    for label in ("no", "yes"):
        assert np.array_equal(denoised[label]["colour"], clipped[label]["colour"])  # categorical: always clipped
        assert np.array_equal(denoised[label]["age"], clipped[label]["age"])  # an integer cell per value: clipped
        assert not np.array_equal(denoised[label]["score"], clipped[label]["score"])  # binned: denoised


def test_an_integer_bin_draws_each_of_its_values_equally_often():
    grid = CellGrid(Column("calls", "integer", 0.0, 180.0), 32)  # bins 5.625 wide
    cells = np.repeat(np.arange(1, 33), 4_000)
    drawn = grid.values(cells, np.random.default_rng(0))
    assert np.array_equal(grid.cells(pd.Series(drawn)), cells)  # every value in its own bin
    for cell in (1, 2, 17, 32):
        shares = pd.Series(drawn[cells == cell]).value_counts(normalize=True)
        assert shares.max() - shares.min() < 0.05 and len(shares) in (5, 6)  # no value favoured by rounding


def test_a_bin_draws_along_the_frequency_polygon_of_its_marginal_and_keeps_its_mass():
    grid = CellGrid(Column("size", "float", 0.0, 4.0), 4)  # bins 1 wide: [0, 1), [1, 2), [2, 3), [3, 4]
    marginal = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.0])  # a density rising across the range
    slopes = polygon_slopes(marginal)
    assert np.allclose(slopes, [0.0, 0.5, 0.5, 1 / 3, 0.125, 0.0])  # (right - left) / (2 x own)
    cells = np.repeat(np.arange(1, 5), 40_000)
    drawn = grid.values(cells, np.random.default_rng(0), marginal=marginal)
    assert np.array_equal(grid.cells(pd.Series(drawn)), cells)  # every value stays in its bin
    for cell in range(1, 5):
        position = drawn[cells == cell] - (cell - 1)
        assert abs(position.mean() - (0.5 + slopes[cell] / 12)) < 0.005  # the mean of 1 + a (u - 1/2)
    flat = grid.values(cells, np.random.default_rng(0), marginal=np.full(6, 1 / 6))
    assert np.allclose(flat, grid.values(cells, np.random.default_rng(0)))  # a flat marginal: uniform
    beside_nothing = polygon_slopes(np.array([0.0, 0.5, 0.5, 0.0, 0.0, 0.0]))
    assert beside_nothing[2] == -0.5 and beside_nothing[3] == 0.0  # mass leans away from an empty bin
    assert np.all(np.abs(polygon_slopes(np.array([0, 0.01, 0.9, 0.01, 0.08, 0]))) <= 2.0)  # density >= 0


def test_linear_positions_invert_the_cumulative_of_a_linear_density():
    uniform = np.linspace(0.0, 1.0, 11)
    for slope in (-2.0, -0.5, 0.0, 1.0, 2.0):
        position = linear_positions(uniform, np.full(11, slope))
        assert np.allclose(position + slope * (position**2 - position) / 2, uniform)

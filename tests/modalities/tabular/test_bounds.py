"""DP bounds: where a column's data lies inside loosely declared bounds, located by one Gaussian
release whose sensitivity is checked by removing records; the release stays inside the declaration."""

from __future__ import annotations

import logging
import math
import re

import numpy as np
import pandas as pd
import pytest

from dp_synth.hooks.tracking import MAX_TAG_LENGTH, tag_value
from dp_synth.modalities.tabular.bounds import HALVINGS, geometric_edges, locate_counts, located_range, located_schema
from dp_synth.modalities.tabular.cells import CellGrid
from dp_synth.modalities.tabular.modality import TabularModality
from dp_synth.modalities.tabular.plan import plan_generator
from dp_synth.modalities.tabular.schema import Column, parse_schema, readable_number
from dp_synth.modalities.tabular.statistics import located_bounds
from dp_synth.pe.schedule import VariationSchedule

AMOUNT = Column("amount", "float", 0.0, 100_000.0)
DURATION = Column("duration", "integer", 0, 1_200)


def loose_schema(rows: int | None = 800, numeric: int = 2) -> dict:
    columns = {
        "amount": {"type": "float", "min": 0, "max": 100_000},
        "duration": {"type": "integer", "min": 0, "max": 1_200},
        **{f"extra{index}": {"type": "float", "min": 0, "max": 1_000} for index in range(numeric - 2)},
        "label": {"type": "categorical", "categories": ["good", "bad"]},
    }
    return {"label_column": "label", "columns": columns, "public_row_count": rows}


def credit_rows(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Amounts of 250 to 18,000 and durations of 4 to 72 months, far inside their declared bounds."""
    return pd.DataFrame(
        {
            "amount": np.exp(rng.uniform(np.log(250), np.log(18_000), rows)),
            "duration": rng.integers(4, 73, rows),
            "label": rng.choice(["good", "bad"], rows, p=[0.7, 0.3]),
        }
    )


def test_geometric_cells_halve_towards_each_bound():
    edges = geometric_edges(AMOUNT)
    assert len(edges) == 2 * HALVINGS + 1 and np.all(np.diff(edges) > 0)
    assert (edges[0], edges[HALVINGS], edges[-1]) == (0.0, 50_000.0, 100_000.0)
    assert edges[1] == pytest.approx(100_000 / 2**HALVINGS) and edges[-2] == pytest.approx(
        100_000 - 100_000 / 2**HALVINGS
    )


def test_a_range_declared_across_zero_is_also_cut_from_zero_and_narrows_to_signed_data():
    declared = Column("asymmetry", "float", -6_000.0, 6_000.0)
    edges = geometric_edges(declared)
    assert len(edges) == 4 * HALVINGS - 1 and np.all(np.diff(edges) > 0)  # -3,000, 0, 3,000 shared
    assert 0.0 in edges and edges[HALVINGS * 2 - 2] == pytest.approx(-6_000 / 2**HALVINGS)
    rng = np.random.default_rng(3)
    values = pd.DataFrame({"asymmetry": rng.normal(0.0, 150.0, 15_000).clip(-600, 600)})
    noisy = locate_counts((declared,), values) + rng.normal(0, 30.0, len(edges) - 1)
    assert located_range(declared, noisy, 30.0) == (-750.0, 750.0)  # cells grown from the bounds alone: kept


def test_removing_a_record_changes_the_counts_by_sqrt_columns():
    rng = np.random.default_rng(0)
    table = credit_rows(300, rng)
    full = locate_counts((AMOUNT, DURATION), table)
    assert full.sum() == 2 * len(table)
    for index in rng.choice(len(table), size=50, replace=False):
        change = full - locate_counts((AMOUNT, DURATION), table.drop(index=index))
        assert np.linalg.norm(change) == pytest.approx(math.sqrt(2))


def test_the_located_range_covers_the_data_and_a_tight_declaration_is_kept():
    rng = np.random.default_rng(1)
    amounts = credit_rows(800, rng)[["amount"]]
    noisy = locate_counts((AMOUNT,), amounts) + rng.normal(0, 10.0, 2 * HALVINGS)
    low, high = located_range(AMOUNT, noisy, 10.0)
    assert 0 <= low <= 250 and 18_000 <= high <= 50_000  # inside the declaration, around the data
    tight = Column("amount", "float", 200.0, 20_000.0)
    noisy = locate_counts((tight,), amounts) + rng.normal(0, 10.0, 2 * HALVINGS)
    assert located_range(tight, noisy, 10.0) == (200.0, 20_000.0)
    nothing = rng.normal(0, 10.0, 2 * HALVINGS)  # no data anywhere: the declaration stays
    assert located_range(AMOUNT, nothing - 100.0, 10.0) == (0.0, 100_000.0)


def test_an_integer_column_located_to_few_values_gets_a_cell_per_value():
    schema = parse_schema(loose_schema())
    rows = credit_rows(800, np.random.default_rng(2)).assign(duration=lambda rows: rows["duration"] // 2)
    counts = locate_counts(schema.features, rows)  # durations of 2 to 36 months, declared 0 to 1,200
    located = located_schema(schema, (0, 1), counts, 1.0)
    duration = located.column("duration")
    assert float(duration.low).is_integer() and float(duration.high).is_integer()
    assert 0 <= duration.low <= 2 and 36 <= duration.high <= 75
    assert CellGrid(duration, 32).exact and not CellGrid(schema.column("duration"), 32).exact
    assert located.column("amount").high <= 50_000 and located.column("label") == schema.column("label")


def test_the_release_is_drawn_in_the_located_domain_inside_the_declared_one():
    schema = parse_schema(loose_schema())
    modality = TabularModality(schema=schema, schedule=VariationSchedule(), structure="tree", locate_bounds=True)
    rng = np.random.default_rng(3)
    statistics = modality.measure_statistics(credit_rows(800, rng), sigma=2.0, rng=rng)
    assert statistics.measurements[0].name == "bounds"
    located = modality.with_statistics(statistics)
    assert located.domain.column("amount").high <= 50_000
    drawn = located.random_population({"good": 500, "bad": 500}, rng)
    assert drawn["amount"].between(0, located.domain.column("amount").high).all()
    assert drawn["amount"].quantile(0.99) < 30_000  # not spread over the declared 0-100,000


def epsilon_one_plan(schema_json: dict, locate_bounds: bool | None = None):
    """The adaptive plan of a table at epsilon 1, T = 1, the default generator share."""
    return plan_generator(
        parse_schema(schema_json),
        epsilon=1.0,
        delta="auto",
        iterations=1,
        class_count_releases=1,
        generator_share=0.8,
        candidates_per_bin=1,
        locate_bounds=locate_bounds,
    )


def test_the_plan_locates_bounds_when_it_can_afford_them_and_says_so_when_not():
    plan = epsilon_one_plan(loose_schema(2000))
    assert plan.locate_bounds and not any("declared bounds" in warning for warning in plan.warnings)
    wide = epsilon_one_plan(loose_schema(455, numeric=30))
    assert not wide.locate_bounds
    assert any("declared bounds of 30 numeric columns are used as declared" in warning for warning in wide.warnings)


def test_the_located_bounds_are_read_back_by_column_name():
    schema = parse_schema(loose_schema())
    modality = TabularModality(schema=schema, schedule=VariationSchedule(), locate_bounds=True)
    rng = np.random.default_rng(4)
    statistics = modality.measure_statistics(credit_rows(800, rng), sigma=2.0, rng=rng)
    ranges = located_bounds(statistics)
    assert set(ranges) == {"amount", "duration"} and ranges["amount"][1] <= 50_000
    assert (
        located_bounds(
            TabularModality(schema=schema, schedule=VariationSchedule()).measure_statistics(
                credit_rows(800, rng), sigma=2.0, rng=rng
            )
        )
        == {}
    )


def test_the_diagnostic_compares_populations_in_the_declared_grid():
    modality = TabularModality(schema=parse_schema(loose_schema()), schedule=VariationSchedule(), locate_bounds=True)
    rng = np.random.default_rng(5)
    rows = credit_rows(800, rng)
    located = modality.with_statistics(modality.measure_statistics(rows, sigma=2.0, rng=rng))
    assert located.domain != modality.schema and located.schema == modality.schema
    assert located.quality(rows, modality.summarise_reference(rows))["tvd_1way"] == pytest.approx(0.0)


def test_bounds_located_or_not_by_setting_leave_the_plan_their_share():
    off, on = epsilon_one_plan(loose_schema(2000), False), epsilon_one_plan(loose_schema(2000), True)
    assert not off.locate_bounds and on.locate_bounds
    assert not any("declared bounds" in warning for warning in off.warnings + on.warnings)


def test_declared_bounds_far_wider_than_the_located_ones_are_warned_about_with_public_values_only(caplog):
    schema = parse_schema(loose_schema())
    modality = TabularModality(schema=schema, schedule=VariationSchedule(), locate_bounds=True)
    rng = np.random.default_rng(6)
    rows = credit_rows(800, rng)
    with caplog.at_level(logging.WARNING):
        statistics = modality.measure_statistics(rows, sigma=2.0, rng=rng)
    ranges = located_bounds(statistics)
    assert len(statistics.warnings) == 2 and all("declare tighter bounds" in text for text in statistics.warnings)
    amount = next(text for text in statistics.warnings if "'amount'" in text)
    low, high = ranges["amount"]
    assert f"its range is {readable_number(low)} to {readable_number(high)}, declared 0 to 100,000" in amount
    public = {readable_number(bound) for located in ranges.values() for bound in located} | {
        readable_number(bound) for column in schema.features for bound in (column.low, column.high)
    }
    for text in statistics.warnings:  # every number printed is a declared or a located (DP) bound
        assert set(re.findall(r"\d[\d,.]*\d|\d", text)) <= public
        assert f"Loose bounds: {text}." in caplog.messages
    tight = {
        "amount": {"type": "float", "min": 200, "max": 20_000},
        "duration": {"type": "integer", "min": 0, "max": 80},
    }
    declared = parse_schema({**loose_schema(), "columns": {**loose_schema()["columns"], **tight}})
    close = TabularModality(schema=declared, schedule=VariationSchedule(), locate_bounds=True)
    statistics = close.measure_statistics(rows, sigma=2.0, rng=rng)
    assert "amount" in located_bounds(statistics) and statistics.warnings == ()  # located, declared about right


def test_mlflow_tags_hold_every_warning_up_to_the_longest_value_a_store_accepts():
    assert tag_value((), " | ") == "none" and tag_value(("a", "b"), " | ") == "a | b"
    assert len(tag_value(["declare tighter bounds"] * 1000, " | ")) == MAX_TAG_LENGTH

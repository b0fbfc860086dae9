"""User-level DP: contribution bounding keeps at most k rows of a privacy unit, every
sensitivity grows by k (measured by removing a whole unit) and the calibration holds against
dp-accounting's PLD."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dp_synth import TabularSynthesizer
from dp_synth.modalities.tabular.plan import read_rows
from dp_synth.modalities.tabular.schema import parse_schema
from dp_synth.modalities.tabular.statistics import marginal_counts
from dp_synth.modalities.text.modality import parse_corpus_schema
from dp_synth.pe import histogram as dp_hist
from dp_synth.pe.accounting import calibrate, count_sensitivity, statistics_sensitivity_factor
from dp_synth.pe.contribution import bounded_contributions
from dp_synth.pe.schema import SchemaError
from tests.conftest import ADULT_DIR
from tests.pe.test_neighbouring import DELTA, plan_releases, pld_epsilon


def people(rows_per_person: list[int]) -> pd.DataFrame:
    """Person ``p`` has ``rows_per_person[p]`` rows, numbered within the person."""
    persons = np.repeat(np.arange(len(rows_per_person)), rows_per_person)
    within = np.concatenate([np.arange(count) for count in rows_per_person])
    return pd.DataFrame({"person": persons, "row": within, "value": np.arange(len(persons))})


def test_each_unit_keeps_at_most_k_rows_and_the_unit_column_is_dropped():
    table = people([1, 3, 10, 40, 2])
    bounded = bounded_contributions(table, "person", 3, np.random.default_rng(0))
    assert "person" not in bounded.columns and list(bounded.columns) == ["row", "value"]
    kept = table.loc[bounded.index, "person"].value_counts().sort_index()
    assert kept.to_dict() == {0: 1, 1: 3, 2: 3, 3: 3, 4: 2}  # small units keep every row
    assert bounded["value"].is_unique and (bounded.index.to_series().diff().dropna() > 0).all()  # order kept


def test_a_large_unit_keeps_a_uniform_random_subset_of_its_rows():
    table = people([8])
    rng = np.random.default_rng(1)
    kept = np.zeros(8)
    for _ in range(2000):
        kept[bounded_contributions(table, "person", 2, rng)["row"].to_numpy()] += 1
    assert kept.sum() == 4000 and np.allclose(kept / 2000, 2 / 8, atol=0.04)


def test_rows_without_a_unit_count_as_one_unit_and_a_missing_column_is_named():
    table = pd.DataFrame({"person": [None, None, None, "a"], "value": range(4)})
    assert len(bounded_contributions(table, "person", 1, np.random.default_rng(2))) == 2
    with pytest.raises(KeyError, match="customer_id"):
        bounded_contributions(table, "customer_id", 1, np.random.default_rng(2))


@pytest.mark.parametrize(("neighbouring", "k"), [("add_remove", 5), ("replace_one", 3)])
def test_a_unit_of_k_rows_is_calibrated_exactly(neighbouring, k):
    per_row = calibrate(1.0, DELTA, 2, 1, statistics_sensitivity=math.sqrt(14), statistics_share=0.8)
    per_unit = calibrate(
        1.0,
        DELTA,
        2,
        1,
        statistics_sensitivity=math.sqrt(14),
        statistics_share=0.8,
        neighbouring=neighbouring,
        rows_per_unit=k,
    )
    assert per_unit.count_sensitivity == count_sensitivity(neighbouring) * k
    assert per_unit.statistics_sensitivity == pytest.approx(
        math.sqrt(14) * statistics_sensitivity_factor(neighbouring) * k
    )
    assert per_unit.sigma == pytest.approx(count_sensitivity(neighbouring) * k * per_row.sigma, rel=1e-12)
    assert pld_epsilon(plan_releases(per_unit), DELTA) == pytest.approx(1.0, rel=2e-3)
    # The per-row noise, judged for a unit of k rows, spends far more than its epsilon.
    judged = [(count_sensitivity(neighbouring) * k, per_row.sigma)] * per_row.releases
    judged.append((per_unit.statistics_sensitivity, per_row.statistics_sigma))
    assert pld_epsilon(judged, DELTA) > 2.0


def units_of(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The table's rows given to persons of 1 to 12 rows, some sharing one class."""
    sizes = []
    while sum(sizes) < len(table):
        sizes.append(int(rng.integers(1, 13)))
    persons = np.repeat(np.arange(len(sizes)), sizes)[: len(table)]
    return table.assign(person=persons)


def largest_unit_move(release, with_units: pd.DataFrame, k: int, trials: int) -> float:
    """The largest L2 move of ``release`` of the bounded rows when one whole unit is removed."""
    rng = np.random.default_rng(3)
    bounded_with_unit = bounded_contributions(with_units, "person", k, rng)
    persons = with_units.loc[bounded_with_unit.index, "person"]
    full = release(bounded_with_unit)
    largest = 0.0
    for person in rng.choice(persons.unique(), trials, replace=False):
        rest = bounded_with_unit[persons != person]
        largest = max(largest, float(np.linalg.norm(release(rest) - full)))
    return largest


@pytest.mark.parametrize("k", [1, 4])
def test_removing_a_whole_unit_moves_the_histogram_and_the_marginals_by_at_most_k_rows(adult_modality, k):
    modality, table, _ = adult_modality
    with_units = units_of(table, np.random.default_rng(4))
    candidates = modality.random_population({"<=50K": 60, ">50K": 20}, np.random.default_rng(1))
    candidate_embeddings, candidate_labels = modality.embed(candidates), candidates["class"].to_numpy()

    def votes(rows: pd.DataFrame) -> np.ndarray:
        return dp_hist.class_conditional_votes(
            modality.embed(rows), rows["class"].to_numpy(), candidate_embeddings, candidate_labels, 1, None
        )

    moved = largest_unit_move(votes, with_units, k, trials=40)
    assert moved <= count_sensitivity("add_remove", k) + 1e-9
    d = len(modality.schema.features)
    moved = largest_unit_move(lambda rows: marginal_counts(modality.layout, rows), with_units, k, trials=40)
    assert moved <= statistics_sensitivity_factor("add_remove", k) * math.sqrt(d) + 1e-9
    if k > 1:
        assert moved > math.sqrt(d)  # a unit of several rows moves them further than one row can


def test_a_fit_with_a_privacy_unit_bounds_each_person_and_reports_whole_units(tmp_path, adult_schema_json):
    private = pd.read_csv(ADULT_DIR / "adult_train.csv", dtype=str).head(900)
    private.insert(0, "customer_id", [f"c{index // 3}" for index in range(len(private))])  # 3 rows a person
    schema = {**adult_schema_json, "privacy_unit": "customer_id", "public_row_count": len(private)}
    dp = {"ledger": str(tmp_path / "ledger.db"), "max_rows_per_unit": 2, "seed": 0}
    synthesizer = TabularSynthesizer(population_size=200, iterations=1, dp=dp).fit(private, schema)
    report = synthesizer.privacy_report
    assert "all rows of one 'customer_id', at most 2 read per person" in report.neighbouring
    assert not report.person_epsilons and report.epsilon == pytest.approx(1.0, rel=1e-3)
    histogram = next(release for release in report.releases if release.name == "nearest-neighbour histogram")
    assert histogram.sensitivity == 2.0  # a person's two rows may vote for one candidate
    assert "customer_id" not in synthesizer.sample(50).columns
    per_row = TabularSynthesizer(population_size=200, iterations=1, dp={**dp, "max_rows_per_unit": 1}).fit(
        private.drop(columns=["customer_id"]), adult_schema_json | {"public_row_count": len(private)}
    )
    assert "a row; not a person's rows together" in per_row.privacy_report.neighbouring
    assert per_row.privacy_report.person_epsilons["5"] > 5 * per_row.privacy_report.epsilon * 0.8


def test_a_privacy_unit_must_not_be_a_released_column_and_must_be_in_the_private_data(adult_schema_json):
    with pytest.raises(SchemaError, match="must not be released"):
        parse_schema({**adult_schema_json, "privacy_unit": "age"})
    with pytest.raises(SchemaError, match="privacy_unit"):
        parse_schema({**adult_schema_json, "privacy_unit": ""})
    assert (
        parse_corpus_schema(
            {
                "label_column": "l",
                "text_columns": ["t"],
                "domain": "news",
                "classes": {"a": "A"},
                "privacy_unit": "author",
            }
        ).privacy_unit
        == "author"
    )
    private = pd.read_csv(ADULT_DIR / "adult_train.csv", dtype=str).head(100)
    schema = {**adult_schema_json, "privacy_unit": "customer_id", "public_row_count": 100}
    with pytest.raises(Exception, match="privacy_unit 'customer_id' is not a column of the private data"):
        TabularSynthesizer(population_size=100, iterations=1, dp={"seed": 0}).fit(private, schema)


def test_the_plan_sizes_the_generator_for_the_rows_a_run_reads(adult_schema_json):
    declared = {**adult_schema_json, "privacy_unit": "person", "public_row_count": 31_727, "public_unit_count": 2000}
    schema = parse_schema(declared)
    assert [read_rows(schema, k) for k in (1, 4, 30)] == [2000, 8000, 31_727]
    assert read_rows(parse_schema({**declared, "public_unit_count": None}), 4) == 31_727
    with pytest.raises(SchemaError, match="public_unit_count must be a positive integer, with a privacy_unit"):
        parse_schema({**adult_schema_json, "public_unit_count": 2000})

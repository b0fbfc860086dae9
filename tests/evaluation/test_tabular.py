"""Evaluation metrics: k-way TVD, k-way Wasserstein, classifier utility and DCR."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from dp_synth.evaluation.tabular import (
    classifier_utility,
    discretise,
    distance_to_closest_record,
    marginal_tvd,
    wasserstein_kway,
)
from dp_synth.modalities.tabular.modality import TabularModality
from dp_synth.modalities.tabular.schema import TableSchema, conform, parse_schema
from dp_synth.pe.schedule import VariationSchedule
from tests.conftest import ADULT_DIR


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Single-threaded OpenMP/BLAS: gradient boosting slows tenfold on a busy shared CPU otherwise."""
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def adult(adult_schema_json) -> tuple[TableSchema, pd.DataFrame, pd.DataFrame]:
    """The Adult schema, a 3,000-row training sample and a 3,000-row test sample."""
    schema = parse_schema(adult_schema_json)
    train = conform(pd.read_csv(ADULT_DIR / "adult_train.csv"), schema)
    test = conform(pd.read_csv(ADULT_DIR / "adult_test.csv"), schema)
    return (
        schema,
        train.sample(3000, random_state=0).reset_index(drop=True),
        test.sample(3000, random_state=1).reset_index(drop=True),
    )


def random_rows(schema: TableSchema, like: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Features drawn uniformly from the public domain, with the class sizes of ``like``."""
    sizes = like[schema.label_column].value_counts().to_dict()
    modality = TabularModality(schema=schema, schedule=VariationSchedule())
    return modality.random_population(sizes, np.random.default_rng(seed)).sample(frac=1.0, random_state=seed)


@pytest.fixture
def permuted(tiny_table) -> pd.DataFrame:
    """``tiny_table`` with its colours permuted: same one-way marginals, row 0 unchanged."""
    return tiny_table.assign(colour=["red", "red", "blue", "green"])


def test_discretise_uses_public_bounds_and_declared_category_order(tiny_table, tiny_schema):
    codes = discretise(tiny_table, tiny_schema, bins=10)
    # age on [18, 90]: 18 -> 0, 40 -> floor(3.06), 90 -> last bin, 33 -> floor(2.08)
    assert codes[:, 0].tolist() == [0, 3, 9, 2]
    # score on [-1, 1]: -1 -> 0, 0.5 -> 7, 1 -> last bin, 0 -> 5
    assert codes[:, 1].tolist() == [0, 7, 9, 5]
    assert codes[:, 2].tolist() == [0, 2, 1, 0]  # red, green, blue
    assert codes[:, 3].tolist() == [0, 1, 0, 1]


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_identical_tables_are_at_distance_zero(tiny_table, tiny_schema, k):
    assert marginal_tvd(tiny_table, tiny_table, tiny_schema, k) == 0.0
    assert marginal_tvd(tiny_table, pd.concat([tiny_table] * 3), tiny_schema, k) == 0.0
    assert wasserstein_kway(tiny_table, tiny_table.iloc[::-1], tiny_schema, k) == 0.0


@pytest.mark.parametrize("bins", [10, 5000])  # 5000 bins: 4-way cells exceed the dense limit
def test_tvd_of_permuted_colours_matches_the_hand_computed_values(tiny_table, permuted, tiny_schema, bins):
    # One-way marginals are equal. A pair (column with distinct codes, colour) shares only
    # row 0's cell: TVD = 0.5 * 6 / 4 = 0.75; (colour, label) shares two cells: 0.5.
    # k=2: (0.75 + 0.75 + 0.5) / 6; k=3: three triples with colour at 0.75, one at 0; k=4: 0.75.
    expected = {1: 0.0, 2: 2.0 / 6.0, 3: 2.25 / 4.0, 4: 0.75}
    for k, value in expected.items():
        assert marginal_tvd(tiny_table, permuted, tiny_schema, k, bins=bins) == pytest.approx(value)


def test_tvd_grows_with_the_marginal_order(adult):
    schema, train, test = adult
    synthetic = random_rows(schema, train, seed=0).iloc[:500]
    one, two, three = (marginal_tvd(train, synthetic, schema, k) for k in (1, 2, 3))
    assert 0.0 < one < two < three <= 1.0
    assert marginal_tvd(train, test, schema, 3) < 0.2 < three  # 3k vs 3k real rows: 0.09


def test_tvd_rejects_impossible_orders(tiny_table, tiny_schema):
    with pytest.raises(ValueError, match="k must be"):
        marginal_tvd(tiny_table, tiny_table, tiny_schema, 5)


def test_wasserstein_scales_numeric_columns_on_public_bounds(tiny_table, tiny_schema):
    real = tiny_table.assign(score=[-1.0, 0.5, 0.8, 0.0])
    shifted = real.assign(score=real["score"] + 0.2)  # 10% of the declared span [-1, 1]
    # Only subsets containing score move, each by exactly 0.1: 1 of 4, 3 of 6, 3 of 4, 1 of 1.
    for k, share in {1: 1 / 4, 2: 3 / 6, 3: 3 / 4, 4: 1.0}.items():
        assert wasserstein_kway(real, shifted, tiny_schema, k) == pytest.approx(0.1 * share)


def test_wasserstein_counts_a_category_change_as_one(tiny_table, tiny_schema):
    recoloured = tiny_table.assign(colour=["green", "blue", "green", "red"])
    # colour marginal: red 1/2 -> 1/4, green 1/4 -> 1/2: a quarter of the mass pays 1.
    assert wasserstein_kway(tiny_table, recoloured, tiny_schema, 1) == pytest.approx(0.25 / 4)


def test_wasserstein_samples_subsets_reproducibly(adult):
    schema, train, test = adult
    first = wasserstein_kway(train, test, schema, 3, sample_size=100, max_subsets=5, rng=7)
    assert first == wasserstein_kway(train, test, schema, 3, sample_size=100, max_subsets=5, rng=7)
    far = wasserstein_kway(train, random_rows(schema, train, 0), schema, 3, sample_size=100, max_subsets=5, rng=7)
    assert 0.0 < first < far


def test_gbm_trained_on_real_rows_beats_random_rows(adult):
    schema, train, test = adult
    real = classifier_utility(train, test, schema, "gbm", seed=0)
    noise = classifier_utility(random_rows(schema, train, seed=0), test, schema, "gbm", seed=0)
    # 3,000 training rows give 0.84-0.86 across samples (0.87 with all 32,561 rows).
    assert real["accuracy"] > 0.83 and real["macro_f1"] > 0.74
    assert noise["accuracy"] < real["accuracy"] - 0.05
    assert noise["macro_f1"] < real["macro_f1"] - 0.2


def test_logistic_regression_learns_adult(adult):
    schema, train, test = adult
    scores = classifier_utility(train, test, schema, "logreg", seed=0)
    assert scores["accuracy"] > 0.82 and scores["macro_f1"] > 0.72


@pytest.mark.parametrize("model", ["gbm", "rf", "logreg"])
def test_single_class_training_table_predicts_that_class(tiny_table, tiny_schema, model):
    only_no = tiny_table[tiny_table["label"] == "no"]
    scores = classifier_utility(only_no, tiny_table, tiny_schema, model)
    assert scores["accuracy"] == pytest.approx(0.5)
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)  # F1 of "no" is 2/3, of "yes" 0


def test_unknown_model_is_rejected(tiny_table, tiny_schema):
    with pytest.raises(ValueError, match="model must be"):
        classifier_utility(tiny_table, tiny_table, tiny_schema, "svm")


def test_copies_of_private_rows_are_exact_copies_at_distance_zero(adult):
    schema, train, test = adult
    result = distance_to_closest_record(train.iloc[:500], train, test.iloc[:500], schema)
    assert result["exact_copy_share"] == 1.0
    assert result["synthetic_dcr_median"] == 0.0 and result["synthetic_dcr_p05"] == 0.0
    assert result["reference_dcr_median"] > 0.0


def test_random_rows_are_no_copies_and_lie_further_than_fresh_real_rows(adult):
    schema, train, test = adult
    result = distance_to_closest_record(random_rows(schema, train, 0).iloc[:500], train, test.iloc[:500], schema)
    assert result["exact_copy_share"] == 0.0
    assert result["synthetic_dcr_p05"] > result["reference_dcr_median"] > 0.0
    assert set(result) == {
        "synthetic_dcr_median",
        "synthetic_dcr_p05",
        "reference_dcr_median",
        "reference_dcr_p05",
        "exact_copy_share",
        "reference_exact_copy_share",
    }


def test_dcr_measures_distances_on_the_public_scale(tiny_table, tiny_schema):
    moved = tiny_table.iloc[[0]].assign(score=-0.8)  # score moved by 10% of its span
    recoloured = tiny_table.iloc[[0]].assign(colour="green")  # one category changed
    for synthetic, distance in ((moved, 0.1), (recoloured, 1.0)):
        result = distance_to_closest_record(synthetic, tiny_table, synthetic, tiny_schema)
        assert result["synthetic_dcr_median"] == pytest.approx(distance, abs=1e-5)
        assert result["synthetic_dcr_p05"] == pytest.approx(distance, abs=1e-5)
        assert result["exact_copy_share"] == 0.0


def test_the_majority_class_rate_is_that_of_the_training_tables_most_frequent_class(tiny_table, tiny_schema):
    mostly_yes = pd.concat([tiny_table, tiny_table[tiny_table["label"] == "yes"]])
    scores = classifier_utility(mostly_yes, tiny_table, tiny_schema, "logreg")
    assert scores["majority_accuracy"] == pytest.approx(0.5)  # "yes" is half of the test rows
    test = pd.concat([tiny_table, tiny_table[tiny_table["label"] == "no"]] * 2)
    assert classifier_utility(mostly_yes, test, tiny_schema, "logreg")["majority_accuracy"] == pytest.approx(4 / 12)

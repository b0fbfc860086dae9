"""The Spark engine: the same releases as the pandas engine, private rows left in the executors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dp_synth.modalities.tabular.settings import TabularSettings, plan_settings
from dp_synth.modalities.text.settings import TextSettings
from dp_synth.pe import histogram as dp_hist
from dp_synth.pe.accounting import noise_off_for_audit
from dp_synth.pe.contribution import bounded_contributions
from dp_synth.pe.engine import EmbeddedRows, EmbeddingLayout, LocalRows, content_fingerprint, private_rows
from dp_synth.pe.schema import SchemaError
from dp_synth.pe.spark_engine import SparkTaskError, spark_session
from dp_synth.pipelines.pe import nodes as pe_nodes
from dp_synth.pipelines.tabular.nodes import build_modality, load_private_data
from dp_synth.pipelines.text.nodes import load_private_corpus

RAW = Path(__file__).resolve().parents[2] / "data" / "01_raw"
ADULT_DIR, AGNEWS_DIR = RAW / "adult", RAW / "agnews"


@pytest.fixture(scope="module")
def spark() -> Iterator:
    session = spark_session({"spark.master": "local[2]", "spark.ui.enabled": "false", "spark.driver.memory": "1g"})
    yield session
    session.stop()


@pytest.fixture(scope="module")
def adult_raw() -> pd.DataFrame:
    """The bundled Adult training table as the catalog reads it (text, typed by the schema)."""
    return pd.read_csv(ADULT_DIR / "adult_train.csv", dtype=str, keep_default_na=False, na_values=[""])


def releases(data, engine: str, schema_json: dict, ledger: Path) -> dict[str, np.ndarray]:
    """Every release of a seeded tabular run (T = 1) with the noise switched off: the class
    counts, each generator statistic and the histogram, from private data of either engine."""
    requested = TabularSettings.parse(
        {"engine": engine, "dp": {"seed": 0, "ledger": str(ledger)}, "pe": {"iterations": 1, "population_size": 2000}},
        "tabular",
    )
    settings, _ = plan_settings(requested, schema_json)
    modality = build_modality(schema_json, settings)
    plan = pe_nodes.calibrate_privacy(modality, settings)
    run, _, table = pe_nodes.admit_run(
        schema_json, data, modality, plan, settings, job="tabular", load=load_private_data
    )
    statistics = pe_nodes.measure_generator_statistics(modality, table, plan, run)
    embeddings = pe_nodes.embed_private_data(modality, table, settings)
    weights = pe_nodes.measure_class_distribution(modality, table, plan, run)
    fitted = pe_nodes.apply_generator_statistics(modality, statistics)
    sizes = pe_nodes.allocate_population(weights, settings)
    candidates = pe_nodes.generate_initial_population(fitted, sizes, plan)
    histogram = pe_nodes.dp_histogram(
        fitted, candidates, fitted.embed(candidates), embeddings, plan, settings, run, iteration=1
    )
    made = {f"statistics {m.name} {i}": noisy for m in statistics.measurements for i, noisy in enumerate(m.noisy)}
    return {**made, "class counts": np.array(list(weights.values())), "histogram": histogram.noisy}


def test_spark_and_pandas_engines_release_identical_counts_on_adult(spark, adult_raw, adult_schema_json, tmp_path):
    with noise_off_for_audit():
        local = releases(adult_raw, "pandas", adult_schema_json, tmp_path / "pandas.db")
        spark_raw = spark.createDataFrame(adult_raw).repartition(3)
        distributed = releases(spark_raw, "spark", adult_schema_json, tmp_path / "spark.db")
    assert local.keys() == distributed.keys()
    assert {"statistics one_way 0", "statistics edges 0", "class counts", "histogram"} <= local.keys()
    for name, values in local.items():
        np.testing.assert_array_equal(distributed[name], values, err_msg=name)
    assert np.allclose(local["class counts"], [24720, 7841], atol=1e-3)  # the noise was off: the counts themselves


def test_a_sum_over_spark_partitions_is_the_sum_over_the_whole_table(spark):
    frame = pd.DataFrame({"label": list("abcab" * 40), "x": np.arange(200, dtype=np.int64)})
    distributed = private_rows(spark.createDataFrame(frame).repartition(7))
    counts = distributed.total(lambda part: np.array([len(part), part["x"].sum()], dtype=np.int64))
    np.testing.assert_array_equal(counts, [200, frame["x"].sum()])
    assert counts.dtype == np.int64  # exact counts stay exact
    key = bytes(32)
    assert content_fingerprint(spark.createDataFrame(frame).repartition(5), key) == content_fingerprint(frame, key)
    sample = distributed.sample(50, seed=1)
    assert len(sample) == 50 and set(sample["x"]) <= set(frame["x"])


def test_embedded_rows_travel_through_spark_and_back(spark):
    frame = pd.DataFrame({"label": ["a", "b", "a"], "x": [0.0, 1.0, 2.0]})
    embedded = private_rows(spark.createDataFrame(frame)).map_partitions(
        lambda part: EmbeddedRows(np.c_[part["x"], part["x"] * 2].astype(np.float32), part["label"].to_numpy()),
        EmbeddingLayout(),
    )
    sums = embedded.total(lambda part: part.embeddings.sum(axis=0).astype(np.float64))
    np.testing.assert_array_equal(sums, [3.0, 6.0])
    assert isinstance(LocalRows(frame).persisted(), LocalRows)


def test_invalid_values_on_spark_are_counted_in_the_executors_never_shown(spark, adult_raw, adult_schema_json):
    requested = TabularSettings.parse({"engine": "spark"}, "tabular")
    settings, _ = plan_settings(requested, adult_schema_json)
    modality = build_modality(adult_schema_json, settings)
    corrupt = adult_raw.head(300).assign(age=["9137"] * 100 + ["40"] * 200)
    distributed = spark.createDataFrame(corrupt).repartition(3)
    with pytest.raises(
        SchemaError, match=r"column 'age' has 100 values outside the declared domain \[17, 90\]"
    ) as error:
        load_private_data(distributed, modality, "stop")  # the total over partitions, raised on the driver
    assert "9137" not in str(error.value) and "not differentially private" in str(error.value)
    for on_invalid, kept in (("clamp", 300), ("drop", 200)):
        rows = load_private_data(distributed, modality, on_invalid)
        assert rows.total(lambda part: np.array([len(part)]))[0] == kept
        assert rows.total(lambda part: np.array([(part["age"] > 90).sum()]))[0] == 0
    with pytest.raises(SparkTaskError, match=r"^SchemaError: table columns do not match the schema: missing \['age'\]"):
        rows = load_private_data(spark.createDataFrame(corrupt.drop(columns="age")), modality, "clamp")
        rows.total(lambda part: np.array([len(part)]))


def test_private_data_of_the_other_engine_is_refused_with_the_setting_to_change(adult_raw, adult_schema_json, tmp_path):
    requested = TabularSettings.parse({"engine": "spark", "dp": {"ledger": str(tmp_path / "l.db")}}, "tabular")
    settings, _ = plan_settings(requested, adult_schema_json)
    modality = build_modality(adult_schema_json, settings)
    plan = pe_nodes.calibrate_privacy(modality, settings)
    with pytest.raises(ValueError, match=r"declare tabular.private_data as spark.SparkDataset"):
        pe_nodes.admit_run(
            adult_schema_json, adult_raw, modality, plan, settings, job="tabular", load=load_private_data
        )


def test_private_texts_are_embedded_in_the_executors_with_the_same_votes(spark):
    from tests.modalities.text.test_modality import RecordingGenerator, make_modality

    modality = make_modality(RecordingGenerator())
    raw = pd.read_csv(AGNEWS_DIR / "agnews_train.csv", dtype=str, keep_default_na=False).head(120)
    settings = TextSettings.parse({"pe": {"iterations": 1}}, "text")
    candidates = load_private_corpus(raw.tail(40), modality, "stop")
    candidate_embeddings = modality.embed(candidates)
    votes = dp_hist.PartitionVotes(candidate_embeddings, candidates["label"].to_numpy(), k=1)
    results = []
    for data in (raw, spark.createDataFrame(raw).repartition(3)):
        table = load_private_corpus(data, modality, "stop")
        embedded = private_rows(pe_nodes.embed_private_data(modality, table, settings))
        results.append((embedded.total(votes), embedded.total(lambda part: part.embeddings.sum(axis=0))))
    (local_votes, local_sums), (spark_votes, spark_sums) = results
    np.testing.assert_array_equal(spark_votes, local_votes)
    np.testing.assert_allclose(spark_sums, local_sums, atol=1e-4)  # batches pad differently: rounding only


def test_a_privacy_unit_is_bounded_in_the_executors(spark):
    persons = np.repeat(np.arange(6), [1, 2, 5, 9, 3, 12])
    table = pd.DataFrame({"person": persons, "value": np.arange(len(persons))})
    bounded = bounded_contributions(spark.createDataFrame(table), "person", 3, np.random.default_rng(0))
    assert bounded.columns == ["value"]
    kept = table.set_index("value").loc[bounded.toPandas()["value"], "person"].value_counts().sort_index()
    assert kept.to_dict() == {0: 1, 1: 2, 2: 3, 3: 3, 4: 3, 5: 3}

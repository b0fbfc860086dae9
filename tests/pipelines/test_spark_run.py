"""``kedro run --pipelines=tabular`` with the Spark engine: the private table is a Spark dataset."""

from __future__ import annotations

import builtins
import json
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest

from dp_synth.hooks.spark_session import SparkSessionHook
from dp_synth.modalities.tabular.schema import conform, parse_schema
from tests.conftest import kedro


def test_kedro_run_on_the_spark_engine_reads_a_parquet_table_through_spark(project):
    adult = project / "data/01_raw/adult"
    table = pd.read_csv(adult / "adult_train.csv", dtype=str, keep_default_na=False).head(3000)
    table.to_parquet(adult / "adult_train.parquet")
    local = project / "conf/local"
    (local / "catalog.yml").write_text(
        "tabular.private_data:\n  type: spark.SparkDataset\n"
        "  filepath: data/01_raw/adult/adult_train.parquet\n  file_format: parquet\n"
    )
    (local / "parameters_tabular.yml").write_text("tabular:\n  engine: spark\n")
    (local / "spark.yml").write_text("spark.master: local[2]\nspark.ui.enabled: false\n")
    small = "tabular.pe.population_size=200,tabular.release.rows=300,tabular.dp.seed=1"
    result = kedro(project, "run", "--pipelines=tabular", "--params", small, iterations=1)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "Spark session on local[2]" in result.stdout + result.stderr

    schema = parse_schema(json.loads((adult / "schema.json").read_text()))
    (release,) = (project / "data/07_model_output/tabular/synthetic_data.csv").iterdir()
    assert len(conform(pd.read_csv(release / "synthetic_data.csv", dtype=str), schema)) == 300
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["dp-synth"], output_format="list")
    assert run.data.params["settings.engine"] == "spark"

    # The wrong dataset type for the engine stops the run before any private row is read.
    (local / "parameters_tabular.yml").write_text("tabular:\n  engine: pandas\n")
    refused = kedro(project, "run", "--pipelines=tabular", "--params", small, iterations=1)
    assert refused.returncode != 0
    assert "declare tabular.private_data as a pandas dataset" in refused.stdout + refused.stderr


def test_a_spark_catalog_without_the_spark_extra_names_the_install_command(monkeypatch):
    real_import = builtins.__import__

    def without_pyspark(name, *args, **kwargs):
        if name == "pyspark" or name.startswith(("pyspark.", "dp_synth.pe.spark_engine")):
            raise ModuleNotFoundError(f"No module named {name!r}", name="pyspark")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_pyspark)
    config = {"catalog": {"tabular.private_data": {"type": "spark.SparkDataset"}}, "spark": {}}
    context = SimpleNamespace(config_loader=config)
    with pytest.raises(
        ModuleNotFoundError, match=r"needs the spark extra \(pyspark is missing\): pip install -e '.\[spark\]'"
    ):
        SparkSessionHook().after_context_created(context)
    SparkSessionHook().after_context_created(
        SimpleNamespace(config_loader={"catalog": {"a": {"type": "pandas.CSVDataset"}}})
    )

"""Starts the Spark session of a job that reads Spark datasets."""

from __future__ import annotations

from collections.abc import Mapping

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl


class SparkSessionHook:
    """Starts the Spark engine's session before any dataset is read, when the catalog declares
    a Spark dataset (a job with ``engine: spark``): ``conf/<env>/spark.yml`` gives the master
    (``local[*]`` by default, a cluster's URL in ``conf/local/spark.yml``) and any other
    ``spark.*`` option. Without a Spark dataset, Spark is never imported."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Create the session that kedro-datasets' Spark datasets will then use."""
        entries = context.config_loader["catalog"].values()
        if not any(isinstance(entry, Mapping) and "Spark" in str(entry.get("type", "")) for entry in entries):
            return
        try:
            from dp_synth.pe.spark_engine import spark_session  # the spark extra: imported only when used
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError(
                f"the catalog declares a Spark dataset, which needs the spark extra ({error.name} is missing): "
                "pip install -e '.[spark]', or make install-all",
                name=error.name,
            ) from None
        spark_session(dict(context.config_loader["spark"]))

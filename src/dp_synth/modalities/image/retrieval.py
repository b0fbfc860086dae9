"""Sim-PE's retrieval simulator: a public image set is the generator.

The random API returns random public images (of the candidate's class, if the public set is
labelled); the variation API returns one of the public images nearest to the survivor in the
embedding space, drawn uniformly from its neighbourhood of the ``ceil(r x m)`` nearest (itself
included), where m is the number of public images it may be replaced by and r = r(t) the
variation degree: wide early, narrow late. A candidate carries the index of its public image
(``public_index``), so nothing is embedded twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from dp_synth.modalities.image.modality import IMAGE, LABEL, ImageSchema, image_column
from dp_synth.pe.schema import SchemaError

PUBLIC_INDEX = "public_index"
"""The population column holding each candidate's row in the public image set."""

_QUERY_CHUNK = 256
"""Survivors whose distances to the public images are computed at once."""


@dataclass(frozen=True)
class RetrievalSimulator:
    """Random and variation APIs that draw from a public image set.

    Attributes:
        schema: The classes and image shape (the public images have that shape).
        images: The public images, (m, H, W, C) float32 in [0, 1].
        labels: The public images' classes, or ``None`` for an unlabelled set (every candidate
            may then become any public image; the private votes pick those of its class).
        embed: The embedding of the vote, applied to (n, H, W, C) images; the neighbourhoods are
            taken in it. The public images are embedded once, on first variation.
    """

    schema: ImageSchema
    images: np.ndarray
    labels: np.ndarray | None
    embed: Callable[[np.ndarray], np.ndarray]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.shape[1:] != self.schema.shape or len(self.images) == 0:
            raise SchemaError(f"public images: expected (m >= 1, *{self.schema.shape}), got {self.images.shape}")
        if self.labels is None:
            return
        undeclared = sorted({str(label) for label in self.labels} - set(self.schema.classes))
        missing = [label for label in self.schema.classes if label not in set(self.labels)]
        if undeclared or missing:
            raise SchemaError(
                f"public images: subfolders {undeclared} are not declared classes; declared classes {missing} "
                "have no public image (a labelled public folder holds one subfolder per declared class)"
            )

    @property
    def description(self) -> str:
        """The public set."""
        kind = "labelled" if self.labels is not None else "unlabelled"
        return f"retrieval simulator ({len(self.images)} {kind} public images)"

    @cached_property
    def _pools(self) -> dict[str, np.ndarray]:
        """Each class's candidates: its public images, or all of them when unlabelled."""
        everything = np.arange(len(self.images))
        if self.labels is None:
            return dict.fromkeys(self.schema.classes, everything)
        return {label: everything[self.labels == label] for label in self.schema.classes}

    @cached_property
    def _embeddings(self) -> np.ndarray:
        return np.asarray(self.embed(self.images), dtype=np.float32)

    def _candidates(self, indices: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({PUBLIC_INDEX: indices, IMAGE: image_column(self.images[indices])})

    def random(self, labels: Sequence[str], rng: np.random.Generator) -> pd.DataFrame:
        """Public images drawn uniformly (with replacement) from each label's pool."""
        return self._candidates(np.array([rng.choice(self._pools[label]) for label in labels], dtype=np.int64))

    def vary(self, candidates: pd.DataFrame, degree: float, rng: np.random.Generator) -> pd.DataFrame:
        """Each candidate replaced by a public image drawn uniformly from its ``ceil(degree x m)``
        nearest in its pool of m (at least one: itself)."""
        current = candidates[PUBLIC_INDEX].to_numpy(dtype=np.int64)
        chosen = current.copy()
        labels = candidates[LABEL].to_numpy()
        for label in pd.unique(labels):
            rows = np.flatnonzero(labels == label)
            pool = self._pools[label]
            size = min(len(pool), max(1, math.ceil(round(degree * len(pool), 9))))
            neighbours = self._nearest(current[rows], pool, size)
            chosen[rows] = neighbours[np.arange(len(rows)), rng.integers(size, size=len(rows))]
        return self._candidates(chosen)

    def _nearest(self, queries: np.ndarray, pool: np.ndarray, size: int) -> np.ndarray:
        """The ``size`` images of ``pool`` nearest to each public image in ``queries`` (L2 in the
        embedding; in no particular order), as (len(queries), size) public indices."""
        if size == len(pool):
            return np.tile(pool, (len(queries), 1))
        pool_embeddings = self._embeddings[pool]
        pool_norms = (pool_embeddings.astype(np.float64) ** 2).sum(axis=1)
        out = np.empty((len(queries), size), dtype=np.int64)
        for begin in range(0, len(queries), _QUERY_CHUNK):
            query = self._embeddings[queries[begin : begin + _QUERY_CHUNK]].astype(np.float64)
            distances = pool_norms[None, :] - 2.0 * query @ pool_embeddings.T.astype(np.float64)
            nearest = np.argpartition(distances, size - 1, axis=1)[:, :size]
            out[begin : begin + len(query)] = pool[nearest]
        return out

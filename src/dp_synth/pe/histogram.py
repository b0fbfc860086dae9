"""The DP nearest-neighbour histogram: the only place where private records are used.

Each private record votes for its ``k`` nearest candidates of its own class, each vote of
weight ``1 / sqrt(k)``. Adding or removing one record therefore changes the vote vector by
at most ``sqrt(k * (1/sqrt(k))**2) = 1`` in L2 norm, whatever k, whatever the classes:
the Gaussian mechanism with noise multiplier sigma applies with sensitivity 1.

The histogram may be released over bins of candidates instead of single candidates (identical
candidates, ``distinct_candidates``; similar ones, ``cluster_bins``): a record's votes are then
counted per bin and scaled so its vote vector still has L2 norm at most 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np

from dp_synth.pe.engine import EmbeddedRows
from dp_synth.pe.noise import Noise, as_source

RERANK_MARGIN = 4
"""Candidates beyond k that faiss shortlists for the exact ranking (``nearest_candidates``)."""
RERANK_ROWS = 4096
"""Private rows ranked at once (bounds the float64 distance block's memory)."""
KMEANS_ITERATIONS = 10
"""Lloyd iterations of the k-means that groups candidates into bins (``cluster_bins``)."""


@dataclass(frozen=True)
class NoisyHistogram:
    """A released histogram over the candidates of one iteration.

    Attributes:
        noisy: Votes plus Gaussian noise (the DP release; ``noise`` says how it is drawn).
        thresholded: ``max(noisy - threshold, 0)``, what selection uses.
        bins: The bin of every candidate when the histogram was released over bins and spread
            over their members (``spread_over_groups``); ``None``: one bin per candidate.
    """

    noisy: np.ndarray
    thresholded: np.ndarray
    bins: np.ndarray | None = None

    @property
    def released(self) -> np.ndarray:
        """The noisy count of every bin, as released: the shares of its members summed."""
        return self.noisy if self.bins is None else np.bincount(self.bins, weights=self.noisy)


def _bins_of(bins: np.ndarray | None, candidates: int) -> tuple[np.ndarray, int]:
    """The bin of every candidate (one bin each when ``bins`` is ``None``) and the number of bins."""
    bins = np.arange(candidates) if bins is None else np.asarray(bins, dtype=np.int64)
    return bins, int(bins.max()) + 1 if len(bins) else 0


def nearest_candidates(private: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """The k nearest candidates of every private row, shape (n, k): the same whatever batch the
    rows come in.

    faiss ranks in float32 through BLAS, whose last bits depend on where a row falls in the
    batch: two candidates about equally near a row could swap between the pandas engine (one
    batch) and the Spark engine (a batch per partition), and the engines' histograms differ.
    So faiss shortlists ``RERANK_MARGIN`` more candidates than needed, and the shortlist is
    ranked again on float64 distances, ties broken by the candidate's index.
    """
    stored = np.ascontiguousarray(candidates, dtype=np.float32)
    index = faiss.IndexFlatL2(stored.shape[1])
    index.add(stored)
    query = np.ascontiguousarray(private, dtype=np.float32)
    _, shortlist = index.search(query, min(k + RERANK_MARGIN, len(candidates)))
    chosen = np.empty((len(private), k), dtype=np.int64)
    exact = stored.astype(np.float64)  # the values faiss ranked, in float64
    for start in range(0, len(private), RERANK_ROWS):
        rows = slice(start, start + RERANK_ROWS)
        listed = shortlist[rows]
        distances = ((exact[listed] - query[rows, None, :].astype(np.float64)) ** 2).sum(axis=2)
        order = np.lexsort((listed, distances), axis=-1)[:, :k]
        chosen[rows] = np.take_along_axis(listed, order, axis=1)
    return chosen


def nearest_neighbour_votes(
    private: np.ndarray, candidates: np.ndarray, k: int, bins: np.ndarray | None = None
) -> np.ndarray:
    """Return each bin's vote mass: every private row votes for its k nearest candidates.

    Without ``bins`` each candidate is its own bin and gets 1/sqrt(k) from each record that has
    it among its k nearest. With ``bins`` (the bin of every candidate, 0..B-1) a record's votes
    are counted per bin: m_b of its neighbours in bin b give that bin m_b / sqrt(max(k, sum_b
    m_b^2)), so one record's vote vector never exceeds 1 in L2 norm even when several of its
    neighbours share a bin (and is exactly 1/sqrt(k) per neighbour when none do).

    Args:
        private: Private embeddings, shape (n, d).
        candidates: Candidate embeddings, shape (m, d), m >= 1.
        k: Votes per private record, >= 1. With fewer than k candidates each record votes
            for all of them, still with weight 1/sqrt(k), so sensitivity stays <= 1.
        bins: Bin of every candidate, shape (m,), or ``None`` for one bin per candidate.

    Returns:
        Vote mass per bin, shape (B,) (B = m without ``bins``), float64.
    """
    if k < 1:
        raise ValueError(f"nearest_neighbours must be >= 1, got {k}")
    bins, size = _bins_of(bins, len(candidates))
    if len(private) == 0 or len(candidates) == 0:
        return np.zeros(size, dtype=np.float64)
    neighbours = nearest_candidates(private, candidates, min(k, len(candidates)))
    records = np.repeat(np.arange(len(private)), neighbours.shape[1])
    pairs, multiplicity = np.unique(np.column_stack([records, bins[neighbours.ravel()]]), axis=0, return_counts=True)
    squares = np.bincount(pairs[:, 0], weights=multiplicity.astype(np.float64) ** 2, minlength=len(private))
    weights = multiplicity / np.sqrt(np.maximum(float(k), squares[pairs[:, 0]]))
    return np.bincount(pairs[:, 1], weights=weights, minlength=size)


def class_conditional_votes(
    private: np.ndarray,
    private_labels: np.ndarray,
    candidates: np.ndarray,
    candidate_labels: np.ndarray,
    k: int,
    bins: np.ndarray | None = None,
) -> np.ndarray:
    """Return vote mass per bin (per candidate without ``bins``) where each private record
    votes only within its class; a bin holds candidates of one class (``cluster_bins``).

    A record whose class has no candidates casts no vote (that only lowers sensitivity).
    """
    bins, size = _bins_of(bins, len(candidates))
    votes = np.zeros(size, dtype=np.float64)
    for label in np.unique(candidate_labels):
        in_class = np.flatnonzero(candidate_labels == label)
        class_bins, local = np.unique(bins[in_class], return_inverse=True)
        votes[class_bins] += nearest_neighbour_votes(private[private_labels == label], candidates[in_class], k, local)
    return votes


@dataclass(frozen=True)
class PartitionVotes:
    """``class_conditional_votes`` of one partition of embedded private rows against fixed
    candidates: a record's votes depend on it and the candidates alone, so the votes of the
    whole private data are the sum over its partitions (``engine.PrivateRows.total``).

    Attributes:
        candidates: Candidate embeddings, shape (m, d).
        candidate_labels: Each candidate's class.
        k: Votes per private record.
        bins: Bin of every candidate, or ``None``.
    """

    candidates: np.ndarray
    candidate_labels: np.ndarray
    k: int
    bins: np.ndarray | None = None

    def __call__(self, partition: EmbeddedRows) -> np.ndarray:
        return class_conditional_votes(
            partition.embeddings, partition.labels, self.candidates, self.candidate_labels, self.k, self.bins
        )


def cluster_bins(embeddings: np.ndarray, labels: np.ndarray, candidates_per_bin: int, seed: int) -> np.ndarray:
    """Group the candidates of each class into bins of about ``candidates_per_bin`` similar ones.

    k-means (faiss, ``seed``) on the candidates' embeddings, per class, with
    ceil(class size / ``candidates_per_bin``) centroids; each candidate's bin is its centroid's.
    Candidates are public, so the bins are too. A bin then collects the votes of all its members
    under one noise draw: with N candidates and about as many private records, a single
    candidate gets about one vote against noise of sigma, but a bin of c candidates gets about c.

    Returns:
        The bin of every candidate, numbered 0..B-1 without gaps; bins never mix classes.
    """
    if not isinstance(candidates_per_bin, int) or candidates_per_bin < 1:
        raise ValueError(f"candidates_per_bin must be an integer >= 1, got {candidates_per_bin!r}")
    bins = np.zeros(len(labels), dtype=np.int64)
    offset = 0
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        centroids = -(-len(members) // candidates_per_bin)
        if centroids >= len(members):
            assigned = np.arange(len(members))
        else:
            points = np.ascontiguousarray(embeddings[members], dtype=np.float32)
            kmeans = faiss.Kmeans(
                points.shape[1], centroids, niter=KMEANS_ITERATIONS, seed=seed, min_points_per_centroid=1
            )
            kmeans.train(points)
            assigned = np.unique(kmeans.index.search(points, 1)[1].ravel(), return_inverse=True)[1]
        bins[members] = offset + assigned
        offset += int(assigned.max()) + 1
    return bins


def release(
    votes: np.ndarray, sigma: float, threshold: float, noise: Noise, sensitivity: float = 1.0
) -> NoisyHistogram:
    """Apply the Gaussian mechanism (L2 ``sensitivity``, 1 under add/remove) and the threshold
    to a vote vector. The votes are not integers (weights 1/sqrt(k), shares of bins): secure
    noise rounds them to its lattice and charges that rounding (``noise.secure_gaussian``)."""
    noisy = as_source(noise).add(votes, sigma, sensitivity)
    return NoisyHistogram(noisy=noisy, thresholded=np.maximum(noisy - threshold, 0.0))


def distinct_candidates(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group identical candidates (same class, same embedding), which a population often holds:
    survivors drawn more than once, variations that changed nothing.

    Returns:
        ``(first, group)``: the index of one member of each group, and each candidate's group.
    """
    codes = np.unique(labels, return_inverse=True)[1].reshape(-1, 1)
    keys = np.hstack([codes.astype(np.float64), embeddings.astype(np.float64)])
    _, first, group = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return first, group.ravel()


def spread_over_groups(histogram: NoisyHistogram, group: np.ndarray) -> NoisyHistogram:
    """A histogram released over groups (bins) of candidates, identical or similar, as a
    per-candidate histogram: each member gets an equal share of its group's count
    (post-processing of the release).

    Voting over groups keeps the sensitivity at 1 (``nearest_neighbour_votes``) while a group's
    votes no longer pile onto one member and its noise no longer adds up over its members.
    """
    sizes = np.bincount(group).astype(np.float64)
    return NoisyHistogram(
        noisy=histogram.noisy[group] / sizes[group],
        thresholded=histogram.thresholded[group] / sizes[group],
        bins=group,
    )

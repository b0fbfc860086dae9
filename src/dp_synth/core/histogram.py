"""The DP nearest-neighbour histogram: the only place where private records are used.

Each private record votes for its ``k`` nearest candidates of its own class, each vote of
weight ``1 / sqrt(k)``. Adding or removing one record therefore changes the vote vector by
at most ``sqrt(k * (1/sqrt(k))**2) = 1`` in L2 norm, whatever k, whatever the classes:
the Gaussian mechanism with noise multiplier sigma applies with sensitivity 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np


@dataclass(frozen=True)
class NoisyHistogram:
    """A released histogram over the candidates of one iteration.

    Attributes:
        noisy: Votes plus Gaussian noise (the DP release).
        thresholded: ``max(noisy - threshold, 0)``, what selection uses.
    """

    noisy: np.ndarray
    thresholded: np.ndarray


def nearest_neighbour_votes(private: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """Return each candidate's vote mass: every private row gives 1/sqrt(k) to its k nearest.

    Args:
        private: Private embeddings, shape (n, d).
        candidates: Candidate embeddings, shape (m, d), m >= 1.
        k: Votes per private record, >= 1. With fewer than k candidates each record votes
            for all of them, still with weight 1/sqrt(k), so sensitivity stays <= 1.

    Returns:
        Vote mass per candidate, shape (m,), float64.
    """
    if k < 1:
        raise ValueError(f"nearest_neighbours must be >= 1, got {k}")
    votes = np.zeros(len(candidates), dtype=np.float64)
    if len(private) == 0 or len(candidates) == 0:
        return votes
    index = faiss.IndexFlatL2(candidates.shape[1])
    index.add(np.ascontiguousarray(candidates, dtype=np.float32))
    _, neighbours = index.search(np.ascontiguousarray(private, dtype=np.float32), min(k, len(candidates)))
    np.add.at(votes, neighbours.ravel(), 1.0 / np.sqrt(k))
    return votes


def class_conditional_votes(
    private: np.ndarray,
    private_labels: np.ndarray,
    candidates: np.ndarray,
    candidate_labels: np.ndarray,
    k: int,
) -> np.ndarray:
    """Return vote mass per candidate where each private record votes only within its class.

    A record whose class has no candidates casts no vote (that only lowers sensitivity).
    """
    votes = np.zeros(len(candidates), dtype=np.float64)
    for label in np.unique(candidate_labels):
        in_class = np.flatnonzero(candidate_labels == label)
        votes[in_class] = nearest_neighbour_votes(private[private_labels == label], candidates[in_class], k)
    return votes


def release(votes: np.ndarray, sigma: float, threshold: float, rng: np.random.Generator) -> NoisyHistogram:
    """Apply the Gaussian mechanism (sensitivity 1) and the threshold to a vote vector."""
    noisy = votes + rng.normal(0.0, sigma, size=votes.shape)
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
    """A histogram released over groups of identical candidates, as a per-candidate histogram:
    each member gets an equal share of its group's count (post-processing of the release).

    Voting over groups keeps the sensitivity at 1 (a record votes for one group, or k) while a
    group's votes no longer pile onto one member and its noise no longer adds up over copies.
    """
    sizes = np.bincount(group).astype(np.float64)
    return NoisyHistogram(
        noisy=histogram.noisy[group] / sizes[group], thresholded=histogram.thresholded[group] / sizes[group]
    )

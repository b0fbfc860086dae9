"""Quality of a synthetic set measured in an embedding space (text and images).

Frechet distance between Gaussian fits of two embedding clouds, precision and recall against
k-nearest-neighbour manifold estimates (Kynkaanniemi et al., 2019), and the accuracy of a
logistic regression trained on one labelled set and tested on another. These are diagnostics
for the data owner, computed against held-out real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.neighbors import NearestNeighbors


@dataclass(frozen=True)
class GaussianFit:
    """Mean and covariance of an embedding cloud (what a Frechet distance compares)."""

    mean: np.ndarray
    covariance: np.ndarray

    @classmethod
    def of(cls, embeddings: np.ndarray) -> GaussianFit:
        """Fit ``embeddings`` (rows, dimensions); needs at least two rows."""
        if len(embeddings) < 2:
            raise ValueError(f"a Gaussian fit needs at least 2 embeddings, got {len(embeddings)}")
        return cls(embeddings.mean(axis=0), np.cov(embeddings, rowvar=False))


@dataclass(frozen=True)
class EmbeddedReference:
    """Held-out real data as the diagnostics use it: embedded once.

    Attributes:
        embeddings: One row per held-out record.
        labels: Their classes.
        fit: The Gaussian fit of the embeddings (what a Frechet distance compares with).
    """

    embeddings: np.ndarray
    labels: np.ndarray
    fit: GaussianFit

    @classmethod
    def of(cls, embeddings: np.ndarray, labels: np.ndarray) -> EmbeddedReference:
        """Embeddings and labels, with their Gaussian fit."""
        return cls(embeddings, labels, GaussianFit.of(embeddings))


def frechet_distance(first: GaussianFit, second: GaussianFit) -> float:
    """Squared Frechet distance ||m1 - m2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)).

    tr((C1 C2)^(1/2)) is the sum of the square roots of C1 C2's eigenvalues, which are real and
    non-negative (C1 C2 is similar to a positive semi-definite matrix); rounding is clipped.
    """
    eigenvalues = np.linalg.eigvals(first.covariance @ second.covariance).real
    cross = np.sqrt(np.clip(eigenvalues, 0.0, None)).sum()
    difference = first.mean - second.mean
    value = difference @ difference + np.trace(first.covariance) + np.trace(second.covariance) - 2.0 * cross
    return float(max(value, 0.0))


def _radii(embeddings: np.ndarray, k: int) -> np.ndarray:
    """Distance of every point to its k-th nearest other point."""
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(embeddings).kneighbors(embeddings)
    return distances[:, k]


def _coverage(manifold: np.ndarray, radii: np.ndarray, queries: np.ndarray) -> float:
    """Share of ``queries`` inside at least one ball (manifold point, its radius)."""
    index = NearestNeighbors().fit(manifold)
    inside = np.zeros(len(queries), dtype=bool)
    max_radius = radii.max()
    neighbours = index.radius_neighbors(queries, radius=max_radius, return_distance=True)
    for row, (distances, members) in enumerate(zip(*neighbours, strict=True)):
        inside[row] = bool(np.any(distances <= radii[members]))
    return float(inside.mean())


def precision_recall(real: np.ndarray, synthetic: np.ndarray, k: int = 3) -> dict[str, float]:
    """Precision (share of synthetic points on the real manifold) and recall (share of real
    points on the synthetic manifold), each manifold the union of k-NN balls of its points."""
    if min(len(real), len(synthetic)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} points in each set")
    return {
        "precision": _coverage(real, _radii(real, k), synthetic),
        "recall": _coverage(synthetic, _radii(synthetic, k), real),
    }


def classifier_accuracy(
    train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray, seed: int
) -> dict[str, float]:
    """Accuracy and macro-F1 on ``test`` of a logistic regression trained on ``train``.

    A training set with a single class predicts that class everywhere.
    """
    if len(np.unique(train_labels)) < 2:
        predicted = np.full(len(test_labels), train_labels[0])
    else:
        model = LogisticRegression(max_iter=1000, random_state=seed).fit(train, train_labels)
        predicted = model.predict(test)
    return {
        "accuracy": float(accuracy_score(test_labels, predicted)),
        "macro_f1": float(f1_score(test_labels, predicted, average="macro")),
    }

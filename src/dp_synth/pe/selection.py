"""Selection of survivors from a released histogram, and class-size allocation.

Everything here is post-processing of DP releases: it costs no privacy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def allocate_class_sizes(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` rows across classes proportionally to ``weights``, at least 1 each.

    Uses the largest-remainder method so the sizes add up to ``total`` exactly. Non-positive
    weights (a noisy count can be negative) are raised to a floor so every class keeps a row.

    Raises:
        ValueError: if ``total`` is smaller than the number of classes.
    """
    classes = list(weights)
    if total < len(classes):
        raise ValueError(
            f"population_size N={total} is smaller than the number of classes ({len(classes)}); "
            "every class needs at least one synthetic row"
        )
    raw = np.array([max(float(weights[label]), 0.0) for label in classes])
    shares = raw / raw.sum() if raw.sum() > 0 else np.full(len(classes), 1.0 / len(classes))
    spare = total - len(classes)
    exact = shares * spare
    sizes = np.floor(exact).astype(int)
    remainder_order = np.argsort(-(exact - sizes), kind="stable")
    sizes[remainder_order[: spare - sizes.sum()]] += 1
    return {label: int(size) + 1 for label, size in zip(classes, sizes, strict=True)}


def sample_proportional(
    weights: np.ndarray,
    labels: np.ndarray,
    class_sizes: Mapping[str, int],
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw ``class_sizes[c]`` candidate indices per class, with replacement, proportional to weights.

    A class whose weights are all zero is drawn uniformly (the histogram says nothing there).
    """
    chosen = []
    for label, size in class_sizes.items():
        in_class = np.flatnonzero(labels == label)
        class_weights = weights[in_class]
        total = class_weights.sum()
        probabilities = class_weights / total if total > 0 else None
        chosen.append(rng.choice(in_class, size=size, replace=True, p=probabilities))
    return np.concatenate(chosen)


def top_by_count(weights: np.ndarray, labels: np.ndarray, class_sizes: Mapping[str, int]) -> np.ndarray:
    """Return the indices of the ``class_sizes[c]`` highest-weight candidates of each class.

    Ties are broken by candidate order, so the result is deterministic given the histogram.
    """
    chosen = []
    for label, size in class_sizes.items():
        in_class = np.flatnonzero(labels == label)
        order = np.argsort(-weights[in_class], kind="stable")
        chosen.append(in_class[order[:size]])
    return np.concatenate(chosen)

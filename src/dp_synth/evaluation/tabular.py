"""Fidelity, utility and privacy-leak metrics for a synthetic table against real tables.

Every bound and category comes from the public ``TableSchema``, never from the rows, so
two tables are always measured on the same grid. Tables are expected to be conformed to
the schema (see ``dp_synth.modalities.tabular.schema.conform``). The metrics return aggregate numbers
only; no row is ever returned.

* ``marginal_tvd``: mean total variation distance of k-way marginals over discretised columns.
* ``wasserstein_kway``: mean exact k-way Wasserstein distance between equal-size subsamples.
* ``classifier_utility``: train on one table, score on another (accuracy and macro F1).
* ``distance_to_closest_record``: how close synthetic rows lie to private rows, against the
  baseline of held-out real rows, plus the share of exact copies.
"""

from __future__ import annotations

import itertools
import math

import faiss
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

from dp_synth.modalities.tabular.cells import encode_rows
from dp_synth.modalities.tabular.schema import Column, TableSchema, category_codes

DEFAULT_BINS = 10
"""Equal-width bins per numeric column. With k = 3 and three numeric columns this makes
1,000 cells, about one row per cell for a 1,000-row synthetic table: finer grids make the
TVD mostly measure the sampling noise of small tables, coarser ones hide a column's shape."""

DEFAULT_SAMPLE_SIZE = 500
"""Rows drawn from each table per subset for the exact transport. The assignment costs
O(n^3): 500 rows take about 15 ms per subset (1,000 rows about 100 ms)."""

DEFAULT_MAX_SUBSETS = 50
"""Subsets of columns averaged by ``wasserstein_kway`` when there are more of them. On Adult
(15 columns) k = 1, 2, 3 then solve 15 + 50 + 50 assignments: about 1.5 s on 2 cores."""

DEFAULT_CATEGORICAL_WEIGHT = 1.0 / math.sqrt(2.0)
"""One-hot scale in the DCR embedding: two different categories are then at distance 1, the
same as a numeric column moved across its whole public span (as in the Wasserstein cost)."""

MODELS = ("gbm", "rf", "logreg")
_FOREST_TREES = 100
_MAX_CELLS = 1 << 22
_LOGREG_MAX_ITER = 2000


def _scaled(values: pd.Series, column: Column) -> np.ndarray:
    """Numeric values mapped to [0, 1] on the column's public bounds."""
    return (values.to_numpy(dtype=np.float64) - column.low) / column.span


def _cardinality(column: Column, bins: int) -> int:
    return bins if column.is_numeric else len(column.categories)


def _subsets(n_columns: int, k: int) -> list[tuple[int, ...]]:
    if not 1 <= k <= n_columns:
        raise ValueError(f"k must be between 1 and the number of columns ({n_columns}), got {k}")
    return list(itertools.combinations(range(n_columns), k))


def discretise(table: pd.DataFrame, schema: TableSchema, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Return an int64 code per cell, one column per schema column (schema order).

    Numeric columns fall into ``bins`` equal-width bins on the public [min, max] (the max
    lands in the last bin); categorical columns get the index of their declared category.

    Args:
        table: Rows conformed to ``schema``.
        schema: The public domain.
        bins: Bins per numeric column.

    Returns:
        Array of shape ``(len(table), len(schema.columns))``.
    """
    if bins < 1:
        raise ValueError(f"bins must be positive, got {bins}")
    codes = np.empty((len(table), len(schema.columns)), dtype=np.int64)
    for j, column in enumerate(schema.columns):
        values = table[column.name]
        if column.is_numeric:
            codes[:, j] = np.clip(np.floor(_scaled(values, column) * bins), 0, bins - 1)
        else:
            codes[:, j] = category_codes(values, column)
    return codes


def _joint_codes(
    real: np.ndarray, synthetic: np.ndarray, cardinalities: list[int]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Combine per-column codes into one cell code per row; return both codes and the cell count."""
    real_joint, synthetic_joint, cells = real[:, 0], synthetic[:, 0], cardinalities[0]
    for j in range(1, real.shape[1]):
        if cells * cardinalities[j] > _MAX_CELLS:  # re-number the cells actually used
            used, inverse = np.unique(np.concatenate([real_joint, synthetic_joint]), return_inverse=True)
            real_joint, synthetic_joint, cells = inverse[: len(real_joint)], inverse[len(real_joint) :], len(used)
        real_joint = real_joint * cardinalities[j] + real[:, j]
        synthetic_joint = synthetic_joint * cardinalities[j] + synthetic[:, j]
        cells *= cardinalities[j]
    return real_joint, synthetic_joint, cells


def marginal_tvd(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    k: int,
    bins: int = DEFAULT_BINS,
    max_subsets: int | None = None,
) -> float:
    """Mean total variation distance between real and synthetic k-way marginals.

    Both tables are discretised on the public grid (``discretise``); for every k-subset of
    columns (label included) the TVD ``0.5 * sum |p - q|`` of the two empirical joint
    distributions is computed, and the mean over subsets is returned (0 = identical, 1 = disjoint).

    Args:
        real: Real rows conformed to ``schema``.
        synthetic: Synthetic rows conformed to ``schema``.
        schema: The public domain.
        k: Marginal order, from 1 to the number of columns.
        bins: Bins per numeric column.
        max_subsets: Most subsets averaged: beyond it, a sample of them fixed by the schema
            alone (seed 0), so every table scored on one schema meets the same subsets.
    """
    if len(real) == 0 or len(synthetic) == 0:
        raise ValueError("both tables need at least one row")
    real_codes, synthetic_codes = discretise(real, schema, bins), discretise(synthetic, schema, bins)
    cardinalities = [_cardinality(column, bins) for column in schema.columns]
    subsets = _subsets(len(schema.columns), k)
    if max_subsets is not None and len(subsets) > max_subsets:
        chosen = np.random.default_rng(0).choice(len(subsets), size=max_subsets, replace=False)
        subsets = [subsets[i] for i in np.sort(chosen)]
    distances = []
    for subset in subsets:
        columns = list(subset)
        real_joint, synthetic_joint, cells = _joint_codes(
            real_codes[:, columns], synthetic_codes[:, columns], [cardinalities[j] for j in columns]
        )
        p = np.bincount(real_joint, minlength=cells) / len(real_joint)
        q = np.bincount(synthetic_joint, minlength=cells) / len(synthetic_joint)
        distances.append(0.5 * np.abs(p - q).sum())
    return float(np.mean(distances))


def _transport_frame(table: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """Numeric columns scaled to [0, 1] on public bounds, categoricals as declared index."""
    values = [
        _scaled(table[column.name], column) if column.is_numeric else category_codes(table[column.name], column)
        for column in schema.columns
    ]
    return np.column_stack(values).astype(np.float64)


def _exact_transport(real: np.ndarray, synthetic: np.ndarray, numeric: np.ndarray) -> float:
    """Exact W1 between two equal-size uniform empirical measures (L1 cost, 0/1 for categoricals)."""
    cost = np.zeros((len(real), len(synthetic)))
    for j in range(real.shape[1]):
        gap = real[:, j, None] - synthetic[None, :, j]
        cost += np.abs(gap) if numeric[j] else (gap != 0)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def wasserstein_kway(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    k: int,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    max_subsets: int = DEFAULT_MAX_SUBSETS,
    rng: np.random.Generator | int = 0,
) -> float:
    """Mean k-way Wasserstein distance between real and synthetic rows (as in Tab-PE).

    Numeric columns are scaled to [0, 1] on their public bounds; two categories are at
    distance 0 if equal, else 1; the ground cost of a pair of rows is the sum over the k
    columns. For each k-subset, ``m = min(sample_size, len(real), len(synthetic))`` rows are
    drawn without replacement from each table (fresh draws per subset) and the exact optimal
    transport between the two uniform samples is solved as an assignment problem. The mean
    over subsets is returned: all of them if there are at most ``max_subsets``, else a random
    ``max_subsets`` of them. Subsampling makes the value of two samples of one distribution
    slightly positive; when both tables have at most ``sample_size`` rows it is exact.

    Args:
        real: Real rows conformed to ``schema``.
        synthetic: Synthetic rows conformed to ``schema``.
        schema: The public domain.
        k: Number of columns per subset, from 1 to the number of columns.
        sample_size: Rows drawn from each table per subset.
        max_subsets: Most subsets averaged.
        rng: Generator or seed for the subsamples and the choice of subsets.
    """
    rng = np.random.default_rng(rng)
    size = min(sample_size, len(real), len(synthetic))
    if size < 1:
        raise ValueError("both tables need at least one row and sample_size must be positive")
    subsets = _subsets(len(schema.columns), k)
    if len(subsets) > max_subsets:
        subsets = [subsets[i] for i in np.sort(rng.choice(len(subsets), size=max_subsets, replace=False))]
    real_values, synthetic_values = _transport_frame(real, schema), _transport_frame(synthetic, schema)
    numeric = np.array([column.is_numeric for column in schema.columns])
    distances = []
    for subset in subsets:
        columns = list(subset)
        real_rows = rng.choice(len(real_values), size=size, replace=False)
        synthetic_rows = rng.choice(len(synthetic_values), size=size, replace=False)
        real_sample = real_values[np.ix_(real_rows, columns)]
        synthetic_sample = synthetic_values[np.ix_(synthetic_rows, columns)]
        distances.append(_exact_transport(real_sample, synthetic_sample, numeric[columns]))
    return float(np.mean(distances))


def _gbm_features(table: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """Raw numeric values and categoricals as declared index (for native categorical splits)."""
    return np.column_stack(
        [
            table[column.name].to_numpy(dtype=np.float64)
            if column.is_numeric
            else category_codes(table[column.name], column).astype(np.float64)
            for column in schema.features
        ]
    )


def _linear_features(table: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """Numeric columns min-max scaled on public bounds, categoricals one-hot on declared lists."""
    return encode_rows(table, schema.features, categorical_weight=1.0)


def classifier_utility(
    train: pd.DataFrame, test: pd.DataFrame, schema: TableSchema, model: str = "gbm", seed: int = 0
) -> dict[str, float]:
    """Train a classifier of the label on ``train`` and score it on ``test``.

    ``"gbm"`` is a HistGradientBoostingClassifier with native categorical splits for the
    schema's categorical features; ``"rf"`` a random forest of 100 trees and ``"logreg"`` a
    LogisticRegression, both on numeric features
    scaled on public bounds plus one-hot categoricals. A training table holding a single
    class gives a model that always predicts that class.

    Args:
        train: Training rows (real or synthetic) conformed to ``schema``.
        test: Held-out real rows conformed to ``schema``.
        schema: The public domain.
        model: One of ``MODELS``.
        seed: Seed of the model's randomness.

    Returns:
        ``{"accuracy": ..., "macro_f1": ..., "majority_accuracy": ...}`` on ``test`` (macro F1
        over the classes present in the test labels or the predictions; ``majority_accuracy``
        that of always predicting ``train``'s most frequent class, the rate an accuracy must
        beat to say anything).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if len(train) == 0 or len(test) == 0:
        raise ValueError("train and test need at least one row")
    y_train = category_codes(train[schema.label_column], schema.label)
    y_test = category_codes(test[schema.label_column], schema.label)
    features = _gbm_features if model == "gbm" else _linear_features
    if len(np.unique(y_train)) == 1:
        predicted = np.full(len(test), y_train[0])
    else:
        if model == "gbm":
            categorical = [not column.is_numeric for column in schema.features]
            classifier = HistGradientBoostingClassifier(categorical_features=categorical, random_state=seed)
        elif model == "rf":
            # Every core: the trees' seeds are drawn before they are built, so the forest is the same.
            classifier = RandomForestClassifier(n_estimators=_FOREST_TREES, n_jobs=-1, random_state=seed)
        else:
            classifier = LogisticRegression(max_iter=_LOGREG_MAX_ITER, random_state=seed)
        classifier.fit(features(train, schema), y_train)
        predicted = classifier.predict(features(test, schema))
    return {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "macro_f1": float(f1_score(y_test, predicted, average="macro", zero_division=0)),
        "majority_accuracy": float(np.mean(y_test == np.bincount(y_train).argmax())),
    }


def _row_hashes(table: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """One 64-bit hash per whole row, on canonical dtypes (numeric float64, categorical str)."""
    canonical = pd.DataFrame(
        {
            column.name: table[column.name].to_numpy(dtype=np.float64)
            if column.is_numeric
            else table[column.name].astype(str).to_numpy()
            for column in schema.columns
        }
    )
    return pd.util.hash_pandas_object(canonical, index=False).to_numpy()


def _dcr_embedding(table: pd.DataFrame, schema: TableSchema, categorical_weight: float) -> np.ndarray:
    """All columns, label included: numeric scaled on public bounds, categoricals one-hot x weight."""
    return np.ascontiguousarray(encode_rows(table, schema.columns, categorical_weight))


def _closest_private(
    table: pd.DataFrame,
    schema: TableSchema,
    index: faiss.IndexFlatL2,
    private_hashes: np.ndarray,
    categorical_weight: float,
) -> tuple[np.ndarray, np.ndarray]:
    """L2 distance of each row to its closest private row (0 for exact copies), and the copy mask."""
    copies = np.isin(_row_hashes(table, schema), private_hashes)
    squared, _ = index.search(_dcr_embedding(table, schema, categorical_weight), 1)
    distances = np.sqrt(np.maximum(squared[:, 0], 0.0))
    distances[copies] = 0.0
    return distances, copies


def distance_to_closest_record(
    synthetic: pd.DataFrame,
    private: pd.DataFrame,
    reference: pd.DataFrame,
    schema: TableSchema,
    categorical_weight: float = DEFAULT_CATEGORICAL_WEIGHT,
) -> dict[str, float]:
    """Distance of each synthetic row to its closest private row, against a real baseline.

    Rows are embedded on all columns (numeric scaled to [0, 1] on public bounds, categoricals
    one-hot times ``categorical_weight``) and compared in L2. The baseline is the same
    distance for held-out real rows (``reference``): synthetic rows much closer to the
    private rows than fresh real rows suggest memorisation. Rows identical to a private
    row (all values equal) count as exact copies and have distance 0.

    Args:
        synthetic: Synthetic rows conformed to ``schema``.
        private: The private training rows.
        reference: Held-out real rows, not used for training.
        schema: The public domain.
        categorical_weight: Scale of the one-hot blocks.

    Returns:
        Aggregates only: ``synthetic_dcr_median``, ``synthetic_dcr_p05``,
        ``reference_dcr_median``, ``reference_dcr_p05``, ``exact_copy_share`` (share of
        synthetic rows equal to some private row) and ``reference_exact_copy_share``.
    """
    if min(len(synthetic), len(private), len(reference)) == 0:
        raise ValueError("synthetic, private and reference need at least one row each")
    private_hashes = _row_hashes(private, schema)
    private_embedding = _dcr_embedding(private, schema, categorical_weight)
    index = faiss.IndexFlatL2(private_embedding.shape[1])
    index.add(private_embedding)
    synthetic_distances, synthetic_copies = _closest_private(
        synthetic, schema, index, private_hashes, categorical_weight
    )
    reference_distances, reference_copies = _closest_private(
        reference, schema, index, private_hashes, categorical_weight
    )
    return {
        "synthetic_dcr_median": float(np.median(synthetic_distances)),
        "synthetic_dcr_p05": float(np.percentile(synthetic_distances, 5)),
        "reference_dcr_median": float(np.median(reference_distances)),
        "reference_dcr_p05": float(np.percentile(reference_distances, 5)),
        "exact_copy_share": float(synthetic_copies.mean()),
        "reference_exact_copy_share": float(reference_copies.mean()),
    }

"""Benchmark tables whose label is a 3-way interaction: no 1- or 2-way marginal predicts it.

The label is the XOR of three independent, exactly balanced bits, each a function of one
column, with a small rate of label flips. Any one or two feature columns leave at least one
of those bits unobserved, and XOR with an unobserved fair coin is a fair coin: every 1-way
and 2-way marginal of (features, label) is independent of the label, so a synthesiser that
keeps only low-order marginals (MST, most of AIM's workload) loses all label signal, while a
classifier on the real rows reaches about ``1 - label_noise``.

Kinds:

* ``"binary"``: eight binary columns ``b0`` ... ``b7`` ("0"/"1"); label = b1 XOR b4 XOR b6.
* ``"mixed"``: ``cat_a`` (6 levels, odd level index), ``cat_b`` (10 levels, membership of a
  5-level subset) and the float ``score`` (above 50 on [0, 100]) make the three bits; noise
  columns ``noise_int`` (integer), ``noise_cat`` (3 levels) and ``noise_cat2`` (4 levels,
  correlated with ``noise_int``).

Each generator returns ``(train, test, schema_json)`` with the schema in the project's JSON
form (``dp_synth.modalities.tabular.schema``). Run ``python benchmarks/interaction_tables.py`` to print the
checks: real-data accuracy, the accuracy of a classifier on each pair of columns, and a
chi-square test of independence between the label and each 1- and 2-way marginal.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from dp_synth.evaluation.tabular import classifier_utility
from dp_synth.modalities.tabular.schema import conform, parse_schema

LABEL = "label"
LABEL_NOISE = 0.03
"""Share of labels flipped at random: the Bayes accuracy is ``1 - LABEL_NOISE``."""

BINARY_COLUMNS = 8
BINARY_INTERACTION = (1, 4, 6)

CAT_A_PROBABILITIES = (0.3, 0.1, 0.1, 0.2, 0.1, 0.2)
"""Levels of ``cat_a``: skewed, but the odd levels (1, 3, 5) hold exactly half the mass."""
CAT_B_LEVELS = 10
CAT_B_SUBSET = (1, 2, 5, 7, 8)
"""Levels of ``cat_b`` (uniform) whose membership is the second bit: half of the levels."""
SCORE_MAX = 100.0
SCORE_THRESHOLD = 50.0
"""``score`` is 100 * Beta(2, 2), symmetric about 50, so ``score > 50`` is a fair bit."""
NOISE_INT_RANGE = (18, 90)
NOISE_CAT_PROBABILITIES = (0.5, 0.3, 0.2)
NOISE_CAT2_LEVELS = 4


def _categories(prefix: str, levels: int) -> list[str]:
    """Category names ``prefix0`` ... ``prefix{levels-1}``."""
    return [f"{prefix}{level}" for level in range(levels)]


def _noisy_label(bits: np.ndarray, label_noise: float, rng: np.random.Generator) -> np.ndarray:
    """XOR of the columns of ``bits`` (rows x 3), each flipped with probability ``label_noise``."""
    flips = rng.random(len(bits)) < label_noise
    return np.bitwise_xor.reduce(bits, axis=1) ^ flips


def _split(
    table: pd.DataFrame, n_train: int, schema_json: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Conform ``table`` to the schema, then split its first ``n_train`` rows off as train."""
    schema_json = {**schema_json, "label_column": LABEL, "public_row_count": n_train}
    table = conform(table, parse_schema(schema_json))
    return table.iloc[:n_train].reset_index(drop=True), table.iloc[n_train:].reset_index(drop=True), schema_json


def binary_table(
    n_train: int = 20_000, n_test: int = 10_000, seed: int = 0, label_noise: float = LABEL_NOISE
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Eight fair binary columns; the label is the XOR of three of them.

    Args:
        n_train: Rows of the training table (also the schema's public row count).
        n_test: Rows of the test table.
        seed: Seed of the numpy Generator.
        label_noise: Probability that a label is flipped.

    Returns:
        ``(train, test, schema_json)``.
    """
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(n_train + n_test, BINARY_COLUMNS))
    label = _noisy_label(bits[:, BINARY_INTERACTION], label_noise, rng)
    table = pd.DataFrame({f"b{i}": bits[:, i].astype(str) for i in range(BINARY_COLUMNS)})
    table[LABEL] = label.astype(int).astype(str)
    binary = {"type": "categorical", "categories": ["0", "1"]}
    schema_json = {"columns": {name: binary for name in table.columns}}
    return _split(table, n_train, schema_json)


def mixed_table(
    n_train: int = 20_000, n_test: int = 10_000, seed: int = 0, label_noise: float = LABEL_NOISE
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Categoricals of 3 to 10 levels, a float and an integer; the label is a 3-way XOR.

    The bits are: ``cat_a`` level index is odd; ``cat_b`` level is in ``CAT_B_SUBSET``;
    ``score > SCORE_THRESHOLD``. The noise columns are independent of those three.

    Args:
        n_train: Rows of the training table (also the schema's public row count).
        n_test: Rows of the test table.
        seed: Seed of the numpy Generator.
        label_noise: Probability that a label is flipped.

    Returns:
        ``(train, test, schema_json)``.
    """
    rng = np.random.default_rng(seed)
    rows = n_train + n_test
    cat_a = rng.choice(len(CAT_A_PROBABILITIES), size=rows, p=CAT_A_PROBABILITIES)
    cat_b = rng.integers(0, CAT_B_LEVELS, size=rows)
    score = np.round(SCORE_MAX * rng.beta(2.0, 2.0, size=rows), 2)
    while (tied := score == SCORE_THRESHOLD).any():
        score[tied] = np.round(SCORE_MAX * rng.beta(2.0, 2.0, size=int(tied.sum())), 2)
    bits = np.column_stack([cat_a % 2, np.isin(cat_b, CAT_B_SUBSET), score > SCORE_THRESHOLD]).astype(np.int64)
    label = _noisy_label(bits, label_noise, rng)
    low, high = NOISE_INT_RANGE
    noise_int = np.clip(np.round(rng.normal(40.0, 13.0, size=rows)), low, high).astype(np.int64)
    noise_cat = rng.choice(len(NOISE_CAT_PROBABILITIES), size=rows, p=NOISE_CAT_PROBABILITIES)
    noise_cat2 = np.minimum((noise_int - low) // 12 + rng.integers(0, 2, size=rows), NOISE_CAT2_LEVELS - 1)
    names = {
        "cat_a": _categories("a", len(CAT_A_PROBABILITIES)),
        "cat_b": _categories("b", CAT_B_LEVELS),
        "noise_cat": _categories("n", len(NOISE_CAT_PROBABILITIES)),
        "noise_cat2": _categories("m", NOISE_CAT2_LEVELS),
    }
    table = pd.DataFrame(
        {
            "cat_a": np.asarray(names["cat_a"])[cat_a],
            "cat_b": np.asarray(names["cat_b"])[cat_b],
            "score": score,
            "noise_int": noise_int,
            "noise_cat": np.asarray(names["noise_cat"])[noise_cat],
            "noise_cat2": np.asarray(names["noise_cat2"])[noise_cat2],
            LABEL: label.astype(int).astype(str),
        }
    )
    schema_json = {
        "columns": {
            "cat_a": {"type": "categorical", "categories": names["cat_a"]},
            "cat_b": {"type": "categorical", "categories": names["cat_b"]},
            "score": {"type": "float", "min": 0.0, "max": SCORE_MAX},
            "noise_int": {"type": "integer", "min": low, "max": high},
            "noise_cat": {"type": "categorical", "categories": names["noise_cat"]},
            "noise_cat2": {"type": "categorical", "categories": names["noise_cat2"]},
            LABEL: {"type": "categorical", "categories": ["0", "1"]},
        }
    }
    return _split(table, n_train, schema_json)


GENERATORS: dict[str, Callable[..., tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]]] = {
    "binary": binary_table,
    "mixed": mixed_table,
}


def interaction_table(
    kind: str, n_train: int = 20_000, n_test: int = 10_000, seed: int = 0, label_noise: float = LABEL_NOISE
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Generate the table of the given kind (``"binary"`` or ``"mixed"``); see those generators."""
    if kind not in GENERATORS:
        raise ValueError(f"kind must be one of {sorted(GENERATORS)}, got {kind!r}")
    return GENERATORS[kind](n_train=n_train, n_test=n_test, seed=seed, label_noise=label_noise)


def sub_schema(schema_json: dict[str, Any], features: list[str]) -> dict[str, Any]:
    """The schema restricted to ``features`` and the label."""
    keep = [*features, schema_json["label_column"]]
    return {**schema_json, "columns": {name: schema_json["columns"][name] for name in keep}}


def pair_accuracies(
    train: pd.DataFrame, test: pd.DataFrame, schema_json: dict[str, Any], seed: int = 0
) -> dict[tuple[str, str], float]:
    """Test accuracy of a gradient-boosted classifier trained on each pair of feature columns."""
    features = [name for name in schema_json["columns"] if name != schema_json["label_column"]]
    accuracies = {}
    for pair in itertools.combinations(features, 2):
        pair_json = sub_schema(schema_json, list(pair))
        columns = list(pair_json["columns"])
        schema = parse_schema(pair_json)
        accuracies[pair] = classifier_utility(train[columns], test[columns], schema, seed=seed)["accuracy"]
    return accuracies


def marginal_pvalues(table: pd.DataFrame, schema_json: dict[str, Any], bins: int = 10) -> dict[tuple[str, ...], float]:
    """Chi-square test of independence between the label and each 1- and 2-way feature marginal.

    Numeric columns are cut into ``bins`` equal-width bins on their public bounds.

    Returns:
        The p-value of each feature column and pair of feature columns: under the design, all
        of them are draws of a uniform variable.
    """
    cells = {}
    for name, spec in schema_json["columns"].items():
        if name == schema_json["label_column"]:
            continue
        if spec["type"] == "categorical":
            cells[name] = table[name].astype(str)
        else:
            edges = np.linspace(spec["min"], spec["max"], bins + 1)
            cells[name] = pd.Series(np.digitize(table[name], edges[1:-1])).astype(str)
    label = table[schema_json["label_column"]]
    pvalues = {}
    for group in [*itertools.combinations(cells, 1), *itertools.combinations(cells, 2)]:
        key = cells[group[0]] if len(group) == 1 else cells[group[0]] + "|" + cells[group[1]]
        pvalues[group] = float(chi2_contingency(pd.crosstab(key, label)).pvalue)
    return pvalues


def main() -> None:
    """Print, for each kind, real-data accuracy, two-column accuracies and marginal independence tests."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    for kind in GENERATORS:
        train, test, schema_json = interaction_table(kind, seed=arguments.seed)
        schema = parse_schema(schema_json)
        accuracy = classifier_utility(train, test, schema, seed=arguments.seed)["accuracy"]
        pairs = pair_accuracies(train, test, schema_json, seed=arguments.seed)
        best_pair = max(pairs, key=pairs.get)
        print(f"{kind}: {len(train)} train / {len(test)} test rows, {len(schema.features)} features")
        print(f"  gradient boosting on all columns, test accuracy     {accuracy:.4f}")
        print(f"  best two-column classifier {'+'.join(best_pair):<24} {pairs[best_pair]:.4f}")
        print(f"  mean two-column classifier ({len(pairs)} pairs)           {np.mean(list(pairs.values())):.4f}")
        pvalues = marginal_pvalues(train, schema_json)
        print(
            f"  smallest chi-square p-value, label vs each of {len(pvalues)} 1-/2-way marginals {min(pvalues.values()):.4f}"
        )


if __name__ == "__main__":
    main()

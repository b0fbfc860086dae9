"""Benchmark dp-synth against what users would pick instead, on the same data and budget.

For each dataset (Adult, and generated tables whose label is an XOR of three columns), runs:

- dp-synth with the reference Tab-PE settings (T = 30, N = 1000, N rows released, uniform
  generator), then with each of our changes added, one row each;
- MST and AIM from smartnoise-synth (``--competitors mst,aim``; needs the bench extra, see
  ``benchmarks/competitors.py``);

and prints one table: wall time of the synthesiser, rows released, gradient-boosting
accuracy on the held-out table, and 1-/2-way TVD and Wasserstein distances to the training
table. dp-synth runs the project's own tabular pipeline in-process (the nodes ``kedro run``
runs, minus evaluation and reports), so its time is the PE part alone, without start-up.

Usage::

    python benchmarks/compare.py [--datasets adult,binary,mixed] [--competitors mst,aim] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from dp_synth import TabularSynthesizer
from dp_synth.evaluation.tabular import classifier_utility, marginal_tvd, wasserstein_kway
from dp_synth.modalities.tabular.schema import conform, parse_schema
from dp_synth.pe.accounting import default_delta

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ADULT = PROJECT_ROOT / "data" / "01_raw" / "adult"


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override``'s keys replaced, nested mappings merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merged(base.get(key, {}), value) if isinstance(value, Mapping) else value
    return merged


UNREFINED = {"generator": {"refine_cells": 1}}
"""What the rows before refined sub-cells ran with: a value drawn uniformly in its bin."""

WIDTH_PAIR_CELLS = _merged(UNREFINED, {"generator": {"pair_split": "width"}})
"""What the rows before equal-mass pair cells ran with: equal-width coarse cells everywhere."""

BEFORE_BINS = _merged(WIDTH_PAIR_CELLS, {"pe": {"candidates_per_bin": 1}, "generator": {"marginal_estimate": "clip"}})
"""What the rows before the histogram over bins of similar candidates ran with: one bin per
distinct candidate, and binned numeric marginals clipped at 0."""

TAB_PE_REFERENCE = _merged(
    BEFORE_BINS,
    {
        "iterations": 30,
        "dp": {"generator_share": 0.0},
        "pe": {"population_size": 1000, "merge_duplicates": False, "sampling_iterations": 5},
        "release": {"rows": 1000},
        "generator": {"variation": {"r0": 0.5, "rf": 0.01, "gamma": 0.2}, "structure": "independent"},
    },
)
"""The reference Tab-PE configuration (the paper's defaults)."""

INDEPENDENT_GENERATOR = _merged(
    BEFORE_BINS,
    {
        "iterations": 10,
        "dp": {"generator_share": 0.25},
        "pe": {"population_size": 3000, "sampling_iterations": 5},
        "generator": {"structure": "independent"},
    },
)
"""The marginal generator as it was before the dependency tree (T = 10, N = 3000, share 0.25)."""

TREE_T5 = _merged(
    BEFORE_BINS,
    {
        "iterations": 5,
        "dp": {"generator_share": 0.5},
        "pe": {"population_size": 5000},
        "generator": {"pair_estimate": "suppress"},
    },
)
"""The tree generator as it was measured with five PE iterations (share 0.5, N = 5000)."""

ONE_HISTOGRAM = _merged(BEFORE_BINS, {"iterations": 1, "dp": {"generator_share": 0.9}})
"""One histogram over 30,000 candidates with share 0.9, before bins of similar candidates."""

VARIANTS: dict[str, dict[str, Any]] = {
    "dp-synth, Tab-PE reference settings": TAB_PE_REFERENCE,
    "+ release n rows from the last histogram": {**TAB_PE_REFERENCE, "release": {"rows": "auto"}},
    "+ DP marginal generator and re-weighting": _merged(
        INDEPENDENT_GENERATOR, {"pe": {"merge_duplicates": False}, "generator": {"local_numeric_share": 0.0}}
    ),
    "+ identical candidates share one histogram bin": _merged(
        INDEPENDENT_GENERATOR, {"generator": {"local_numeric_share": 0.0}}
    ),
    "+ small moves on numeric columns without a spike": INDEPENDENT_GENERATOR,
    "+ DP dependency tree, T = 5, N = 5000": _merged(TREE_T5, {"generator": {"interactions": 0}}),
    "+ a DP 3-way interaction clique": TREE_T5,
    "+ posterior means of the pair tables": _merged(TREE_T5, {"generator": {"pair_estimate": "posterior"}}),
    "+ one histogram over 30,000 candidates, share 0.9": ONE_HISTOGRAM,
    "+ denoised binned marginals": _merged(ONE_HISTOGRAM, {"generator": {"marginal_estimate": "denoise"}}),
    "+ bins of 50 similar candidates, share 0.8": WIDTH_PAIR_CELLS,
    "+ equal-mass pair cells for spiked columns": UNREFINED,
    "+ DP sub-cells of binned columns (default)": {},
}
"""dp-synth rows of the table: each adds one change to the previous one."""


def load_adult() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The bundled Adult train/test tables and their public schema."""
    return (
        pd.read_csv(ADULT / "adult_train.csv"),
        pd.read_csv(ADULT / "adult_test.csv"),
        json.loads((ADULT / "schema.json").read_text()),
    )


def load_interaction(kind: str) -> Callable[[], tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]]:
    """A loader of the generated XOR table of this kind (see ``interaction_tables.py``)."""

    def load() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
        from interaction_tables import interaction_table

        return interaction_table(kind)

    return load


DATASETS = {"adult": load_adult, "binary": load_interaction("binary"), "mixed": load_interaction("mixed")}


def run_dp_synth(
    train: pd.DataFrame, schema_json: dict[str, Any], variant: Mapping[str, Any], seed: int
) -> tuple[pd.DataFrame, float]:
    """Fit the Python API (the tabular pipeline's own nodes, in-process) with a variant's
    settings over the defaults; return the default release and the seconds it took."""
    sections = {key: value for key, value in variant.items() if key != "iterations"}
    started = time.perf_counter()
    synthesizer = TabularSynthesizer(seed=seed, iterations=variant.get("iterations"), **sections).fit(
        train, schema_json
    )
    release = synthesizer.sample()
    return release, time.perf_counter() - started


def run_competitor(
    name: str, train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, delta: float, seed: int
) -> tuple[pd.DataFrame, float]:
    """MST or AIM from smartnoise-synth (imported only when asked for)."""
    from competitors import run_competitor as run

    return run(name, train, schema_json, epsilon, delta, seed)


def score(
    synthetic: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, schema_json: dict[str, Any]
) -> dict[str, float]:
    """Accuracy on the held-out table and distances to the training table."""
    schema = parse_schema(schema_json)
    synthetic = conform(synthetic, schema)
    return {
        "accuracy": classifier_utility(synthetic, test, schema, "gbm")["accuracy"],
        "tvd1": marginal_tvd(train, synthetic, schema, 1),
        "tvd2": marginal_tvd(train, synthetic, schema, 2),
        "wsd1": wasserstein_kway(train, synthetic, schema, 1),
        "wsd2": wasserstein_kway(train, synthetic, schema, 2),
    }


def main() -> None:
    """Run every method on every dataset and print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="adult,binary,mixed")
    parser.add_argument("--competitors", default="", help="comma-separated: mst,aim")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    for noisy in ("kedro", "dp_synth"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    header = f"{'dataset':<8} {'method':<60} {'seconds':>8} {'rows':>6} {'acc':>6} {'tvd1':>6} {'tvd2':>6} {'wsd1':>6} {'wsd2':>6}"
    print(f"epsilon = {arguments.epsilon}, delta = 1/(n ln n), seed {arguments.seed}")
    print(header)
    for dataset in arguments.datasets.split(","):
        train_raw, test_raw, schema_json = DATASETS[dataset]()
        schema = parse_schema(schema_json)
        train, test = conform(train_raw, schema), conform(test_raw, schema)
        delta = default_delta(len(train))
        rows: list[tuple[str, pd.DataFrame | None, float]] = [("real training table (upper bound)", train, math.nan)]
        for label, variant in VARIANTS.items():
            variant = _merged(variant, {"dp": {"epsilon": arguments.epsilon}})
            rows.append((label, *run_dp_synth(train_raw, schema_json, variant, arguments.seed)))
        for name in filter(None, arguments.competitors.split(",")):
            rows.append(
                (name.upper(), *run_competitor(name, train_raw, schema_json, arguments.epsilon, delta, arguments.seed))
            )
        for label, synthetic, seconds in rows:
            metrics = score(synthetic, train, test, schema_json)
            print(
                f"{dataset:<8} {label:<60} {seconds:8.1f} {len(synthetic):6d} {metrics['accuracy']:6.3f} "
                f"{metrics['tvd1']:6.3f} {metrics['tvd2']:6.3f} {metrics['wsd1']:6.3f} {metrics['wsd2']:6.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

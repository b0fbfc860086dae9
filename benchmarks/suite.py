"""``make bench-suite``: dp-synth's default against MST, AIM and the Tab-PE reference settings.

Tables: the eight public tables of ``data/01_raw/tabular-suite/`` (each with its ``SOURCE.md``),
Adult, the two generated XOR tables (``interaction_tables.py``) and ``adult_people``, Adult's
people with 1 to 30 records each and the person declared as the privacy unit
(``people_tables.py``). Methods: ``dp-synth`` (the
default settings, with the adaptive plan), ``fixed`` (the plan's Adult choices on every table),
``generator-only`` (the DP generator without the vote), ``t5`` (T = 5 instead of 1),
``tab-pe`` (the paper's reference settings), ``mst`` and ``aim``
(smartnoise-synth, on the same public schema; AIM is stopped after ``--timeout`` seconds),
and ``uniform`` (rows drawn uniformly from the public domain: the floor every method must beat).
On ``adult_people``, ``unit-k4`` and ``unit-k16`` read up to 4 and 16 records of a person
(``dp.max_rows_per_unit``; the default reads 1), and ``per-row`` declares no privacy unit (a
per-row guarantee, which protects a person with k records only at the epsilon the run prints).

One judge scores every release against the training table and the held-out table:
accuracy and macro-F1 of gradient boosting, a random forest and logistic regression trained
on the release and tested on the held-out rows; 1-, 2- and 3-way TVD (20 equal-width bins per
numeric column; at most ``MAX_TRIPLES`` triples, the same for every method); 2-way
Wasserstein distance; and the synthesiser's seconds. Every row is printed as it finishes and
appended to ``data/08_reporting/bench_suite/<start time>.csv``; the end prints the mean over
seeds per table and method.

Usage::

    python benchmarks/suite.py [--tables wine,titanic,...] [--methods dp-synth,tab-pe,mst,aim,uniform]
                               [--seeds 0,1,2] [--epsilon 1] [--timeout 900] [--generous-bounds]
    python benchmarks/suite.py --summarise data/08_reporting/bench_suite/<start time>.csv ...

``--generous-bounds`` declares dp-synth's numeric columns as a new user would (``generous_bounds``:
from 0 to ten times the documented maximum) while MST, AIM and uniform keep the documented ones.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import multiprocessing
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dp_synth.evaluation.tabular import MODELS, classifier_utility, marginal_tvd, wasserstein_kway
from dp_synth.modalities.tabular.schema import TableSchema, conform, parse_schema
from dp_synth.pe.accounting import default_delta
from dp_synth.pe.selection import allocate_class_sizes

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SUITE = PROJECT_ROOT / "data" / "01_raw" / "tabular-suite"
RESULTS = PROJECT_ROOT / "data" / "08_reporting" / "bench_suite"
TVD_BINS = 20
"""Equal-width bins per numeric column in the TVD metrics."""
MAX_TRIPLES = 2000
"""Triples of columns in the 3-way TVD (a seeded sample, the same for every method)."""
SUITE_TABLES = ("wine", "titanic", "churn", "ann_thyroid", "mushroom", "spambase", "magic", "connect_4")

Table = tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]


def load_suite_table(name: str) -> Table:
    """A suite table's training rows, held-out rows and public schema."""
    folder = SUITE / name
    return (
        pd.read_csv(folder / "train.csv", dtype=str, keep_default_na=False),
        pd.read_csv(folder / "test.csv", dtype=str, keep_default_na=False),
        json.loads((folder / "schema.json").read_text()),
    )


def load_table(name: str) -> Table:
    """Any table of the benchmark by name (a suite table, ``adult``, ``binary`` or ``mixed``)."""
    if name in SUITE_TABLES:
        return load_suite_table(name)
    if name == "adult_people":
        from people_tables import people_table

        return people_table()
    from compare import DATASETS

    return DATASETS[name]()


def run_dp_synth(train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, seed: int) -> pd.DataFrame:
    """The default settings, through the Python API."""
    from compare import run_dp_synth as run

    return run(train, schema_json, {"dp": {"epsilon": epsilon}}, seed)[0]


def run_fixed(train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, seed: int) -> pd.DataFrame:
    """The adaptive plan's choices fixed at what it picks on Adult, whatever the table."""
    from compare import run_dp_synth as run

    from dp_synth.modalities.tabular.settings import FIXED_PLAN, PLANNED_GENERATOR

    variant = {
        "dp": {"epsilon": epsilon},
        "pe": {"population_size": FIXED_PLAN.population_size},
        "generator": {name: getattr(FIXED_PLAN, name) for name in PLANNED_GENERATOR},
    }
    return run(train, schema_json, variant, seed)[0]


def run_generator_only(train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, seed: int) -> pd.DataFrame:
    """The generator without Private Evolution's vote: the histogram gets 0.1% of the budget,
    so its weights are noise and the release is the DP generator's rows (raked)."""
    from compare import run_dp_synth as run

    return run(train, schema_json, {"dp": {"epsilon": epsilon, "generator_share": 0.999}}, seed)[0]


def run_five_iterations(train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, seed: int) -> pd.DataFrame:
    """The default with T = 5 histograms instead of one (the same total budget)."""
    from compare import run_dp_synth as run

    return run(train, schema_json, {"dp": {"epsilon": epsilon}, "iterations": 5}, seed)[0]


def run_unit_bound(rows: int) -> Callable[[pd.DataFrame, dict[str, Any], float, int], pd.DataFrame]:
    """The default with up to ``rows`` records of each person read (``dp.max_rows_per_unit``)."""

    def run(train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, seed: int) -> pd.DataFrame:
        from compare import run_dp_synth as fit

        return fit(train, schema_json, {"dp": {"epsilon": epsilon, "max_rows_per_unit": rows}}, seed)[0]

    return run


def run_per_row(train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, seed: int) -> pd.DataFrame:
    """The default on the table declared without its privacy unit: a per-row guarantee."""
    from people_tables import per_row

    schema_json, train = per_row(schema_json, train)
    return run_dp_synth(train, schema_json, epsilon, seed)


def run_tab_pe(train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, seed: int) -> pd.DataFrame:
    """The reference Tab-PE settings (T = 30, N = 1,000, uniform generator), releasing n rows."""
    from compare import TAB_PE_REFERENCE, _merged
    from compare import run_dp_synth as run

    variant = _merged(TAB_PE_REFERENCE, {"dp": {"epsilon": epsilon}, "release": {"rows": "auto"}})
    return run(train, schema_json, variant, seed)[0]


def run_uniform(train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, seed: int) -> pd.DataFrame:
    """Rows drawn uniformly from the public domain, classes in equal shares (no private data)."""
    from dp_synth.modalities.tabular.modality import TabularModality
    from dp_synth.pe.schedule import VariationSchedule

    schema = parse_schema(schema_json)
    modality = TabularModality(schema=schema, schedule=VariationSchedule())
    rows = schema.public_row_count or len(train)
    sizes = allocate_class_sizes(rows, dict.fromkeys(schema.classes, 1.0))
    return modality.random_population(sizes, np.random.default_rng(seed))


def run_competitor(name: str) -> Callable[[pd.DataFrame, dict[str, Any], float, int], pd.DataFrame]:
    """MST or AIM from smartnoise-synth at (epsilon, 1/(n ln n))."""

    def run(train: pd.DataFrame, schema_json: dict[str, Any], epsilon: float, seed: int) -> pd.DataFrame:
        from competitors import run_competitor as fit

        delta = default_delta(parse_schema(schema_json).public_row_count or len(train))
        return fit(name, train, schema_json, epsilon, delta, seed)[0]

    return run


METHODS: dict[str, Callable[[pd.DataFrame, dict[str, Any], float, int], pd.DataFrame]] = {
    "dp-synth": run_dp_synth,
    "fixed": run_fixed,
    "generator-only": run_generator_only,
    "t5": run_five_iterations,
    "tab-pe": run_tab_pe,
    "mst": run_competitor("mst"),
    "aim": run_competitor("aim"),
    "uniform": run_uniform,
    "unit-k4": run_unit_bound(4),
    "unit-k16": run_unit_bound(16),
    "per-row": run_per_row,
}
UNIT_METHODS = ("unit-k4", "unit-k16", "per-row")
"""Methods that only a table with a privacy unit runs."""


PEERS = ("mst", "aim", "uniform")
"""Methods that keep the documented (tight) bounds under ``--generous-bounds``."""
GENEROUS_FACTOR = 10.0


def generous_bounds(schema_json: dict[str, Any]) -> dict[str, Any]:
    """The schema as a new user declares it from public knowledge: every numeric column from 0
    (or ten times a negative minimum) to ten times its documented maximum."""
    columns = {}
    for name, column in schema_json["columns"].items():
        if column.get("type") in ("integer", "float"):
            low, high = column["min"], column["max"]
            column = {
                **column,
                "min": min(low, 0) * GENEROUS_FACTOR if low < 0 else 0,
                "max": high * GENEROUS_FACTOR if high > 0 else high,
            }
        columns[name] = column
    return {**schema_json, "columns": columns}


def _child(method: str, table: str, epsilon: float, seed: int, generous: bool, pipe: Any) -> None:
    """Run one method in a child process and send back its release and seconds; with
    ``generous``, dp-synth's methods get the ``generous_bounds`` schema, the peers the documented one."""
    for noisy in ("kedro", "dp_synth"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    train, _, schema_json = load_table(table)
    if generous and method not in PEERS:
        schema_json = generous_bounds(schema_json)
    if method in ("mst", "aim"):
        importlib.import_module("competitors")  # smartnoise's import time is not the synthesiser's
    started = time.perf_counter()
    release = METHODS[method](train, schema_json, epsilon, seed)
    pipe.send((release, time.perf_counter() - started))


def timed_release(
    method: str, table: str, epsilon: float, seed: int, timeout: float, generous: bool = False
) -> tuple[pd.DataFrame | None, float]:
    """The method's release and its seconds, or ``(None, timeout)`` past ``timeout`` seconds.

    Each run is a fresh process (spawned): its time counts no state left by another method,
    and a run past its time is stopped.
    """
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(method, table, epsilon, seed, generous, sender))
    process.start()
    if receiver.poll(timeout):
        release, seconds = receiver.recv()
        process.join()
        return release, seconds
    process.terminate()
    process.join()
    return None, timeout


def clipped_to_domain(synthetic: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """A release's numeric values clipped into the documented bounds: under ``--generous-bounds``
    a value beyond them counts in the edge bins of the TVD and as an extreme value for the
    learners, instead of stopping the judge (inside the bounds, nothing changes)."""
    clipped = synthetic.copy()
    for column in schema.features:
        if column.is_numeric:
            values = pd.to_numeric(clipped[column.name])
            clipped[column.name] = values.clip(column.low, column.high)
    return clipped


def judge(
    synthetic: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame, schema_json: dict[str, Any]
) -> dict[str, float]:
    """Every metric of one release (see the module docstring)."""
    schema = parse_schema(schema_json)
    if schema.privacy_unit:
        train = train.drop(columns=[schema.privacy_unit])
    synthetic = clipped_to_domain(synthetic, schema)
    synthetic, train, test = conform(synthetic, schema), conform(train, schema), conform(test, schema)
    scores: dict[str, float] = {}
    for model in MODELS:
        utility = classifier_utility(synthetic, test, schema, model)
        scores[f"{model}_acc"], scores[f"{model}_f1"] = utility["accuracy"], utility["macro_f1"]
    for k in (1, 2, 3):
        scores[f"tvd{k}"] = marginal_tvd(train, synthetic, schema, k, bins=TVD_BINS, max_subsets=MAX_TRIPLES)
    scores["wsd2"] = wasserstein_kway(train, synthetic, schema, 2)
    return scores


SPREAD_METRICS = ("gbm_acc", "tvd2")
"""Metrics whose spread over seeds the summary shows beside their mean (a small table's MST
swings from chance to far above it between seeds)."""


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per table and method, the spread (max - min) of ``SPREAD_METRICS`` over
    them, and the number of seeds that finished."""
    metrics = [column for column in results.columns if column not in ("table", "method", "seed")]
    grouped = results.groupby(["table", "method"], sort=False)
    spread = grouped[list(SPREAD_METRICS)].agg(lambda values: values.max() - values.min())
    return grouped[metrics].mean().join(spread.add_suffix("_spread")).round(4).assign(runs=grouped.size())


def main() -> None:
    """Run every method on every table and seed; print and save the rows and the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", default=",".join((*SUITE_TABLES, "adult", "binary", "mixed", "adult_people")))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a run is stopped")
    parser.add_argument(
        "--generous-bounds",
        action="store_true",
        help="dp-synth's methods see numeric columns declared from 0 to 10 x their maximum; peers the documented bounds",
    )
    parser.add_argument(
        "--summarise", nargs="+", metavar="CSV", help="print the summary of saved result files instead of running"
    )
    arguments = parser.parse_args()
    if arguments.summarise:
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(summary(pd.concat([pd.read_csv(path) for path in arguments.summarise], ignore_index=True)))
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    output = RESULTS / f"{datetime.now(UTC):%Y%m%dT%H%M%S}.csv"
    print(f"epsilon = {arguments.epsilon}, delta = 1/(n ln n); rows appended to {output.relative_to(PROJECT_ROOT)}")
    rows = []
    for table in arguments.tables.split(","):
        train, test, schema_json = load_table(table)
        for method in arguments.methods.split(","):
            if (method in UNIT_METHODS) != bool(schema_json.get("privacy_unit")) and method != "dp-synth":
                continue
            for seed in (int(seed) for seed in arguments.seeds.split(",")):
                release, seconds = timed_release(
                    method, table, arguments.epsilon, seed, arguments.timeout, arguments.generous_bounds
                )
                if release is None:
                    print(f"{table:<12} {method:<9} seed {seed}: stopped after {seconds:.0f} s", flush=True)
                    continue
                row = {"table": table, "method": method, "seed": seed, "seconds": round(seconds, 2)}
                row.update(judge(release, train, test, schema_json))
                rows.append(row)
                pd.DataFrame([row]).to_csv(output, mode="a", header=len(rows) == 1, index=False)
                print(
                    " ".join(
                        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                        for key, value in row.items()
                    ),
                    flush=True,
                )
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(summary(pd.DataFrame(rows)))
    if "adult_people" in arguments.tables.split(","):
        print(person_epsilons(arguments.epsilon))


def person_epsilons(epsilon: float) -> str:
    """What the per-row run on ``adult_people`` gives a person with k records: k x its GDP mu."""
    from people_tables import MAX_RECORDS, people_table

    from dp_synth.pe.accounting import gdp_mu_for, group_epsilon

    delta = default_delta(len(people_table()[0]))
    mu = gdp_mu_for(epsilon, delta)
    shown = ", ".join(f"k = {k}: {group_epsilon(mu, k, delta):.3g}" for k in (1, 2, 5, 10, 20, MAX_RECORDS))
    return f"per-row run at epsilon {epsilon:g}: the epsilon of a person with k records, {shown}"


if __name__ == "__main__":
    main()

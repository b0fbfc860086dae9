"""``make bench-icl``: DP few-shot demonstrations (``kedro run --pipeline=icl``) evaluated as in
Tang et al. (ICLR 2024): in-context classification accuracy of the same model on held-out AG News
texts, with no demonstration (zero-shot), with the released DP demonstrations at epsilon 1, 4
and 8, and with real private demonstrations (epsilon infinity), over seeds.

Model: SmolLM2-135M-Instruct, offline (``make text-model``). Private: the 2,280 bundled training
texts. Judge: the job's own evaluation sample of the held-out texts (``icl.evaluation``: a
seeded sample of 200 of ``agnews_test.csv``, never private). The demonstrations are one per
class (a 4-shot prompt); a text's class is the label whose name is the likeliest continuation
of its prompt. Each DP row runs the job's own nodes in process (admission in a fresh privacy
ledger, groups, token votes, privacy report) with the default ``icl.fewshot`` settings and
``dp.seed`` = the seed (numpy noise: reproducible; a seeded run is not private, as every
benchmark run here). Seconds: wall time of the row (its generation and its classification; the
model is loaded once, before the first row).

Rows are measured baselines first, then seed by seed (every epsilon of a seed before the next
seed), each saved to ``--out`` as soon as measured; ``--resume`` keeps the rows ``--out`` holds
and measures the others only.

Usage::

    python benchmarks/icl_figures.py [--seeds 0,1,2] [--epsilons 1,4,8] [--rows 200] [--out FILE] [--resume]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dp_synth.modalities.text import fewshot
from dp_synth.modalities.text.fewshot_settings import FewShotSettings
from dp_synth.pipelines.icl import nodes as icl_nodes
from dp_synth.pipelines.pe import nodes as pe_nodes

PROJECT_ROOT = Path(__file__).resolve().parents[1]
AGNEWS = PROJECT_ROOT / "data" / "01_raw" / "agnews"
MODEL = PROJECT_ROOT / "data" / "06_models" / "smollm2-135m-instruct"
OUTPUT = PROJECT_ROOT / "data" / "08_reporting" / "bench_icl.json"


def settings_for(epsilon: float, seed: int, ledger: Path, rows: int) -> FewShotSettings:
    """The job's default settings with the bench's model, budget, seed, ledger and judge size."""
    return FewShotSettings.parse(
        {
            "dp": {"epsilon": epsilon, "seed": seed, "ledger": str(ledger)},
            "generator": {"backend": "huggingface", "huggingface": {"model": str(MODEL)}},
            "evaluation": {"reference_rows": rows},
        },
        "icl",
    )


def timed(measure: Callable[[], tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """``measure()``'s accuracy and details, with its wall time."""
    started = time.perf_counter()
    accuracy, details = measure()
    return {"accuracy": accuracy, "seconds": time.perf_counter() - started, **details}


def dp_row(task: icl_nodes.FewShotTask, settings: FewShotSettings, judge: pd.DataFrame) -> tuple[float, dict]:
    """One run of the job's nodes, then the accuracy with its demonstrations."""
    schema_json = json.loads((AGNEWS / "schema.json").read_text())
    private_raw = pd.read_csv(AGNEWS / "agnews_train.csv")
    plan = icl_nodes.plan_privacy(task, settings)
    run, plan, private = pe_nodes.admit_run(
        schema_json, private_raw, task, plan, settings, job="icl", load=icl_nodes.load_private_examples
    )
    groups = icl_nodes.partition_groups(private, task, plan, settings)
    demonstrations = icl_nodes.generate_demonstrations(groups, task, plan, run, settings)
    report = pe_nodes.report_privacy(run, plan, demonstrations)
    accuracy = fewshot.accuracy(task.model, task.prompts, task.schema, demonstrations, judge)
    return accuracy, {"epsilon_reported": report["epsilon"], "demonstrations": demonstrations.to_dict("records")}


def summary(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Accuracy (mean, standard deviation, min, max) and mean seconds per configuration."""
    table = pd.DataFrame(rows)
    return table.groupby("config", sort=False).agg(
        seeds=("seed", "count"),
        accuracy=("accuracy", "mean"),
        std=("accuracy", "std"),
        low=("accuracy", "min"),
        high=("accuracy", "max"),
        seconds=("seconds", "mean"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epsilons", default="1,4,8")
    parser.add_argument("--rows", type=int, default=FewShotSettings().evaluation.reference_rows)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--resume", action="store_true", help="keep the rows --out holds, measure the others")
    arguments = parser.parse_args()
    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    epsilons = [float(epsilon) for epsilon in arguments.epsilons.split(",")]

    ledger_folder = Path(tempfile.mkdtemp(prefix="bench-icl-"))
    base = settings_for(1.0, 0, ledger_folder / "ledger.db", arguments.rows)
    task = icl_nodes.build_task(json.loads((AGNEWS / "schema.json").read_text()), base, None)
    judge = icl_nodes.load_reference_examples(pd.read_csv(AGNEWS / "agnews_test.csv"), task, base)
    private = icl_nodes.load_private_examples(pd.read_csv(AGNEWS / "agnews_train.csv"), task, "clamp")
    task.model.continuation_logprobs("", ["warm-up"], [" a"])  # load the model before the first timing

    def classified(demonstrations: pd.DataFrame) -> Callable[[], tuple[float, dict]]:
        return lambda: (fewshot.accuracy(task.model, task.prompts, task.schema, demonstrations, judge), {})

    rows: list[dict[str, Any]] = json.loads(arguments.out.read_text())["rows"] if arguments.resume else []

    def measured(config: str, seed: int, measure: Callable[[], tuple[float, dict]]) -> None:
        """Measure one row (unless resumed with it), print it and save every row so far."""
        if any(row["config"] == config and row["seed"] == seed for row in rows):
            return
        rows.append({"config": config, "seed": seed, **timed(measure)})
        print(f"{config}, seed {seed}: accuracy {rows[-1]['accuracy']:.4f}, {rows[-1]['seconds']:.1f} s", flush=True)
        record = {"judge_rows": len(judge), "settings": base.fewshot.model_dump(), "rows": rows}
        arguments.out.write_text(json.dumps(record, indent=1))

    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    measured("zero-shot", 0, classified(private.iloc[:0]))
    for seed in seeds:
        real = fewshot.real_demonstrations(private, task.schema.classes, 1, np.random.default_rng(seed))
        measured("real demonstrations (epsilon inf)", seed, classified(real))
    for seed in seeds:
        for epsilon in epsilons:
            settings = settings_for(epsilon, seed, ledger_folder / "ledger.db", arguments.rows)
            measured(f"DP demonstrations, epsilon {epsilon:g}", seed, partial(dp_row, task, settings, judge))
    print(summary(rows).to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()

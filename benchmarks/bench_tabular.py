"""Benchmark of the default tabular job: wall time of ``kedro run`` and time per stage.

Runs the real command (``kedro run --pipeline=tabular``) in the project, then reads the
per-stage times and the evaluation metrics that the run logged to MLflow. Usage::

    python benchmarks/bench_tabular.py [--repeats 3] [--params tabular.pe.population_size=1000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import mlflow

from dp_synth.pipeline_registry import pe_iterations

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PE_STAGES = (
    "embed_private_data",
    "dp_generator_statistics",
    "fit_generator",
    "dp_class_counts",
    "generate_initial_population",
    "embed",
    "dp_histogram",
    "resample",
    "vary",
    "release_synthetic_data",
)
"""The PE part of the run: everything between loading the data and evaluating the release."""


def pe_seconds(metrics: dict[str, float]) -> float:
    """Time of the PE part: DP statistics, generation, embedding, histograms, selection, release."""
    return sum(metrics[f"time_tabular.{stage}_s"] for stage in PE_STAGES)


def run_once(params: str | None) -> tuple[float, dict[str, float]]:
    """Run the job once; return its wall time and the metrics of the MLflow run it created."""
    command = [str(Path(sys.executable).with_name("kedro")), "run", "--pipelines=tabular"]
    if params:
        command += ["--params", params]
    started = time.perf_counter()
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    mlflow.set_tracking_uri(f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}")
    (latest,) = mlflow.search_runs(
        experiment_names=["dp-synth"], order_by=["attributes.start_time DESC"], max_results=1, output_format="list"
    )
    return wall, latest.data.metrics


def main() -> None:
    """Run the benchmark and print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--params", default=None, help="passed to kedro run --params")
    arguments = parser.parse_args()
    results = [run_once(arguments.params) for _ in range(arguments.repeats)]
    walls = [wall for wall, _ in results]
    stages = sorted(name for name in results[0][1] if name.startswith("time_"))
    print(f"tabular PE, T={pe_iterations()}, {arguments.repeats} run(s), median shown")
    print(f"{'kedro run (whole command)':<45} {statistics.median(walls):8.2f} s   (min {min(walls):.2f}, max {max(walls):.2f})")
    for stage in stages:
        seconds = statistics.median(metrics[stage] for _, metrics in results)
        print(f"  {stage.removeprefix('time_').removesuffix('_s'):<43} {seconds:8.2f} s")
    print(f"{'PE part (' + str(len(PE_STAGES)) + ' stages, from embedding to release)':<45} "
          f"{statistics.median(pe_seconds(metrics) for _, metrics in results):8.2f} s")
    for label, metric in (
        ("gradient-boosting accuracy on the test table", "final.utility.synthetic.gbm.accuracy"),
        ("2-way TVD to the private table", "final.fidelity.tvd_2way"),
    ):
        print(f"{label:<45} {statistics.median(metrics[metric] for _, metrics in results):8.4f}")

if __name__ == "__main__":
    main()

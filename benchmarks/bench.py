"""Benchmark of a job: wall time of ``kedro run`` and time per stage, per iteration.

Runs the real command (``kedro run --pipelines=<job>``) in the project, then reads the
evaluation metrics that the run logged to MLflow and the per-stage times that it wrote to the
project's log (``logs/dp-synth.log``; MLflow's are used where the run logged them). Usage::

    python benchmarks/bench.py [--pipeline tabular|text|image] [--repeats 3] [--params ...]

The text job needs a language model; with ``--tiny-text-model`` the benchmark builds the tiny
randomly initialised GPT-2 of the tests (2 layers, width 32) and points the job at it: the
figures then time the machinery (prompting, generation loop, embedding, votes), not a real LLM.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow

from dp_synth.pipeline_registry import pe_iterations

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LOG = PROJECT_ROOT / "logs" / "dp-synth.log"
STAGE_LINE = re.compile(r"^(\S+)\s+([0-9.]+) s$")
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
LOOP_STAGES = ("embed", "dp_histogram", "resample", "vary")
DIAGNOSTIC_STAGES = ("evaluate", "plot_reports")
"""The diagnostics of the release: its evaluation report and figures (``evaluation.level``)."""
"""The stages every iteration runs (the last one releases instead of varying)."""


QUALITY = {
    "tabular": (
        ("gradient-boosting accuracy on the test table", "final.utility.synthetic.gbm.accuracy"),
        ("2-way TVD to the private table", "final.fidelity.tvd_2way"),
    ),
    "text": (
        ("logistic-regression accuracy on the test texts", "final.utility.synthetic.accuracy"),
        ("Frechet distance to the test texts", "final.fidelity.frechet_distance"),
    ),
    "image": (
        ("logistic-regression accuracy on the test images", "final.utility.synthetic.accuracy"),
        ("the same trained on the private images", "final.utility.real_train.accuracy"),
    ),
}
"""What each job's summary prints from its evaluation report."""


def pe_seconds(pipeline: str, metrics: dict[str, float], stages: tuple[str, ...] = PE_STAGES) -> float:
    """Time of some stages (default the PE part: DP statistics, generation, embedding, histograms,
    selection, release), summed over the iterations."""
    return sum(metrics.get(f"time_{pipeline}.{stage}_s", 0.0) for stage in stages)


def tiny_text_model_params(directory: Path) -> str:
    """Build the tests' tiny GPT-2 in ``directory``; return the ``--params`` that select it."""
    sys.path.insert(0, str(PROJECT_ROOT / "tests"))
    from tiny_models import build_tiny_causal_lm

    model = build_tiny_causal_lm(directory)
    return f"text.generator.backend=huggingface,text.generator.huggingface.model={model},text.generator.min_words=1"


def logged_stage_times(log: str) -> dict[str, float]:
    """The last "Wall time per stage" table of a log (``hooks.stage_timing.StageTimingHook``), as MLflow names
    its metrics: ``time_<job>.<stage>_s``."""
    _, _, table = log.rpartition("Wall time per stage")
    times = {}
    for line in table.splitlines()[1:]:
        match = STAGE_LINE.match(line.strip())
        if match is None:
            break
        times[f"time_{match.group(1)}_s"] = float(match.group(2))
    return times


def run_once(pipeline: str, params: str | None) -> tuple[float, dict[str, float]]:
    """Run the job once; return its wall time, and the metrics of the MLflow run it created with
    the stage times of its log."""
    logged = LOG.stat().st_size if LOG.exists() else 0
    command = [str(Path(sys.executable).with_name("kedro")), "run", f"--pipelines={pipeline}"]
    if params:
        command += ["--params", params]
    started = time.perf_counter()
    subprocess.run(command, cwd=PROJECT_ROOT, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    mlflow.set_tracking_uri(f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}")
    (latest,) = mlflow.search_runs(
        experiment_names=["dp-synth"], order_by=["attributes.start_time DESC"], max_results=1, output_format="list"
    )
    with LOG.open(encoding="utf-8", errors="replace") as log:
        log.seek(logged)
        stage_times = logged_stage_times(log.read())
    return wall, {**stage_times, **latest.data.metrics}


def main() -> None:
    """Run the benchmark and print one table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pipeline", choices=sorted(QUALITY), default="tabular")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--params", default=None, help="passed to kedro run --params")
    parser.add_argument("--tiny-text-model", action="store_true", help="run the text job on the tests' tiny GPT-2")
    arguments = parser.parse_args()
    pipeline, params = arguments.pipeline, arguments.params
    with tempfile.TemporaryDirectory() as directory:
        if arguments.tiny_text_model:
            params = ",".join(filter(None, [tiny_text_model_params(Path(directory) / "tiny-gpt2"), params]))
        results = [run_once(pipeline, params) for _ in range(arguments.repeats)]
    walls = [wall for wall, _ in results]
    stages = sorted(name for name in results[0][1] if name.startswith("time_"))
    iterations = pe_iterations(pipeline)
    print(f"{pipeline} PE, T={iterations}, {arguments.repeats} run(s), median shown")
    print(
        f"{'kedro run (whole command)':<45} {statistics.median(walls):8.2f} s   (min {min(walls):.2f}, max {max(walls):.2f})"
    )
    for stage in stages:
        seconds = statistics.median(metrics[stage] for _, metrics in results)
        print(f"  {stage.removeprefix('time_').removesuffix('_s'):<43} {seconds:8.2f} s")
    pe_part = statistics.median(pe_seconds(pipeline, metrics) for _, metrics in results)
    print(f"{'PE part (' + str(len(PE_STAGES)) + ' stages, from embedding to release)':<45} {pe_part:8.2f} s")
    diagnostics = statistics.median(pe_seconds(pipeline, metrics, DIAGNOSTIC_STAGES) for _, metrics in results)
    print(f"{'diagnostics (evaluate, plot_reports)':<45} {diagnostics:8.2f} s")
    loop = statistics.median(pe_seconds(pipeline, metrics, LOOP_STAGES) for _, metrics in results)
    print(f"{'one iteration (embed, histogram, resample, vary)':<45} {loop / iterations:8.2f} s")
    for label, metric in QUALITY[pipeline]:
        print(f"{label:<45} {statistics.median(metrics[metric] for _, metrics in results):8.4f}")


if __name__ == "__main__":
    main()

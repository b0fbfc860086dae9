"""Project pipelines. The number of PE iterations T shapes the DAG, so it is read here."""

from __future__ import annotations

import os

from kedro.pipeline import Pipeline

from dp_synth.pipelines.image import pipeline as image_pipeline
from dp_synth.pipelines.tabular import pipeline as tabular_pipeline
from dp_synth.pipelines.text import pipeline as text_pipeline
from dp_synth.pipelines.pe.pipeline import ResumePoint, parse_resume_point

ITERATIONS_VARIABLE = "DP_SYNTH_ITERATIONS"
RESUME_VARIABLE = "DP_SYNTH_RESUME"
DEFAULT_ITERATIONS = {"tabular": 1, "text": 10, "image": 10}
"""T of each job when ``DP_SYNTH_ITERATIONS`` is unset (the README explains each choice)."""


def pe_iterations(job: str) -> int:
    """T of ``job``, from ``DP_SYNTH_ITERATIONS`` (default ``DEFAULT_ITERATIONS[job]``). The
    same value builds the DAG and calibrates the noise, so the budget pays for exactly the
    histograms that are released."""
    raw = os.environ.get(ITERATIONS_VARIABLE, str(DEFAULT_ITERATIONS[job]))
    try:
        iterations = int(raw)
    except ValueError:
        raise ValueError(f"{ITERATIONS_VARIABLE} must be an integer >= 1, got {raw!r}") from None
    if iterations < 1:
        raise ValueError(f"{ITERATIONS_VARIABLE} must be an integer >= 1 (T < 1 runs nothing), got {iterations}")
    return iterations


def resume_point(iterations: int) -> ResumePoint | None:
    """Where to resume a failed run, from ``DP_SYNTH_RESUME`` (unset: a fresh run). The failed
    run's log names the value and its T, e.g. ``DP_SYNTH_RESUME=iter_003.survivors
    DP_SYNTH_ITERATIONS=5``; T is required, since the jobs' default T differ."""
    raw = os.environ.get(RESUME_VARIABLE, "").strip()
    if not raw:
        return None
    if ITERATIONS_VARIABLE not in os.environ:
        raise ValueError(
            f"{RESUME_VARIABLE} is set but {ITERATIONS_VARIABLE} is not: resume with both, as the failed "
            "run's log shows (the T of the run being resumed)"
        )
    return parse_resume_point(raw, iterations)


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines; ``__default__`` is the tabular job."""
    builders = {
        "tabular": tabular_pipeline.create_pipeline,
        "text": text_pipeline.create_pipeline,
        "image": image_pipeline.create_pipeline,
    }
    pipelines = {}
    for job, create_pipeline in builders.items():
        iterations = pe_iterations(job)
        pipelines[job] = create_pipeline(iterations, resume_point(iterations))
    return {**pipelines, "__default__": pipelines["tabular"]}

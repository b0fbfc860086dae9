"""Project pipelines. The number of PE iterations T shapes the DAG, so it is read here."""

from __future__ import annotations

import os

from kedro.pipeline import Pipeline

from dp_synth.pipelines import image_pipeline, tabular_pipeline, text_pipeline
from dp_synth.pipelines.pe_template import ResumePoint, parse_resume_point

ITERATIONS_VARIABLE = "DP_SYNTH_ITERATIONS"
RESUME_VARIABLE = "DP_SYNTH_RESUME"
DEFAULT_ITERATIONS = 10


def pe_iterations() -> int:
    """T, from ``DP_SYNTH_ITERATIONS`` (default 10). The same value builds the DAG and
    calibrates the noise, so the budget pays for exactly the histograms that are released."""
    raw = os.environ.get(ITERATIONS_VARIABLE, str(DEFAULT_ITERATIONS))
    try:
        iterations = int(raw)
    except ValueError:
        raise ValueError(f"{ITERATIONS_VARIABLE} must be an integer >= 1, got {raw!r}") from None
    if iterations < 1:
        raise ValueError(f"{ITERATIONS_VARIABLE} must be an integer >= 1 (T < 1 runs nothing), got {iterations}")
    return iterations


def resume_point(iterations: int) -> ResumePoint | None:
    """Where to resume a failed run, from ``DP_SYNTH_RESUME`` (unset: a fresh run). The failed
    run's log names the value, e.g. ``DP_SYNTH_RESUME=iter_003.survivors``."""
    raw = os.environ.get(RESUME_VARIABLE, "").strip()
    return parse_resume_point(raw, iterations) if raw else None


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines; ``__default__`` is the tabular job."""
    iterations = pe_iterations()
    resume = resume_point(iterations)
    tabular = tabular_pipeline.create_pipeline(iterations, resume)
    return {
        "tabular": tabular,
        "text": text_pipeline.create_pipeline(iterations, resume),
        "image": image_pipeline.create_pipeline(iterations, resume),
        "__default__": tabular,
    }

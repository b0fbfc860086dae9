"""Project pipelines. The number of PE iterations T shapes the DAG, so it is read here."""

from __future__ import annotations

import os

from kedro.pipeline import Pipeline

from dp_synth.pipelines import tabular_pipeline

ITERATIONS_VARIABLE = "DP_SYNTH_ITERATIONS"
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


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines; ``__default__`` is the tabular job."""
    tabular = tabular_pipeline.create_pipeline(pe_iterations())
    return {"tabular": tabular, "__default__": tabular}

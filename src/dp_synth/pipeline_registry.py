"""Project pipelines. The number of PE iterations T shapes the DAG, so it is read here: from
``DP_SYNTH_ITERATIONS`` if set, else ``<job>.pe.iterations`` in the parameter files, else the
job's default in code."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.framework.project import settings as kedro_settings
from kedro.pipeline import Pipeline

from dp_synth.modalities.image.settings import ImageSettings
from dp_synth.modalities.tabular.settings import TabularSettings
from dp_synth.modalities.text.settings import TextSettings
from dp_synth.pe.settings import JobSettings
from dp_synth.pipelines.icl import pipeline as icl_pipeline
from dp_synth.pipelines.image import pipeline as image_pipeline
from dp_synth.pipelines.pe.pipeline import ResumePoint, parse_resume_point
from dp_synth.pipelines.tabular import pipeline as tabular_pipeline
from dp_synth.pipelines.text import pipeline as text_pipeline

ITERATIONS_VARIABLE = "DP_SYNTH_ITERATIONS"
RESUME_VARIABLE = "DP_SYNTH_RESUME"
JOB_SETTINGS: dict[str, type[JobSettings]] = {"tabular": TabularSettings, "text": TextSettings, "image": ImageSettings}
"""Each job's typed settings (their defaults are the defaults in code)."""
DEFAULT_ITERATIONS = {job: model().pe.iterations for job, model in JOB_SETTINGS.items()}
"""T of each job when neither ``DP_SYNTH_ITERATIONS`` nor the parameter files set it."""
_BUILDERS: dict[str, Callable[..., Pipeline]] = {
    "tabular": tabular_pipeline.create_pipeline,
    "text": text_pipeline.create_pipeline,
    "image": image_pipeline.create_pipeline,
}


@functools.cache
def _configured_parameters() -> dict[str, Any]:
    """The project's parameter files (base and local), as ``kedro run`` merges them; empty
    outside a project folder."""
    conf = Path.cwd() / kedro_settings.CONF_SOURCE
    if not conf.is_dir():
        return {}
    with warnings.catch_warnings():  # Kedro's own use of a deprecated OmegaConf call
        warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)
        loader = kedro_settings.CONFIG_LOADER_CLASS(conf_source=str(conf), **kedro_settings.CONFIG_LOADER_ARGS)
        return dict(loader["parameters"])


def iterations_from_environment() -> bool:
    """Whether ``DP_SYNTH_ITERATIONS`` sets T (it then wins over the parameter files)."""
    return bool(os.environ.get(ITERATIONS_VARIABLE, "").strip())


def pe_iterations(job: str) -> int:
    """T of ``job``: ``DP_SYNTH_ITERATIONS``, else ``<job>.pe.iterations`` in the parameter
    files, else ``DEFAULT_ITERATIONS[job]``. The same value builds the DAG and calibrates the
    noise, so the budget pays for exactly the histograms that are released."""
    if iterations_from_environment():
        source, raw = ITERATIONS_VARIABLE, os.environ[ITERATIONS_VARIABLE]
    else:
        configured = (_configured_parameters().get(job) or {}).get("pe") or {}
        source, raw = f"{job}.pe.iterations", configured.get("iterations", DEFAULT_ITERATIONS[job])
    if isinstance(raw, bool) or not str(raw).strip().isdigit() or int(raw) < 1:
        raise ValueError(f"{source} (T) must be an integer >= 1 (T < 1 runs nothing), got {raw!r}")
    return int(raw)


def resume_point(iterations: int) -> ResumePoint | None:
    """Where to resume a failed run, from ``DP_SYNTH_RESUME`` (unset: a fresh run). The failed
    run's log prints the whole command, e.g. ``DP_SYNTH_RESUME=iter_003.survivors
    DP_SYNTH_ITERATIONS=5 kedro run --pipelines=text``."""
    raw = os.environ.get(RESUME_VARIABLE, "").strip()
    return parse_resume_point(raw, iterations) if raw else None


def create_job_pipeline(job: str) -> Pipeline:
    """The pipeline of ``job`` with the T and resume point of this process's environment."""
    iterations = pe_iterations(job)
    return _BUILDERS[job](iterations, resume_point(iterations), iterations_from_environment())


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines: the PE jobs, the DP few-shot job (``icl``, no
    iterations); ``__default__`` is the tabular job."""
    pipelines = {job: create_job_pipeline(job) for job in _BUILDERS}
    return {**pipelines, "icl": icl_pipeline.create_pipeline(), "__default__": pipelines["tabular"]}

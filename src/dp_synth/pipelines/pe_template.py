"""The Private Evolution loop as Kedro pipelines, written once for every modality.

``private_evolution_pipeline(T)`` expects these datasets from the modality's own pipeline:

- ``public_modality``: an object implementing ``dp_synth.core.modality.Modality``, built from
  public knowledge only (the loop uses ``modality``: the same with its DP statistics, if any);
- ``private_table``, ``private_embeddings`` and ``private_labels``: in memory only, never saved;
- ``reference_summary``: what the modality's quality diagnostic compares against;

and the parameters ``params:dp``, ``params:pe`` and ``params:release``. It produces ``privacy_plan``,
``class_weights``, ``class_sizes``, ``initial_population``, for each iteration ``iter_NNN.histogram``,
``iter_NNN.survivors``, ``iter_NNN.metrics`` and (but the last) ``iter_NNN.population``, then
``synthetic_data`` and ``iteration_metrics`` (one row per iteration). The caller wraps it in the modality's namespace.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial, update_wrapper
from typing import Any

from kedro.pipeline import Node, Pipeline

from dp_synth.pipelines import pe_nodes

SHARED_INPUTS = {
    "modality",
    "private_embeddings",
    "private_labels",
    "privacy_plan",
    "class_weights",
    "class_sizes",
    "reference_summary",
}
SHARED_PARAMETERS = {"params:pe", "params:release"}


def _bind(function: Callable[..., Any], **bound: Any) -> Callable[..., Any]:
    """``partial`` that keeps the function's name and docstring (Kedro and kedro-viz show them)."""
    return update_wrapper(partial(function, **bound), function)


@contextmanager
def _reading_sibling_namespaces() -> Iterator[None]:
    """Silence Kedro's warning about dotted dataset names while building nodes that read an
    iteration's outputs (``iter_001.population``, ``iter_001.metrics``): that is intended."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'", category=UserWarning)
        yield


def iteration_namespace(iteration: int) -> str:
    """Namespace of iteration ``iteration``: ``iter_001``, ``iter_002``, ..."""
    return f"iter_{iteration:03d}"


def iteration_template(iteration: int, *, final: bool) -> Pipeline:
    """One PE iteration: embed -> DP histogram -> resample -> vary, plus its metrics.

    Args:
        iteration: t, from 1.
        final: The last iteration releases ``synthetic_data`` (drawn from its candidates by its
            histogram) instead of varying its survivors.
    """
    nodes = [
        Node(pe_nodes.embed_population, ["modality", "candidates"], "candidate_embeddings", name="embed"),
        Node(
            _bind(pe_nodes.dp_histogram, iteration=iteration),
            ["modality", "candidates", "candidate_embeddings", "private_embeddings", "private_labels",
             "privacy_plan", "params:pe"],
            "histogram",
            name="dp_histogram",
        ),
        Node(
            _bind(pe_nodes.resample, iteration=iteration),
            ["modality", "candidates", "histogram", "class_sizes", "privacy_plan", "params:pe"],
            "survivors",
            name="resample",
        ),
        Node(
            _bind(pe_nodes.summarise_iteration, iteration=iteration),
            ["modality", "survivors", "histogram", "reference_summary", "privacy_plan"],
            "metrics",
            name="evaluate_iteration",
        ),
    ]
    if final:
        nodes.append(
            Node(
                pe_nodes.release_synthetic_data,
                ["modality", "candidates", "histogram", "class_weights", "privacy_plan", "params:release"],
                "synthetic_data",
                name="release_synthetic_data",
            )
        )
    else:
        nodes.append(
            Node(
                _bind(pe_nodes.vary, iteration=iteration),
                ["modality", "survivors", "privacy_plan", "params:pe"],
                "population",
                name="vary",
            )
        )
    used = {name for node in nodes for name in node.inputs}
    previous = "initial_population" if iteration == 1 else f"{iteration_namespace(iteration - 1)}.population"
    with _reading_sibling_namespaces():
        return Pipeline(
            nodes,
            namespace=iteration_namespace(iteration),
            inputs={"candidates": previous, **{name: name for name in SHARED_INPUTS & used}},
            outputs={"synthetic_data": "synthetic_data"} if final else None,
            parameters=SHARED_PARAMETERS & used,
        )


def private_evolution_pipeline(iterations: int) -> Pipeline:
    """Calibration, class sizes, initial population, T iterations and the release.

    Args:
        iterations: T. It is bound into the calibration node, so the budget pays for exactly
            the histograms this DAG releases.
    """
    if not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"the number of iterations T must be an integer >= 1, got {iterations!r}")
    setup = Pipeline(
        [
            Node(
                _bind(pe_nodes.calibrate_privacy, iterations=iterations),
                ["public_modality", "params:dp", "params:pe", "params:release"],
                "privacy_plan",
                name="calibrate_privacy",
            ),
            Node(
                pe_nodes.fit_generator,
                ["public_modality", "private_table", "privacy_plan"],
                "modality",
                name="fit_generator",
            ),
            Node(
                pe_nodes.measure_class_distribution,
                ["modality", "private_labels", "privacy_plan"],
                "class_weights",
                name="dp_class_counts",
            ),
            Node(pe_nodes.allocate_population, ["class_weights", "params:pe"], "class_sizes", name="allocate_population"),
            Node(
                pe_nodes.generate_initial_population,
                ["modality", "class_sizes", "privacy_plan"],
                "initial_population",
                name="generate_initial_population",
            ),
        ]
    )
    loop = [iteration_template(t, final=t == iterations) for t in range(1, iterations + 1)]
    with _reading_sibling_namespaces():
        collect = Node(
            pe_nodes.collect_iteration_metrics,
            [f"{iteration_namespace(t)}.metrics" for t in range(1, iterations + 1)],
            "iteration_metrics",
            name="collect_iteration_metrics",
        )
    return Pipeline([setup, *loop, collect])

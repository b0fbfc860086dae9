"""``kedro run --pipeline=image``: PE on labelled images with a glyph simulator or a diffusion model."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from dp_synth.pipelines.image import nodes as image_nodes
from dp_synth.pipelines.pe import nodes as pe_nodes
from dp_synth.pipelines.pe.pipeline import ResumePoint, preparation_pipeline, private_evolution_pipeline

NAMESPACE = "image"


def create_pipeline(iterations: int, resume: ResumePoint | None = None) -> Pipeline:
    """The image job under the ``image`` namespace.

    Catalog inputs: ``image.schema`` (public classes, glyphs, image size), ``image.private_data``
    (private) and ``image.reference_data`` (held-out, diagnostics only). Outputs besides the
    versioned populations: ``image.synthetic_data`` (the release), ``image.evaluation_report``,
    ``image.grid_plot`` and ``image.iterations_plot``.

    Args:
        iterations: T, the number of PE iterations.
        resume: Where to resume a failed run, or ``None`` for a fresh run.
    """
    prepare = preparation_pipeline(
        Node(
            image_nodes.build_modality,
            ["schema", "params:generator", "params:embedding"],
            "public_modality",
            name="build_modality",
        ),
        image_nodes.load_private_images,
        image_nodes.load_reference_images,
    )
    evaluate = Pipeline(
        [
            Node(
                image_nodes.evaluate_synthetic_images,
                ["synthetic_data", "private_table", "private_embeddings", "reference_table", "reference_summary",
                 "public_modality", "params:evaluation"],
                "evaluation_report",
                name="evaluate",
            ),
            Node(
                image_nodes.plot_image_grid,
                ["synthetic_data", "public_modality", "params:evaluation"],
                "grid_plot",
                name="plot_image_grid",
            ),
            Node(pe_nodes.plot_iterations, "iteration_metrics", "iterations_plot", name="plot_reports"),
        ]
    )
    return Pipeline([prepare, private_evolution_pipeline(iterations, resume), evaluate], namespace=NAMESPACE)

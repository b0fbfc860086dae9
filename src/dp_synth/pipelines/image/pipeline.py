"""``kedro run --pipeline=image``: PE on labelled images with a glyph simulator, a diffusion or
text-to-image model, or a public image folder."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from dp_synth.modalities.image.settings import ImageSettings
from dp_synth.pipelines.image import nodes as image_nodes
from dp_synth.pipelines.pe.pipeline import ResumePoint, job_pipeline, preparation_pipeline

NAMESPACE = "image"


def create_pipeline(
    iterations: int, resume: ResumePoint | None = None, iterations_from_environment: bool = False
) -> Pipeline:
    """The image job, its datasets named ``image.*``.

    Catalog inputs: ``image.schema`` (public classes, glyphs, image size), ``image.private_data``
    (private), ``image.reference_data`` (held-out, diagnostics only) and ``image.public_images``
    (a declared-public image folder, read only by the retrieval simulator). Outputs besides the
    versioned populations: ``image.synthetic_data`` (the release), ``image.evaluation_report``,
    ``image.grid_plot`` and ``image.iterations_plot``.

    Arguments as ``job_pipeline``'s.
    """
    prepare = preparation_pipeline(
        image_nodes.build_modality,
        image_nodes.load_reference_images,
        modality_inputs=("public_images",),
        reference_inputs=("settings",),
    )
    evaluate = Pipeline(
        [
            Node(
                image_nodes.evaluate_synthetic_images,
                [
                    "synthetic_data",
                    "private_table",
                    "private_embeddings",
                    "reference_table",
                    "reference_summary",
                    "public_modality",
                    "settings",
                ],
                "evaluation_report",
                name="evaluate",
            ),
            Node(
                image_nodes.plot_image_grid,
                ["synthetic_data", "public_modality", "settings"],
                "grid_plot",
                name="plot_image_grid",
            ),
        ]
    )
    return job_pipeline(
        NAMESPACE,
        ImageSettings,
        prepare,
        image_nodes.load_private_images,
        evaluate,
        iterations,
        resume,
        iterations_from_environment,
    )

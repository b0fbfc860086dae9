"""``kedro run --pipeline=text``: Aug-PE on a labelled corpus with a local or hosted LLM."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from dp_synth.modalities.text.settings import TextSettings
from dp_synth.pipelines.pe.pipeline import ResumePoint, job_pipeline, preparation_pipeline
from dp_synth.pipelines.text import nodes as text_nodes

NAMESPACE = "text"


def create_pipeline(
    iterations: int, resume: ResumePoint | None = None, iterations_from_environment: bool = False
) -> Pipeline:
    """The text job, its datasets named ``text.*``.

    Catalog inputs: ``text.schema`` (public classes and their descriptions),
    ``text.private_data`` (private), ``text.reference_data`` (held-out, diagnostics only) and
    ``text.llm_api_key`` (from credentials). Outputs besides the versioned populations:
    ``text.synthetic_data`` (the release), ``text.evaluation_report``,
    ``text.synthetic_samples`` and ``text.iterations_plot``.

    Arguments as ``job_pipeline``'s.
    """
    prepare = preparation_pipeline(
        text_nodes.build_modality,
        text_nodes.load_reference_corpus,
        modality_inputs=("llm_api_key",),
        reference_inputs=("settings",),
    )
    evaluate = Pipeline(
        [
            Node(
                text_nodes.evaluate_synthetic_texts,
                [
                    "synthetic_data",
                    "private_embeddings",
                    "reference_summary",
                    "reference_table",
                    "public_modality",
                    "settings",
                ],
                "evaluation_report",
                name="evaluate",
            ),
            Node(
                text_nodes.sample_synthetic_texts,
                ["synthetic_data", "settings"],
                "synthetic_samples",
                name="sample_synthetic_texts",
            ),
        ]
    )
    return job_pipeline(
        NAMESPACE,
        TextSettings,
        prepare,
        text_nodes.load_private_corpus,
        evaluate,
        iterations,
        resume,
        iterations_from_environment,
    )

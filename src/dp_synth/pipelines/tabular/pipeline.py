"""``kedro run --pipeline=tabular``: Tab-PE on a table with a declared public schema."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from dp_synth.modalities.tabular.settings import TabularSettings, plan_settings
from dp_synth.pipelines.pe.pipeline import ResumePoint, job_pipeline, preparation_pipeline
from dp_synth.pipelines.tabular import nodes as tabular_nodes

NAMESPACE = "tabular"


def create_pipeline(
    iterations: int, resume: ResumePoint | None = None, iterations_from_environment: bool = False
) -> Pipeline:
    """The tabular job, its datasets named ``tabular.*``.

    Catalog inputs: ``tabular.schema`` (public), ``tabular.private_data`` (private) and
    ``tabular.reference_data`` (held-out, used only by diagnostics). Outputs besides the
    versioned populations: ``tabular.synthetic_data`` (the release), ``tabular.evaluation_report``
    and three figures (diagnostics for the data owner).

    Arguments as ``job_pipeline``'s.
    """
    prepare = preparation_pipeline(
        tabular_nodes.build_modality,
        tabular_nodes.load_reference_data,
        reference_inputs=("settings",),
    )
    evaluate = Pipeline(
        [
            Node(
                tabular_nodes.evaluate_synthetic_data,
                [
                    "synthetic_data",
                    "private_table",
                    "reference_table",
                    "public_modality",
                    "settings",
                    "generator_plan",
                    "generator_statistics",
                ],
                "evaluation_report",
                name="evaluate",
            ),
            Node(
                tabular_nodes.plot_reports,
                ["synthetic_data", "reference_table", "public_modality", "settings"],
                ["marginals_plot", "associations_plot"],
                name="plot_reports",
            ),
        ]
    )
    return job_pipeline(
        NAMESPACE,
        TabularSettings,
        prepare,
        tabular_nodes.load_private_data,
        evaluate,
        iterations,
        resume,
        iterations_from_environment,
        plan_settings,
    )

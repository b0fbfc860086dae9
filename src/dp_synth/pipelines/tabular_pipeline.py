"""``kedro run --pipeline=tabular``: Tab-PE on a table with a declared public schema."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from dp_synth.pipelines import pe_nodes, tabular_nodes
from dp_synth.pipelines.pe_template import private_evolution_pipeline

NAMESPACE = "tabular"


def create_pipeline(iterations: int) -> Pipeline:
    """The tabular job under the ``tabular`` namespace.

    Catalog inputs: ``tabular.schema`` (public), ``tabular.private_data`` (private) and
    ``tabular.reference_data`` (held-out, used only by diagnostics). Outputs besides the
    versioned populations: ``tabular.synthetic_data`` (the release), ``tabular.evaluation_report``
    and three figures (diagnostics for the data owner).
    """
    prepare = Pipeline(
        [
            Node(
                tabular_nodes.build_modality, ["schema", "params:generator"], "public_modality", name="build_modality"
            ),
            Node(
                tabular_nodes.load_private_data,
                ["private_data", "public_modality"],
                "private_table",
                name="load_private_data",
            ),
            Node(
                pe_nodes.embed_private_data,
                ["public_modality", "private_table"],
                ["private_embeddings", "private_labels"],
                name="embed_private_data",
            ),
            Node(
                tabular_nodes.load_reference_data,
                ["reference_data", "public_modality"],
                "reference_table",
                name="load_reference_data",
            ),
            Node(
                tabular_nodes.summarise_reference,
                ["public_modality", "reference_table"],
                "reference_summary",
                name="summarise_reference",
            ),
        ]
    )
    evaluate = Pipeline(
        [
            Node(
                tabular_nodes.evaluate_synthetic_data,
                ["synthetic_data", "private_table", "reference_table", "public_modality", "params:evaluation"],
                "evaluation_report",
                name="evaluate",
            ),
            Node(
                tabular_nodes.plot_reports,
                ["iteration_metrics", "synthetic_data", "reference_table", "public_modality", "params:evaluation"],
                ["iterations_plot", "marginals_plot", "associations_plot"],
                name="plot_reports",
            ),
        ]
    )
    return Pipeline([prepare, private_evolution_pipeline(iterations), evaluate], namespace=NAMESPACE)

"""``kedro run --pipeline=icl``: DP few-shot demonstrations for in-context learning, with the
text job's model backends, corpus schema and privacy ledger."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from dp_synth.pipelines.icl import nodes as icl_nodes
from dp_synth.pipelines.pe import nodes as pe_nodes
from dp_synth.pipelines.pe.pipeline import bind, privacy_report_node

NAMESPACE = "icl"


def create_pipeline() -> Pipeline:
    """The job under the ``icl`` namespace.

    Catalog inputs: ``icl.schema`` (public), ``icl.private_data`` (private),
    ``icl.reference_data`` (held-out, evaluation only) and ``icl.llm_api_key``. Outputs:
    ``icl.synthetic_data`` (the released demonstrations), ``icl.privacy_report``,
    ``icl.privacy_plan``, ``icl.ledger_run`` and ``icl.evaluation_report``; the private
    examples (``private_table``) and their groups (``groups``) stay in memory.
    """
    return Pipeline(
        [
            Node(icl_nodes.parse_settings, "params:icl", "settings", name="parse_settings"),
            Node(icl_nodes.build_task, ["schema", "settings", "llm_api_key"], "task", name="build_task"),
            Node(icl_nodes.plan_privacy, ["task", "settings"], "calibrated_plan", name="calibrate_privacy"),
            Node(
                bind(pe_nodes.admit_run, job=NAMESPACE, load=icl_nodes.load_private_examples),
                ["schema", "private_data", "task", "calibrated_plan", "settings"],
                ["ledger_run", "privacy_plan", "private_table"],
                name="admit_run",
            ),
            Node(
                icl_nodes.partition_groups,
                ["private_table", "task", "privacy_plan", "settings"],
                "groups",
                name="partition_groups",
            ),
            Node(
                icl_nodes.generate_demonstrations,
                ["groups", "task", "privacy_plan", "ledger_run", "settings"],
                "synthetic_data",
                name="dp_token_votes",
            ),
            privacy_report_node(),
            Node(
                icl_nodes.load_reference_examples,
                ["reference_data", "task", "settings"],
                "reference_table",
                name="load_reference_data",
            ),
            Node(
                icl_nodes.evaluate_demonstrations,
                ["synthetic_data", "reference_table", "task"],
                "evaluation_report",
                name="evaluate",
            ),
        ],
        namespace=NAMESPACE,
        parameters={"params:icl"},
    )

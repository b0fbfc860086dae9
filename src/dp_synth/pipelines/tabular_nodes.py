"""Node functions specific to tabular PE: the public schema, private data, evaluation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from dp_synth.core.schema import TableSchema, check_every_class_present, conform, parse_schema
from dp_synth.core.tabular import TabularModality, VariationSchedule

logger = logging.getLogger(__name__)


def build_modality(schema_json: Mapping[str, Any], generator: Mapping[str, Any]) -> TabularModality:
    """Build the tabular modality from the declared public schema and generator settings.

    Args:
        schema_json: The public schema (see ``dp_synth.core.schema``).
        generator: ``variation`` (``r0``, ``rf``, ``gamma``), ``categorical_weight`` and
            ``marginal_bins`` (bins of a wide numeric column's DP marginal).
    """
    schema = parse_schema(schema_json)
    return TabularModality(
        schema=schema,
        schedule=VariationSchedule(**generator["variation"]),
        categorical_weight=float(generator["categorical_weight"]),
        marginal_bins=int(generator["marginal_bins"]),
    )


def load_private_data(private_raw: pd.DataFrame, modality: TabularModality) -> pd.DataFrame:
    """Check the private table against the public schema and return it with canonical dtypes.

    Raises:
        SchemaError: for missing or extra columns, missing values, values outside the declared
            domain, or a declared class with no private rows.
    """
    table = conform(private_raw, modality.schema)
    check_every_class_present(table[modality.label_column], modality.schema)
    return table


def load_reference_data(reference_raw: pd.DataFrame, modality: TabularModality) -> pd.DataFrame:
    """Check the held-out evaluation table against the public schema."""
    return conform(reference_raw, modality.schema)


def summarise_reference(modality: TabularModality, reference_table: pd.DataFrame) -> Any:
    """Precompute the reference statistics of the per-iteration quality diagnostic."""
    return modality.summarise_reference(reference_table)


def _model_matrix(table: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """Numeric features as they are; categoricals as their code in the public category list."""
    return np.column_stack(
        [
            table[column.name].to_numpy(dtype=float)
            if column.is_numeric
            else pd.Categorical(table[column.name], categories=column.categories).codes.astype(float)
            for column in schema.features
        ]
    )


def evaluate_synthetic_data(
    synthetic_data: pd.DataFrame,
    reference_table: pd.DataFrame,
    modality: TabularModality,
    evaluation: Mapping[str, Any],
) -> dict[str, float]:
    """Train a gradient-boosted classifier on the synthetic table; score it on the held-out table.

    A diagnostic for the data owner, not a DP release: it reads the real held-out table.
    """
    schema = modality.schema
    classifier = HistGradientBoostingClassifier(
        categorical_features=[not column.is_numeric for column in schema.features],
        random_state=evaluation["seed"],
    )
    classifier.fit(_model_matrix(synthetic_data, schema), synthetic_data[schema.label_column])
    accuracy = float(
        classifier.score(_model_matrix(reference_table, schema), reference_table[schema.label_column])
    )
    logger.info("Evaluation: gradient boosting trained on synthetic data, test accuracy %.4f", accuracy)
    return {"final_gbm_accuracy": accuracy, "final_rows": float(len(synthetic_data))}

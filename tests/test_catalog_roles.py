"""The hooks recognise a dataset by what its catalog entry declares, not by its name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kedro.io import DataCatalog

from dp_synth.hooks.catalog_roles import tracked

PROJECT_CONF = Path(__file__).resolve().parents[1] / "conf" / "base"


def test_a_factory_entry_declares_its_role_and_artifact_with_placeholders_filled_in():
    catalog = DataCatalog.from_config(
        yaml.safe_load((PROJECT_CONF / "catalog.yml").read_text()),
        yaml.safe_load((PROJECT_CONF / "credentials.yml").read_text()),
    )
    figure = tracked(catalog, "image.grid_plot")
    assert figure is not None and (figure.log, figure.artifact) == ("figure", "reports/grid.png")
    report = tracked(catalog, "text.privacy_report")
    assert report is not None and (report.log, report.artifact) == ("privacy_report", "reports/privacy_report.json")
    metrics = tracked(catalog, "tabular.iter_007.metrics")
    assert metrics is not None and (metrics.log, metrics.artifact) == ("iteration_metrics", None)


def test_the_role_follows_the_declaration_not_the_name():
    catalog = DataCatalog.from_config(
        {
            "owner_copy.privacy_report": {"type": "MemoryDataset"},
            "shipped": {"type": "MemoryDataset", "metadata": {"mlflow": {"log": "privacy_report"}}},
        }
    )
    assert tracked(catalog, "owner_copy.privacy_report") is None
    assert tracked(catalog, "undeclared") is None
    shipped = tracked(catalog, "shipped")
    assert shipped is not None and shipped.log == "privacy_report"


@pytest.mark.parametrize("declared", [{"log": "private_rows"}, {"log": "figure", "path": "reports/x.png"}])
def test_an_unknown_declaration_is_refused_with_the_entry_named(declared):
    catalog = DataCatalog.from_config({"odd": {"type": "MemoryDataset", "metadata": {"mlflow": declared}}})
    with pytest.raises(ValueError, match="catalog entry 'odd': metadata.mlflow"):
        tracked(catalog, "odd")

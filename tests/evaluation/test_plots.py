"""Report figures a reader can read: bin edges written out, one iteration shown as a table."""

from __future__ import annotations

import pandas as pd
import pytest

from dp_synth.evaluation.plots import plot_iteration_metrics
from dp_synth.modalities.tabular.schema import readable_number


@pytest.mark.parametrize(
    ("edge", "label"), [(100_000.0, "100,000"), (12_500.0, "12,500"), (150.0, "150"), (0.125, "0.125"), (-3.5, "-3.5")]
)
def test_bin_edges_are_written_without_scientific_notation(edge, label):
    assert readable_number(edge) == label


def test_a_single_iteration_is_a_table_not_one_dot_panels():
    one = plot_iteration_metrics(pd.DataFrame({"iteration": [1], "epsilon_spent": [1.0], "tvd_1way": [0.02]}))
    (axis,) = one.axes
    assert not axis.lines and axis.tables  # no plotted points, one table
    several = plot_iteration_metrics(pd.DataFrame({"iteration": [1, 2], "epsilon_spent": [0.5, 1.0]}))
    assert several.axes[0].lines

"""Report figures a reader can read: bin edges written out, one iteration shown as what its histogram did."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dp_synth.evaluation.plots import cramers_v_matrix, plot_iteration_metrics
from dp_synth.modalities.tabular.schema import readable_number
from dp_synth.pe.histogram import NoisyHistogram, spread_over_groups


@pytest.mark.parametrize(
    ("edge", "label"), [(100_000.0, "100,000"), (12_500.0, "12,500"), (150.0, "150"), (0.125, "0.125"), (-3.5, "-3.5")]
)
def test_bin_edges_are_written_without_scientific_notation(edge, label):
    assert readable_number(edge) == label


def test_a_single_iteration_shows_what_its_histogram_did_not_one_dot_panels():
    votes = np.array([40.0, 30.0, 0.0, 0.0])  # four bins of candidates, the last two without votes
    noisy = votes + np.array([1.0, -2.0, 0.5, -0.5])
    released = spread_over_groups(
        NoisyHistogram(noisy=noisy, thresholded=np.maximum(noisy - 1.0, 0.0)), np.repeat(np.arange(4), [1, 2, 3, 4])
    )
    metrics = pd.DataFrame({"iteration": [1], "epsilon_spent": [1.0], "tvd_1way": [0.02]})
    kept_axis, votes_axis = plot_iteration_metrics(metrics, released, sigma=2.0, threshold=1.0).axes
    texts = [text.get_text() for text in kept_axis.texts]
    assert texts == ["30% kept (3 of 10)", "50% kept (2 of 4)"]  # candidates, then bins
    assert sum(patch.get_height() for patch in votes_axis.patches[:50]) == 4  # one noisy count per bin
    assert {"threshold H = 1", "a bin without votes: 95% within +/- 3.92"} <= {
        text.get_text() for text in votes_axis.get_legend().get_texts()
    }
    several = plot_iteration_metrics(
        pd.DataFrame({"iteration": [1, 2], "epsilon_spent": [0.5, 1.0]}), released, 2.0, 1.0
    )
    assert several.axes[0].lines


def test_cramers_v_counts_only_the_values_each_pair_shows():
    """The same numbers as the contingency tables of ``pd.crosstab`` (absent values dropped)."""
    codes = np.random.default_rng(0).integers(0, 6, size=(400, 4))
    codes[:, 2] = np.where(codes[:, 2] == 3, 5, codes[:, 2])  # a value never seen in one column
    codes[:, 3] = 2  # a constant column: no association
    expected = np.eye(4)
    for i in range(4):
        for j in range(i + 1, 4):
            table = pd.crosstab(codes[:, i], codes[:, j]).to_numpy(dtype=float)
            if min(table.shape) < 2:
                continue
            outer = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
            chi_squared = ((table - outer) ** 2 / outer).sum()
            expected[i, j] = expected[j, i] = np.sqrt(chi_squared / table.sum() / (min(table.shape) - 1))
    np.testing.assert_allclose(cramers_v_matrix(codes), expected, rtol=1e-12)

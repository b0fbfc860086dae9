"""The DP nearest-neighbour histogram: vote mass, per-class voting and the L2 sensitivity bound."""

from __future__ import annotations

import numpy as np
import pytest

from dp_synth.pe.histogram import (
    NoisyHistogram,
    class_conditional_votes,
    cluster_bins,
    distinct_candidates,
    nearest_candidates,
    nearest_neighbour_votes,
    release,
    spread_over_groups,
)


def removal_changes(private, private_labels, candidates, candidate_labels, k, bins=None) -> list[float]:
    """How far the vote vector moves (L2) when each private record in turn is removed."""
    full = class_conditional_votes(private, private_labels, candidates, candidate_labels, k, bins)
    return [
        float(
            np.linalg.norm(
                full
                - class_conditional_votes(
                    np.delete(private, i, axis=0), np.delete(private_labels, i), candidates, candidate_labels, k, bins
                )
            )
        )
        for i in range(len(private))
    ]


def test_each_record_votes_for_its_nearest_candidate():
    candidates = np.array([[0.0, 0.0], [10.0, 10.0]])
    private = np.array([[0.1, 0.0], [9.0, 9.5], [0.0, 0.2]])
    assert nearest_neighbour_votes(private, candidates, k=1).tolist() == [2.0, 1.0]


def test_k_votes_weigh_one_over_sqrt_k():
    candidates = np.arange(10, dtype=float)[:, None]
    private = np.array([[0.0]])
    votes = nearest_neighbour_votes(private, candidates, k=4)
    assert votes[:4] == pytest.approx([0.5] * 4)
    assert votes[4:].sum() == 0


def test_votes_stay_inside_the_record_class():
    candidates = np.array([[0.0], [1.0], [100.0]])
    candidate_labels = np.array(["a", "b", "b"])
    private = np.array([[0.0], [0.0]])
    private_labels = np.array(["b", "a"])
    votes = class_conditional_votes(private, private_labels, candidates, candidate_labels, k=1)
    assert votes.tolist() == [1.0, 1.0, 0.0]


@pytest.mark.parametrize("k", [1, 3, 5, 20])
def test_removing_any_record_moves_the_histogram_by_at_most_one_in_l2(k):
    rng = np.random.default_rng(0)
    private = rng.normal(size=(60, 4)).astype(np.float32)
    private_labels = rng.choice(["a", "b", "c"], size=60)
    candidates = rng.normal(size=(12, 4)).astype(np.float32)
    candidate_labels = np.repeat(["a", "b", "c"], 4)
    changes = removal_changes(private, private_labels, candidates, candidate_labels, k)
    assert max(changes) <= 1.0 + 1e-9
    if k <= 4:  # every class has 4 candidates: a record casts all k votes, and the bound is tight
        assert max(changes) == pytest.approx(1.0)


def test_release_adds_gaussian_noise_of_the_plan_sigma_and_thresholds():
    votes = np.zeros(200_000)
    histogram = release(votes, sigma=3.0, threshold=2.0, noise=np.random.default_rng(1))
    assert histogram.noisy.std() == pytest.approx(3.0, rel=0.01)
    assert histogram.noisy.mean() == pytest.approx(0.0, abs=0.03)
    assert (histogram.thresholded >= 0).all()
    assert np.array_equal(histogram.thresholded, np.maximum(histogram.noisy - 2.0, 0))


def test_identical_candidates_share_one_bin_and_its_count():
    candidates = np.array([[0.0], [0.0], [0.0], [5.0], [0.0]], dtype=np.float32)
    labels = np.array(["a", "a", "a", "a", "b"])  # the last one matches the first three but is of class b
    first, group = distinct_candidates(candidates, labels)
    assert len(first) == 3 and len(set(group[[0, 1, 2]])) == 1 and group[4] != group[0]
    private = np.array([[0.1], [0.2], [4.9], [0.0]], dtype=np.float32)
    private_labels = np.array(["a", "a", "a", "b"])
    votes = class_conditional_votes(private, private_labels, candidates[first], labels[first], k=1)
    assert sorted(votes.tolist()) == [1.0, 1.0, 2.0]  # both records near 0 vote for the one group
    changes = removal_changes(private, private_labels, candidates[first], labels[first], 1)
    assert changes == pytest.approx([1.0] * len(private))  # the release over groups keeps sensitivity 1
    released = NoisyHistogram(noisy=votes + 0.3, thresholded=votes)
    spread = spread_over_groups(released, group)
    assert spread.thresholded[:3].tolist() == pytest.approx([2 / 3] * 3)  # the group's 2 votes, shared
    assert spread.thresholded.sum() == pytest.approx(votes.sum())
    assert spread.noisy[:3].sum() == pytest.approx(released.noisy[group[0]])  # one noise draw per group
    assert spread.released == pytest.approx(released.noisy)  # the release per group, read back


def test_similar_candidates_share_a_bin_of_one_class():
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    candidates = np.vstack([centre + rng.normal(0, 0.1, size=(20, 2)) for centre in centres] * 2)
    labels = np.repeat(["a", "b"], 60)
    bins = cluster_bins(candidates, labels, candidates_per_bin=20, seed=0)
    assert len(np.unique(bins)) == 6 and np.array_equal(np.unique(bins), np.arange(6))
    for members in np.split(np.arange(120), 6):  # each blob of 20 is one bin, never shared across classes
        assert len(np.unique(bins[members])) == 1
    assert set(bins[labels == "a"]).isdisjoint(bins[labels == "b"])
    assert np.array_equal(cluster_bins(candidates, labels, candidates_per_bin=1, seed=0), np.arange(120))


def test_a_bin_collects_its_members_votes():
    candidates = np.array([[0.0], [0.1], [5.0], [5.1]])
    labels = np.array(["a", "a", "a", "a"])
    bins = np.array([0, 0, 1, 1])
    private = np.array([[0.0], [0.1], [0.05], [5.0]])
    votes = class_conditional_votes(private, np.array(["a"] * 4), candidates, labels, k=1, bins=bins)
    assert votes.tolist() == [3.0, 1.0]


@pytest.mark.parametrize("k", [1, 2, 5])
def test_votes_over_bins_move_by_at_most_one_in_l2_when_neighbours_share_a_bin(k):
    rng = np.random.default_rng(4)
    private = rng.normal(size=(40, 3)).astype(np.float32)
    private_labels = rng.choice(["a", "b"], size=40)
    candidates = rng.normal(size=(30, 3)).astype(np.float32)
    candidate_labels = np.repeat(["a", "b"], 15)
    bins = cluster_bins(candidates, candidate_labels, candidates_per_bin=5, seed=1)
    full = class_conditional_votes(private, private_labels, candidates, candidate_labels, k, bins)
    changes = removal_changes(private, private_labels, candidates, candidate_labels, k, bins)
    assert max(changes) == pytest.approx(1.0)  # a record's neighbours in one bin: one vote of weight 1, never sqrt(k)
    assert full.sum() <= len(private) * np.sqrt(k) + 1e-9


def test_candidates_per_bin_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="candidates_per_bin"):
        cluster_bins(np.zeros((4, 2)), np.array(["a"] * 4), candidates_per_bin=0, seed=0)


def test_the_nearest_candidates_do_not_depend_on_the_batch_a_row_comes_in():
    rng = np.random.default_rng(0)
    centres = rng.random((400, 12)).astype(np.float32)
    offsets = rng.standard_normal((400, 12)).astype(np.float32)
    offsets /= np.linalg.norm(offsets, axis=1, keepdims=True)
    # candidate pairs mirrored about a point: every such point is (nearly) as far from both
    candidates = np.vstack([centres + 0.1 * offsets, centres - 0.1 * offsets])
    private = np.vstack([centres, rng.random((3000, 12)).astype(np.float32)])
    whole = nearest_candidates(private, candidates, 3)
    parts = np.vstack([nearest_candidates(part, candidates, 3) for part in np.array_split(private, 7)])
    assert np.array_equal(whole, parts)
    exact = ((private[:, None, :].astype(np.float64) - candidates[None].astype(np.float64)) ** 2).sum(axis=2)
    assert np.array_equal(whole, np.lexsort((np.broadcast_to(np.arange(len(candidates)), exact.shape), exact))[:, :3])

"""Tests for prioritiser.diversity: diverse batches by score-weighted k-means."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prioritiser.diversity import _weighted_kmeans, select_diverse
from prioritiser.errors import SelectionError


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 60),
    k=st.integers(0, 70),
    zero_scores=st.booleans(),
    tied_scores=st.booleans(),
    duplicate_features=st.booleans(),
    magnitude=st.sampled_from([1e-150, 1.0, 1e150]),
)
def test_diverse_returns_k_distinct_indices_reproducibly(
    seed, n, k, zero_scores, tied_scores, duplicate_features, magnitude
):
    rng = np.random.default_rng(seed)
    scores = magnitude * rng.random(n) * (not zero_scores)
    scores = np.round(scores / magnitude, 1) * magnitude if tied_scores else scores
    features = magnitude * rng.normal(size=(n, 3))
    features = features[np.arange(n) % 3] if duplicate_features and n >= 3 else features
    picked = select_diverse(scores, features, k, np.random.default_rng(seed))
    assert picked.size == min(k, n)
    assert np.unique(picked).size == picked.size
    again = select_diverse(scores, features, k, np.random.default_rng(seed))
    np.testing.assert_array_equal(picked, again)


def test_diverse_spreads_a_batch_that_top_k_would_spend_on_one_clump():
    """Ten near-identical galaxies score highest; three separate groups score a little lower.

    Top-k would take three from the clump; the diverse batch takes one from each of three of
    the four groups, so at most one pick comes from the clump.
    """
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    features = np.concatenate([centre + 0.01 * rng.normal(size=(10, 2)) for centre in centres])
    scores = np.concatenate([np.full(10, 1.0), np.full(30, 0.9)]) + 1e-3 * rng.random(40)
    picked = select_diverse(scores, features, 3, np.random.default_rng(0), prefilter=40 / 3)
    groups = picked // 10
    assert np.unique(groups).size == 3
    assert (groups == 0).sum() <= 1


def test_diverse_with_prefilter_one_is_top_k():
    rng = np.random.default_rng(4)
    scores, features = rng.random(30), rng.normal(size=(30, 2))
    picked = select_diverse(scores, features, 5, rng, prefilter=1.0)
    np.testing.assert_array_equal(picked, np.argsort(-scores)[:5])


def test_diverse_ignores_low_scores_outside_the_prefilter():
    rng = np.random.default_rng(5)
    scores, features = rng.random(100), rng.normal(size=(100, 4))
    picked = select_diverse(scores, features, 4, rng, prefilter=2.0)
    assert set(picked) <= set(np.argsort(-scores)[:8])


def test_weighted_kmeans_separates_clear_clusters():
    rng = np.random.default_rng(6)
    points = np.concatenate([rng.normal(size=(20, 2)), 50.0 + rng.normal(size=(20, 2))])
    assignment = _weighted_kmeans(points, np.ones(40), 2, rng)
    assert np.unique(assignment[:20]).size == 1
    assert np.unique(assignment[20:]).size == 1
    assert assignment[0] != assignment[-1]


@pytest.mark.parametrize(
    ("scores", "features", "k", "prefilter", "message"),
    [
        (np.ones(3), np.ones((4, 2)), 1, 10.0, "scores \\[n\\] and features \\[n, d\\]"),
        (np.array([1.0, -1.0]), np.ones((2, 2)), 1, 10.0, "non-negative"),
        (np.array([1.0, np.nan]), np.ones((2, 2)), 1, 10.0, "finite"),
        (np.ones(2), np.ones((2, 2)), -1, 10.0, "integer k >= 0"),
        (np.ones(2), np.ones((2, 2)), 1.5, 10.0, "integer k >= 0"),
        (np.ones(2), np.ones((2, 2)), 1, 0.5, "prefilter >= 1"),
        (np.ones(2), np.ones((2, 2)), 1, np.inf, "finite prefilter"),
    ],
)
def test_diverse_rejects_bad_input(scores, features, k, prefilter, message):
    with pytest.raises(SelectionError, match=message):
        select_diverse(scores, features, k, np.random.default_rng(0), prefilter=prefilter)

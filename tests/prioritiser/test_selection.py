"""Tests for prioritiser.selection: top-k, power sampling and flagged batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prioritiser.errors import SelectionError
from prioritiser.selection import (
    ACTIVE_PRIORITY,
    RANDOM_SELECTION,
    select_batch,
    select_power,
    select_top_k,
)


def test_top_k_picks_the_highest_scores_best_first():
    rng = np.random.default_rng(0)
    scores = rng.random(50)
    picked = select_top_k(scores, 5)
    assert list(scores[picked]) == sorted(scores, reverse=True)[:5]


def test_top_k_breaks_ties_by_index_and_caps_at_n():
    scores = np.array([1.0, 3.0, 3.0, 2.0])
    np.testing.assert_array_equal(select_top_k(scores, 2), [1, 2])
    assert sorted(select_top_k(scores, 10)) == [0, 1, 2, 3]
    assert select_top_k(scores, 0).size == 0


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 40),
    k=st.integers(0, 50),
    beta=st.floats(0.0, 8.0),
)
def test_power_returns_k_distinct_indices_reproducibly(seed, n, k, beta):
    scores = np.random.default_rng(seed).random(n) * (np.arange(n) % 3 != 0)  # some zeros
    picked = select_power(scores, k, np.random.default_rng(seed), beta=beta)
    assert picked.size == min(k, n)
    assert np.unique(picked).size == picked.size
    again = select_power(scores, k, np.random.default_rng(seed), beta=beta)
    np.testing.assert_array_equal(picked, again)
    positive = int((scores > 0).sum())
    # zero scores are drawn only once every positive score is in
    assert (scores[picked[: min(positive, picked.size)]] > 0).all()


def test_power_draws_in_proportion_to_score():
    """Tolerance: each frequency within 5 standard errors of score / sum over 4,000 single draws."""
    scores = np.array([1.0, 2.0, 3.0, 4.0])
    rng = np.random.default_rng(1)
    first = np.array([select_power(scores, 1, rng)[0] for _ in range(4000)])
    frequency = np.bincount(first, minlength=4) / first.size
    expected = scores / scores.sum()
    standard_error = np.sqrt(expected * (1 - expected) / first.size)
    assert (np.abs(frequency - expected) < 5 * standard_error).all()


def test_power_with_large_beta_approaches_top_k():
    scores = np.linspace(0.1, 1.0, 30)
    picked = select_power(scores, 5, np.random.default_rng(2), beta=500.0)
    np.testing.assert_array_equal(picked, select_top_k(scores, 5))


@pytest.mark.parametrize(
    "call",
    [
        lambda rng: select_power(np.array([1.0, -0.5]), 1, rng),
        lambda rng: select_power(np.array([1.0, 2.0]), 1, rng, beta=-1.0),
        lambda rng: select_top_k(np.array([1.0, np.nan]), 1),
        lambda rng: select_top_k(np.ones((2, 2)), 1),
        lambda rng: select_top_k(np.ones(3), -1),
        lambda rng: select_batch(np.ones(3), 2, rng, method="batchbald"),
        lambda rng: select_batch(np.ones(3), 2, rng, random_fraction=1.5),
    ],
)
def test_invalid_requests_are_rejected(call):
    with pytest.raises(SelectionError):
        call(np.random.default_rng(0))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 60),
    k=st.integers(0, 70),
    fraction=st.floats(0.0, 1.0),
    method=st.sampled_from(["top_k", "power"]),
)
def test_batch_has_exact_count_no_duplicates_and_correct_flags(seed, n, k, fraction, method):
    scores = np.random.default_rng(seed).random(n)
    batch = select_batch(scores, k, np.random.default_rng(seed), method, random_fraction=fraction)
    count = min(k, n)
    assert len(batch) == count
    assert batch["index"].is_unique
    assert set(batch["selection"]) <= {ACTIVE_PRIORITY, RANDOM_SELECTION}
    n_random = int((batch["selection"] == RANDOM_SELECTION).sum())
    assert n_random == int(np.floor(count * fraction + 0.5))
    np.testing.assert_array_equal(batch["score"], scores[batch["index"]])
    again = select_batch(scores, k, np.random.default_rng(seed), method, random_fraction=fraction)
    assert batch.equals(again)


def test_top_k_batch_puts_the_best_galaxies_first_and_randoms_elsewhere():
    scores = np.random.default_rng(3).random(100)
    batch = select_batch(scores, 20, np.random.default_rng(4), random_fraction=0.25)
    active = batch[batch["selection"] == ACTIVE_PRIORITY]
    np.testing.assert_array_equal(active["index"], select_top_k(scores, 15))
    randoms = batch[batch["selection"] == RANDOM_SELECTION]
    assert len(randoms) == 5
    assert not set(randoms["index"]) & set(active["index"])

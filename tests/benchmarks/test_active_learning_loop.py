"""Tests for the harness's loop (benchmarks/active_learning_harness): acquire, loop, labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from active_learning_harness.heads import HeadSettings, posterior_samples, train_heads
from active_learning_harness.loop import LoopSettings, acquire, labels_to_reach, run_active_loop

from prioritiser.acquisition import get_acquisition, mutual_information
from prioritiser.errors import ConfigError
from prioritiser.selection import select_top_k
from tests.benchmarks.feature_fixtures import one_torch_thread, simulated_features  # noqa: F401
from zoobot.schemas import decals_dr5_schema

SCHEMA = decals_dr5_schema
N_ANSWERS = len(SCHEMA.label_cols)
FAST = HeadSettings(n_members=2, n_passes=3, max_steps=60, eval_every=10, patience=3)


@pytest.fixture(scope="module")
def galaxies() -> tuple[np.ndarray, np.ndarray]:
    return simulated_features(160, 3, 0)


def test_acquire_top_k_bald_takes_the_highest_bald_scores(galaxies):
    features, counts = galaxies
    heads = train_heads(features[:40], counts[:40], SCHEMA, FAST, 0)
    loop = LoopSettings(acquisition="bald", batch_size=5)
    picked = acquire(heads, features[40:], SCHEMA, loop, 3, np.random.default_rng(2))
    samples = posterior_samples(
        heads, features[40:], 3, int(np.random.default_rng(2).integers(2**31))
    )
    scores = get_acquisition("bald")(samples, SCHEMA)
    np.testing.assert_array_equal(picked, select_top_k(scores, 5))


def test_acquire_one_question_takes_the_highest_mutual_information_of_that_question(galaxies):
    features, counts = galaxies
    heads = train_heads(features[:40], counts[:40], SCHEMA, FAST, 0)
    loop = LoopSettings(acquisition="bald", batch_size=5, weights={"bar": 1.0})
    picked = acquire(heads, features[40:], SCHEMA, loop, 3, np.random.default_rng(2))
    samples = posterior_samples(
        heads, features[40:], 3, int(np.random.default_rng(2).integers(2**31))
    )
    bar = mutual_information(samples, SCHEMA)[:, SCHEMA.question_names.index("bar")]
    np.testing.assert_array_equal(picked, select_top_k(bar, 5))
    whole_tree = select_top_k(get_acquisition("bald")(samples, SCHEMA), 5)
    assert set(picked.tolist()) != set(whole_tree.tolist())


def test_acquire_uniform_weights_take_the_highest_summed_mutual_information(galaxies):
    features, counts = galaxies
    heads = train_heads(features[:40], counts[:40], SCHEMA, FAST, 0)
    uniform = {name: 1.0 for name in SCHEMA.question_names}
    loop = LoopSettings(acquisition="bald", batch_size=5, weights=uniform)
    picked = acquire(heads, features[40:], SCHEMA, loop, 3, np.random.default_rng(2))
    samples = posterior_samples(
        heads, features[40:], 3, int(np.random.default_rng(2).integers(2**31))
    )
    summed = mutual_information(samples, SCHEMA).sum(axis=1)
    np.testing.assert_array_equal(picked, select_top_k(summed, 5))
    asked_weighted = select_top_k(get_acquisition("bald")(samples, SCHEMA), 5)
    assert set(picked.tolist()) != set(asked_weighted.tolist())


def test_acquire_random_fraction_keeps_the_top_scores_and_adds_other_galaxies(galaxies):
    features, counts = galaxies
    heads = train_heads(features[:40], counts[:40], SCHEMA, FAST, 0)
    loop = LoopSettings(acquisition="bald", batch_size=10, random_fraction=0.4)
    picked = acquire(heads, features[40:], SCHEMA, loop, 3, np.random.default_rng(2))
    samples = posterior_samples(
        heads, features[40:], 3, int(np.random.default_rng(2).integers(2**31))
    )
    top = select_top_k(get_acquisition("bald")(samples, SCHEMA), 10)
    assert len(picked) == 10 == len(set(picked.tolist()))
    np.testing.assert_array_equal(picked[:6], top[:6])
    assert not set(picked[6:].tolist()) & set(top[:6].tolist())
    assert set(picked[6:].tolist()) != set(top[6:].tolist())  # drawn, not the next-best


def test_acquire_refuses_a_question_outside_the_schema(galaxies):
    features, counts = galaxies
    heads = train_heads(features[:40], counts[:40], SCHEMA, FAST, 0)
    loop = LoopSettings(acquisition="bald", batch_size=5, weights={"rings": 1.0})
    with pytest.raises(ConfigError, match="not in schema"):
        acquire(heads, features[40:], SCHEMA, loop, 3, np.random.default_rng(2))


def test_acquire_power_returns_distinct_indices(galaxies):
    features, counts = galaxies
    heads = train_heads(features[:40], counts[:40], SCHEMA, FAST, 0)
    loop = LoopSettings(acquisition="bald", selection="power", batch_size=30)
    picked = acquire(heads, features[40:], SCHEMA, loop, 3, np.random.default_rng(0))
    assert len(set(picked.tolist())) == 30 and picked.max() < len(features) - 40


def test_acquire_diverse_picks_well_scored_galaxies_spread_over_features(galaxies):
    features, counts = galaxies
    heads = train_heads(features[:40], counts[:40], SCHEMA, FAST, 0)
    loop = LoopSettings(acquisition="bald", selection="diverse", batch_size=8)
    picked = acquire(heads, features[40:], SCHEMA, loop, 3, np.random.default_rng(2))
    samples = posterior_samples(
        heads, features[40:], 3, int(np.random.default_rng(2).integers(2**31))
    )
    scores = get_acquisition("bald")(samples, SCHEMA)
    assert len(set(picked.tolist())) == 8
    assert set(picked.tolist()) <= set(select_top_k(scores, 80).tolist())


def test_loop_labels_each_galaxy_once_and_grows_by_batches(galaxies):
    features, counts = galaxies
    asked: list[np.ndarray] = []

    def oracle(indices: np.ndarray) -> np.ndarray:
        asked.append(np.array(indices))
        return counts[indices]

    loop = LoopSettings(acquisition="entropy", initial_size=10, batch_size=8, n_iterations=3)
    result = run_active_loop(
        features[:120], oracle, features[120:], counts[120:], SCHEMA, loop, FAST, 0
    )
    assert result.n_labelled == [10, 18, 26, 34]
    assert len(result.test_loss) == 4 and all(math.isfinite(x) for x in result.test_loss)
    assert [q.shape for q in result.question_loss] == [(len(SCHEMA.questions),)] * 4
    np.testing.assert_allclose([q.sum() for q in result.question_loss], result.test_loss)
    everything = np.concatenate(asked)
    assert len(everything) == 34 == len(set(everything.tolist()))
    assert [len(a) for a in result.acquired] == [10, 8, 8, 8]


def test_loops_differing_only_in_acquisition_share_their_start(galaxies):
    features, counts = galaxies
    results = [
        run_active_loop(
            features[:120],
            lambda indices: counts[indices],
            features[120:],
            counts[120:],
            SCHEMA,
            LoopSettings(acquisition=name, initial_size=10, batch_size=8, n_iterations=1),
            FAST,
            3,
        )
        for name in ("random", "bald")
    ]
    assert results[0].test_loss[0] == results[1].test_loss[0]
    np.testing.assert_array_equal(results[0].acquired[0], results[1].acquired[0])
    assert set(results[0].acquired[1].tolist()) != set(results[1].acquired[1].tolist())


def test_pool_scorer_replaces_the_acquisition_and_sees_the_unlabelled_pool(galaxies):
    features, counts = galaxies
    seen: list[np.ndarray] = []

    def prefer_high_indices(heads, indices: np.ndarray) -> np.ndarray:
        assert len(heads) == FAST.n_members
        seen.append(np.array(indices))
        return indices.astype(float)

    loop = LoopSettings(acquisition="bald", initial_size=10, batch_size=8, n_iterations=2)
    result = run_active_loop(
        features[:120],
        lambda indices: counts[indices],
        features[120:],
        counts[120:],
        SCHEMA,
        loop,
        FAST,
        0,
        pool_scorer=prefer_high_indices,
    )
    unlabelled = np.setdiff1d(np.arange(120), result.acquired[0])
    np.testing.assert_array_equal(seen[0], unlabelled)
    assert set(result.acquired[1].tolist()) == set(unlabelled[-8:].tolist())
    assert not set(seen[1].tolist()) & set(result.acquired[1].tolist())


def test_labels_to_reach_interpolates_between_points():
    labels = np.array([64, 128, 192, 256])
    losses = np.array([10.0, 8.0, 6.0, 7.0])
    assert labels_to_reach(labels, losses, 7.0) == pytest.approx(160.0)
    assert labels_to_reach(labels, losses, 6.0) == pytest.approx(192.0)
    assert labels_to_reach(labels, losses, 11.0) == 64.0
    assert math.isnan(labels_to_reach(labels, losses, 5.0))


@pytest.mark.parametrize(
    "make",
    [
        lambda: LoopSettings(selection="best"),
        lambda: LoopSettings(selection="diverse", random_fraction=0.25),
        lambda: LoopSettings(batch_size=1),
        lambda: LoopSettings(acquisition="entropy", weights={"bar": 1.0}),
        lambda: LoopSettings(random_fraction=1.5),
    ],
)
def test_bad_settings_raise_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_unknown_acquisition_is_refused():
    with pytest.raises(LookupError, match="no acquisition function"):
        LoopSettings(acquisition="oracle")


def test_pool_smaller_than_initial_set_is_refused(galaxies):
    features, counts = galaxies
    with pytest.raises(ConfigError, match="initial_size"):
        run_active_loop(
            features[:5],
            lambda indices: counts[indices],
            features,
            counts,
            SCHEMA,
            LoopSettings(initial_size=10),
            FAST,
            0,
        )

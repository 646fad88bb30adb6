"""Tests for the harness's heads (benchmarks/active_learning_harness): training and MC samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from active_learning_harness.heads import (
    HeadSettings,
    ensemble_loss,
    posterior_samples,
    question_losses,
    train_heads,
)

from prioritiser.errors import ConfigError
from tests.benchmarks.feature_fixtures import one_torch_thread, simulated_features  # noqa: F401
from zoobot.losses import tree_nll
from zoobot.schemas import decals_dr5_schema

SCHEMA = decals_dr5_schema
N_ANSWERS = len(SCHEMA.label_cols)
FAST = HeadSettings(n_members=2, n_passes=3, max_steps=60, eval_every=10, patience=3)
MLP = HeadSettings(
    n_members=2,
    n_passes=3,
    hidden=16,
    input_dropout=0.2,
    learning_rate=0.01,
    max_steps=40,
    eval_every=10,
    patience=3,
)


@pytest.fixture(scope="module")
def galaxies() -> tuple[np.ndarray, np.ndarray]:
    return simulated_features(120, 4, 1)


@pytest.mark.parametrize("settings", [FAST, MLP], ids=["linear", "mlp"])
def test_training_lowers_the_loss_below_untrained_heads(galaxies, settings):
    features, counts = galaxies
    untrained = train_heads(features, counts, SCHEMA, HeadSettings(max_steps=1, eval_every=1), 0)
    trained = train_heads(features, counts, SCHEMA, settings, 0)
    assert len(trained) == settings.n_members
    assert ensemble_loss(trained, features, counts, SCHEMA) < ensemble_loss(
        untrained, features, counts, SCHEMA
    )


def test_training_is_reproducible_and_heads_differ(galaxies):
    features, counts = galaxies
    first = train_heads(features, counts, SCHEMA, MLP, 5)
    second = train_heads(features, counts, SCHEMA, MLP, 5)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.linear.weight.detach(), b.linear.weight.detach())
    assert not np.array_equal(first[0].linear.weight.detach(), first[1].linear.weight.detach())


@pytest.mark.parametrize("settings", [FAST, MLP], ids=["linear", "mlp"])
def test_posterior_samples_shape_spread_and_seed(galaxies, settings):
    features, counts = galaxies
    heads = train_heads(features, counts, SCHEMA, settings, 0)
    samples = posterior_samples(heads, features[:20], n_passes=4, seed=1)
    assert samples.shape == (20, settings.n_members * 4, N_ANSWERS)
    assert np.isfinite(samples).all() and (samples >= 1).all()
    assert samples.std(axis=1).max() > 0  # dropout makes passes differ
    np.testing.assert_array_equal(samples, posterior_samples(heads, features[:20], 4, seed=1))
    assert all(not head.training for head in heads)


def test_a_pass_shares_its_dropout_masks_across_galaxies(galaxies):
    features, counts = galaxies
    heads = train_heads(features, counts, SCHEMA, FAST, 0)
    twins = features[[0, 0, 1, 1]]
    samples = posterior_samples(heads, twins, n_passes=6, seed=2, shared_masks=True)
    np.testing.assert_allclose(samples[0], samples[1], rtol=1e-6)  # float32 row blocking
    np.testing.assert_allclose(samples[2], samples[3], rtol=1e-6)
    assert samples.std(axis=1).max() > 0
    independent = posterior_samples(heads, twins, n_passes=6, seed=2)
    assert np.abs(independent[0] - independent[1]).max() > 1e-3
    assert all(not head.training for head in heads)


def test_a_shared_mask_pass_has_the_distribution_of_a_train_mode_pass(galaxies):
    """Tolerance: mean concentrations over 3,000 passes agree within 5 standard errors."""
    features, counts = galaxies
    head = train_heads(features, counts, SCHEMA, FAST, 0)[0]
    x = torch.as_tensor(features[:1], dtype=torch.float32).repeat(3000, 1)
    torch.manual_seed(0)
    with torch.no_grad():
        shared = torch.cat([head.sample(x[:1]) for _ in range(3000)]).numpy()
        head.train()
        independent = head(x).numpy()
        head.eval()
    error = np.sqrt(shared.var(axis=0) / 3000 + independent.var(axis=0) / 3000)
    assert (np.abs(shared.mean(axis=0) - independent.mean(axis=0)) <= 5 * error + 1e-6).all()


def test_question_losses_sum_to_the_whole_tree_loss(galaxies):
    features, counts = galaxies
    heads = train_heads(features, counts, SCHEMA, FAST, 0)
    per_question = question_losses(heads, features, counts, SCHEMA)
    assert per_question.shape == (len(SCHEMA.questions),) and (per_question >= 0).all()
    assert per_question.sum() == pytest.approx(ensemble_loss(heads, features, counts, SCHEMA))
    y = torch.as_tensor(counts, dtype=torch.float64)
    with torch.no_grad():
        first = tree_nll(
            y, heads[0](torch.as_tensor(features).float()).double(), SCHEMA.question_slices
        )
        second = tree_nll(
            y, heads[1](torch.as_tensor(features).float()).double(), SCHEMA.question_slices
        )
    expected = ((first + second) / 2).mean(dim=0).numpy()
    np.testing.assert_allclose(per_question, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda: HeadSettings(n_members=0),
        lambda: HeadSettings(hidden=-1),
        lambda: HeadSettings(dropout=1.0),
        lambda: HeadSettings(input_dropout=-0.1),
        lambda: HeadSettings(val_fraction=0.0),
    ],
)
def test_bad_head_settings_raise_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_mismatched_arrays_are_refused(galaxies):
    features, counts = galaxies
    with pytest.raises(ConfigError, match="train_heads needs"):
        train_heads(features[:10], counts[:9], SCHEMA, FAST, 0)

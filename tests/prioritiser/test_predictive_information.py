"""Tests for EPIG: prediction-oriented acquisition over the decision tree."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from prioritiser.acquisition import epig, get_acquisition
from prioritiser.errors import AcquisitionInputError
from prioritiser.predictive_information import expected_predictive_information
from zoobot.schemas import decals_dr5_schema, gz2_schema


def _brute_force(fractions, asked, slices, targets):
    """EPIG by explicit sums over every pair of outcomes, one galaxy and target at a time."""
    scores = np.zeros(len(fractions))
    for n in range(len(fractions)):
        for q, answers in enumerate(slices):
            total = 0.0
            for m in targets:
                p, t = fractions[n, :, answers], fractions[m, :, answers]
                joint = {
                    (a, b): np.mean(p[:, a] * t[:, b])
                    for a, b in itertools.product(range(p.shape[1]), range(t.shape[1]))
                }
                information = sum(
                    value * np.log(value / (p[:, a].mean() * t[:, b].mean()))
                    for (a, b), value in joint.items()
                )
                total += asked[m, q] * information
            scores[n] += asked[n, q] * total / len(targets)
    return scores


def test_epig_matches_explicit_sums_over_vote_pairs():
    """Tolerance 1e-4 relative: float32 entropies partly cancel in H + H* - H_joint."""
    schema = gz2_schema
    rng = np.random.default_rng(0)
    samples = rng.gamma(2.0, 3.0, size=(7, 6, len(schema.label_cols))) + 0.5
    fractions = schema.vote_fractions(samples)
    asked = rng.random((7, len(schema.questions)))
    targets = np.array([0, 2, 3, 6])
    got = expected_predictive_information(fractions, asked, list(schema.question_slices), targets)
    expected = _brute_force(fractions, asked, list(schema.question_slices), targets)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-9)


def test_epig_is_zero_when_every_sample_agrees_and_grows_with_disagreement():
    schema = decals_dr5_schema
    rng = np.random.default_rng(1)
    base = rng.gamma(3.0, 4.0, size=(40, 1, len(schema.label_cols))) + 1.0
    agreeing = np.repeat(base, 8, axis=1)
    assert epig(agreeing, schema, rng=np.random.default_rng(2)).max() < 1e-6
    noise = np.random.default_rng(3).normal(size=(40, 8, len(schema.label_cols)))
    spread = [
        epig(base * np.exp(sigma * noise), schema, rng=np.random.default_rng(2)).mean()
        for sigma in (0.1, 0.5, 1.5)
    ]
    assert spread[0] < spread[1] < spread[2]


def test_epig_is_finite_non_negative_and_follows_its_galaxies_when_reordered():
    schema = decals_dr5_schema
    rng = np.random.default_rng(4)
    samples = rng.gamma(1.5, 6.0, size=(30, 5, len(schema.label_cols))) + 1.0
    fractions = schema.vote_fractions(samples)
    asked = schema.question_asked_probability(fractions.mean(axis=1))
    targets = np.arange(0, 30, 3)
    scores = expected_predictive_information(
        fractions, asked, list(schema.question_slices), targets
    )
    assert np.isfinite(scores).all() and (scores >= 0).all()
    order = rng.permutation(30)
    inverse = np.argsort(order)
    shuffled = expected_predictive_information(
        fractions[order], asked[order], list(schema.question_slices), inverse[targets]
    )
    np.testing.assert_allclose(shuffled, scores[order], rtol=1e-5)


def test_epig_without_targets_is_zero_and_bad_targets_are_refused():
    schema = gz2_schema
    fractions = schema.vote_fractions(np.ones((4, 3, len(schema.label_cols))))
    asked = np.ones((4, len(schema.questions)))
    slices = list(schema.question_slices)
    assert not expected_predictive_information(fractions, asked, slices, np.array([])).any()
    with pytest.raises(AcquisitionInputError, match="index the 4 galaxies"):
        expected_predictive_information(fractions, asked, slices, np.array([4]))
    with pytest.raises(AcquisitionInputError, match="asked"):
        expected_predictive_information(fractions, asked[:, :2], slices, np.array([0]))


def test_epig_is_registered_and_needs_rng():
    schema = gz2_schema
    samples = np.ones((3, 2, len(schema.label_cols)))
    assert get_acquisition("epig") is epig
    with pytest.raises(AcquisitionInputError, match="rng"):
        epig(samples, schema)
    with pytest.raises(AcquisitionInputError, match="samples must be"):
        epig(samples[:, :, :-1], schema, rng=np.random.default_rng(0))

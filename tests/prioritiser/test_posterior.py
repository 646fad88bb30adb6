"""The combined posterior: conjugate updates against brute-force integration on a simplex grid."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import dirichlet

from prioritiser.posterior import (
    combine,
    decided_questions,
    next_vote_information,
    tree_next_vote_information,
)
from zoobot.schemas import decals_dr5_schema as SCHEMA

N_ANSWERS = len(SCHEMA.label_cols)
FIRST = SCHEMA.question_slices[0]  # smooth-or-featured: 3 answers


def _grid(resolution: int = 600) -> np.ndarray:
    """Interior points of the 3-simplex on a fine grid, [n_points, 3] (equal cell areas)."""
    steps = (np.arange(resolution) + 0.5) / resolution
    a, b = np.meshgrid(steps, steps, indexing="ij")
    keep = a + b < 1
    return np.stack([a[keep], b[keep], 1 - a[keep] - b[keep]], axis=1)


def _brute_force(prior: list[np.ndarray], counts: np.ndarray) -> tuple[np.ndarray, float]:
    """Posterior mean and summed variance of the first question, by integration on the grid."""
    p = _grid()
    density = sum(dirichlet(a).pdf(p.T) for a in prior) * np.prod(p**counts, axis=1)
    density /= density.sum()
    mean = density @ p
    variance = (density @ p**2 - mean**2).sum()
    return mean, variance


def _full(first_question: list[np.ndarray], counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tree-shaped prior and counts whose other questions are flat priors with no votes."""
    prior = np.ones((1, len(first_question), N_ANSWERS))
    for s, alpha in enumerate(first_question):
        prior[0, s, FIRST] = alpha
    full_counts = np.zeros((1, N_ANSWERS))
    full_counts[0, FIRST] = counts
    return prior, full_counts


@pytest.mark.parametrize(
    ("prior", "counts"),
    [
        ([np.array([2.0, 3.0, 1.5])], np.array([2.0, 0.0, 1.0])),
        ([np.array([0.8, 1.2, 5.0])], np.array([0.7, 2.3, 0.0])),  # skill-weighted (fractional)
        ([np.array([6.0, 2.0, 1.0]), np.array([1.5, 2.0, 6.0])], np.array([1.0, 0.0, 3.0])),
        ([np.array([8.0, 2.0, 1.0]), np.array([2.0, 8.0, 1.0])], np.array([4.0, 1.0, 0.5])),
    ],
)
def test_update_matches_brute_force(prior: list[np.ndarray], counts: np.ndarray) -> None:
    mean, variance = _brute_force(prior, counts)
    posterior = combine(*_full(prior, counts), SCHEMA)
    np.testing.assert_allclose(posterior.mean[0, FIRST], mean, atol=2e-3)
    m = posterior.mean[0, FIRST]
    np.testing.assert_allclose(
        (1 - (m**2).sum()) / (posterior.total[0, 0] + 1), variance, rtol=2e-2
    )


def test_single_dirichlet_is_exactly_conjugate() -> None:
    rng = np.random.default_rng(0)
    prior = rng.gamma(2.0, 2.0, size=(5, 1, N_ANSWERS))
    counts = rng.integers(0, 6, size=(5, N_ANSWERS)).astype(float)
    posterior = combine(prior, counts, SCHEMA)
    np.testing.assert_allclose(posterior.concentrations(SCHEMA), prior[:, 0] + counts, rtol=1e-9)


def test_votes_move_mixture_weight_to_the_agreeing_sample() -> None:
    prior, counts = _full([np.array([20.0, 2.0, 1.0]), np.array([2.0, 20.0, 1.0])], np.zeros(3))
    counts[0, FIRST.start + 1] = 5.0
    posterior = combine(prior, counts, SCHEMA)
    assert posterior.weights[0, 1] > 0.99


def test_next_vote_information_matches_brute_force() -> None:
    alpha = np.array([3.0, 1.5, 1.2])
    prior, counts = _full([alpha], np.zeros(3))
    posterior = combine(prior, counts, SCHEMA)
    p = _grid()
    density = dirichlet(alpha).pdf(p.T)
    density /= density.sum()
    mean = alpha / alpha.sum()
    expected = -(mean * np.log(mean)).sum() + density @ (p * np.log(p)).sum(axis=1)
    assert next_vote_information(posterior, SCHEMA)[0, 0] == pytest.approx(expected, rel=5e-3)


def test_information_falls_as_votes_arrive() -> None:
    prior = np.full((4, 1, N_ANSWERS), 2.0)
    counts = np.zeros((4, N_ANSWERS))
    counts[:, FIRST.start] = [0, 5, 20, 80]
    information = tree_next_vote_information(combine(prior, counts, SCHEMA), SCHEMA)
    assert np.all(np.diff(information) < 0)


def test_decided_needs_a_clear_lead() -> None:
    prior = np.ones((2, 1, N_ANSWERS))
    counts = np.zeros((2, N_ANSWERS))
    counts[0, FIRST] = [30, 2, 1]
    counts[1, FIRST] = [6, 5, 1]
    decided = decided_questions(combine(prior, counts, SCHEMA), SCHEMA)
    assert decided[0, 0]
    assert not decided[1, 0]


def test_bad_input_is_named() -> None:
    prior = np.ones((2, 1, N_ANSWERS))
    with pytest.raises(ValueError, match="counts must be"):
        combine(prior, np.zeros((3, N_ANSWERS)), SCHEMA)
    with pytest.raises(ValueError, match="non-negative"):
        combine(prior, -np.ones((2, N_ANSWERS)), SCHEMA)
    with pytest.raises(ValueError, match="prior must be"):
        combine(np.ones((2, N_ANSWERS)), np.zeros((2, N_ANSWERS)), SCHEMA)

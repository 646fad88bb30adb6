"""Issue 15: 3-answer questions up to 40 votes are enumerated exactly by default."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import xlogy
from scipy.stats import dirichlet_multinomial

from prioritiser.acquisition import DEFAULT_MAX_EXACT_OUTCOMES, question_mutual_information


def _brute_force(alpha: np.ndarray, n_votes: int) -> float:
    """MI of one galaxy's samples [n_samples, K] by listing every split with scipy's pmf."""
    k = alpha.shape[1]
    splits = [
        np.diff((-1, *bars, n_votes + k - 1)) - 1
        for bars in itertools.combinations(range(n_votes + k - 1), k - 1)
    ]
    pmf = np.array([[dirichlet_multinomial.pmf(x, a, n_votes) for x in splits] for a in alpha])
    mixture = pmf.mean(axis=0)
    return float(-xlogy(mixture, mixture).sum() + xlogy(pmf, pmf).sum(axis=1).mean())


def test_three_answers_at_forty_votes_are_exact_by_default() -> None:
    assert DEFAULT_MAX_EXACT_OUTCOMES >= 861  # C(42, 2) splits of 40 votes over 3 answers
    rng = np.random.default_rng(5)
    alpha = 1.0 + 100.0 / (1.0 + np.exp(-rng.normal(0.0, 1.5, (3, 4, 3))))
    auto = question_mutual_information(alpha, 40)
    expected = [_brute_force(a, 40) for a in alpha]
    np.testing.assert_allclose(auto, expected, rtol=1e-7, atol=1e-10)
    stick = question_mutual_information(alpha, 40, method="stick_breaking")
    assert not np.allclose(stick, expected, rtol=1e-7)  # the approximation is not used

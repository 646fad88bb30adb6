"""The combined posterior of every galaxy: the model's posterior as the prior, updated by votes.

The model's posterior is a set of Dirichlet concentration samples per galaxy (ensemble members x
MC-dropout passes), ``[n_galaxies, n_samples, n_answers]``, read as an equal-weight mixture of
Dirichlets over each galaxy's whole tree. Votes (possibly fractional, skill-weighted; see
``prioritiser.skill``) update it conjugately, question by question::

    p(fractions | votes) = sum_s w_s prod_q Dir(alpha_sq + n_q),
    w_s proportional to prod_q DirMult(n_q | alpha_sq)

(the multinomial coefficient is common to every sample and cancels). Fractional counts use the
same Gamma-function formulas. For decisions (information, "decided") each question's mixture is
collapsed to the one Dirichlet with the same mean and the same total variance.

Arrays in, arrays out; answers in ``schema.label_cols`` order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import digamma, gammaln, xlogy

if TYPE_CHECKING:
    from zoobot import Schema

__all__ = [
    "CombinedPosterior",
    "combine",
    "decided_questions",
    "next_vote_information",
    "tree_next_vote_information",
]

_MIN_VARIANCE = 1e-12


@dataclass(frozen=True)
class CombinedPosterior:
    """Each galaxy's posterior over its answer fractions.

    Attributes:
        mean: [n_galaxies, n_answers] posterior-mean fraction of each answer within its question.
        total: [n_galaxies, n_questions] the moment-matched Dirichlet's total concentration per
            question (its "effective votes"; larger is more certain).
        weights: [n_galaxies, n_samples] posterior weight of each prior sample.
    """

    mean: np.ndarray
    total: np.ndarray
    weights: np.ndarray

    def concentrations(self, schema: Schema) -> np.ndarray:
        """[n_galaxies, n_answers] the moment-matched Dirichlet concentrations (mean x total)."""
        return self.mean * self.total[:, schema.question_index]


def _check(prior: np.ndarray, counts: np.ndarray, schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    alpha = np.asarray(prior, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    n_answers = len(schema.label_cols)
    if alpha.ndim != 3 or alpha.shape[2] != n_answers:
        raise ValueError(
            f"prior must be [n_galaxies, n_samples, {n_answers}] concentrations, got {alpha.shape}"
        )
    if n.shape != (alpha.shape[0], n_answers):
        raise ValueError(f"counts must be [{alpha.shape[0]}, {n_answers}], got shape {n.shape}")
    if not (np.isfinite(alpha).all() and (alpha > 0).all()):
        raise ValueError("prior concentrations must be finite and positive")
    if not (np.isfinite(n).all() and (n >= 0).all()):
        raise ValueError("counts must be finite and non-negative")
    return alpha, n


def combine(prior: np.ndarray, counts: np.ndarray, schema: Schema) -> CombinedPosterior:
    """Update each galaxy's mixture-of-Dirichlets prior with its (weighted) vote counts.

    Args:
        prior: [n_galaxies, n_samples, n_answers] Dirichlet concentrations (the model's samples;
            one sample for a single Dirichlet prior).
        counts: [n_galaxies, n_answers] vote counts, fractional where votes are skill-weighted.
        schema: the decision tree.

    Returns:
        The combined posterior.

    Raises:
        ValueError: for mis-shaped, non-positive or non-finite inputs.
    """
    alpha, n = _check(prior, counts, schema)
    post = alpha + n[:, None, :]
    log_w = np.zeros(alpha.shape[:2])
    if alpha.shape[1] > 1:
        for answers in schema.question_slices:
            a, c = alpha[:, :, answers], n[:, None, answers]
            a_total = a.sum(axis=2)
            log_w += gammaln(a_total) - gammaln(a_total + c.sum(axis=2))
            log_w += (gammaln(a + c) - gammaln(a)).sum(axis=2)
    log_w -= log_w.max(axis=1, keepdims=True)
    weights = np.exp(log_w)
    weights /= weights.sum(axis=1, keepdims=True)
    mean = np.empty(n.shape)
    total = np.empty((n.shape[0], len(schema.questions)))
    for q, answers in enumerate(schema.question_slices):
        p = post[:, :, answers]
        t = p.sum(axis=2, keepdims=True)
        m = np.einsum("gs,gsa->ga", weights, p / t)
        second = np.einsum("gs,gsa->ga", weights, p * (p + 1) / (t * (t + 1)))
        variance = np.maximum((second - m**2).sum(axis=1), _MIN_VARIANCE)
        mean[:, answers] = m
        total[:, q] = np.maximum((1.0 - (m**2).sum(axis=1)) / variance - 1.0, _MIN_VARIANCE)
    return CombinedPosterior(mean=mean, total=total, weights=weights)


def next_vote_information(posterior: CombinedPosterior, schema: Schema) -> np.ndarray:
    """Mutual information between one more vote on each question and its answer fractions.

    For Dir(alpha) with total A and mean m, exactly (nats)::

        I = H[m] - E_p H[p] = H[m] - psi(A + 1) + sum_a m_a psi(alpha_a + 1)

    It falls like (K - 1) / (2 A) as votes accumulate.

    Args:
        posterior: from :func:`combine`.
        schema: the decision tree.

    Returns:
        [n_galaxies, n_questions] information in nats.
    """
    alpha = posterior.concentrations(schema)
    result = np.empty(posterior.total.shape)
    for q, answers in enumerate(schema.question_slices):
        m, total = posterior.mean[:, answers], posterior.total[:, q]
        entropy = -xlogy(m, m).sum(axis=1)
        expected = digamma(total + 1) - (m * digamma(alpha[:, answers] + 1)).sum(axis=1)
        result[:, q] = np.maximum(entropy - expected, 0.0)
    return result


def tree_next_vote_information(posterior: CombinedPosterior, schema: Schema) -> np.ndarray:
    """The information one more volunteer's walk through the tree would give, per galaxy.

    Each question's :func:`next_vote_information` weighted by P(the volunteer is asked it) under
    the posterior mean.

    Returns:
        [n_galaxies] nats.
    """
    asked = schema.question_asked_probability(posterior.mean)
    return (asked * next_vote_information(posterior, schema)).sum(axis=1)


def decided_questions(posterior: CombinedPosterior, schema: Schema, z: float = 2.0) -> np.ndarray:
    """Whether each question's leading answer leads the runner-up by ``z`` posterior std devs.

    Uses the moment-matched Dirichlet: Var(p_1 - p_2) = (m_1 (1 - m_1) + m_2 (1 - m_2) +
    2 m_1 m_2) / (A + 1).

    Returns:
        [n_galaxies, n_questions] bool.
    """
    result = np.empty(posterior.total.shape, dtype=bool)
    for q, answers in enumerate(schema.question_slices):
        m = np.sort(posterior.mean[:, answers], axis=1)
        first, second = m[:, -1], m[:, -2]
        variance = first * (1 - first) + second * (1 - second) + 2 * first * second
        sd = np.sqrt(np.maximum(variance, _MIN_VARIANCE) / (posterior.total[:, q] + 1))
        result[:, q] = (first - second) >= z * sd
    return result

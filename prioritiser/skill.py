"""Volunteer skill: a per-volunteer, per-question confusion model learned from agreement.

Model (Dawid & Skene 1979, as SWAP does for one binary question, Marshall et al. 2016): when a
volunteer classifies a galaxy, a "true" answer i is drawn from the galaxy's answer fractions and
the volunteer says j with probability ``pi_vq[i, j]``. Each volunteer's confusion rows carry a
Dirichlet prior (``prior_skill`` on the diagonal, ``prior_strength`` pseudo-votes per row), so a
new volunteer counts as a fairly good one until their votes say otherwise.

- Learning (online per vote, and one EM step from every vote so far at each full sync): the
  responsibility of true answer i for a vote j is ``r_i ~ m_i pi[i, j]``, with m the galaxy's
  posterior mean *without that vote*; responsibilities are added to the volunteer's confusion
  counts (online) or replace them (EM step).
- Using: a vote's likelihood over the fractions, ``sum_i p_i pi[i, j]``, splits into a part that
  does not depend on p (``beta_j = min_i pi[i, j]``, the chance of saying j whatever is shown) and
  the rest; projecting the resulting mixture back onto a Dirichlet (assumed-density filtering)
  adds the soft count ``omega_i = (pi[i, j] - beta_j) m_i / (beta_j + sum_k (pi[k, j] - beta_j)
  m_k)``, whose mass is < 1. A perfect volunteer adds one whole vote; a random clicker adds ~0.
  Unreliable volunteers are down-weighted, never dropped.

Arrays in, arrays out; no ORM. ``counts`` round-trips through :meth:`SkillModel.to_arrays` for
storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from zoobot import Schema

__all__ = ["SkillModel", "vote_evidence"]


def vote_evidence(confusion: np.ndarray, answers: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The soft counts a batch of votes adds to their galaxies' posteriors (see module doc).

    Args:
        confusion: [n_votes, K, K] each vote's volunteer confusion matrix (rows: true answer).
        answers: [n_votes] the answers said, 0..K-1.
        mean: [n_votes, K] each vote's galaxy posterior-mean fractions.

    Returns:
        [n_votes, K] soft counts, each row summing to at most 1.
    """
    column = np.take_along_axis(confusion, answers[:, None, None], axis=2)[:, :, 0]  # [n, K]
    floor = column.min(axis=1, keepdims=True)
    informative = (column - floor) * mean
    return informative / (floor + informative.sum(axis=1, keepdims=True))


def _responsibilities(confusion: np.ndarray, answers: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """P(true answer i | said j, galaxy mean m) ~ m_i pi[i, j]. [n_votes, K]."""
    column = np.take_along_axis(confusion, answers[:, None, None], axis=2)[:, :, 0]
    joint = np.maximum(mean, 1e-12) * column
    return joint / joint.sum(axis=1, keepdims=True)


@dataclass
class SkillModel:
    """Confusion counts of every volunteer on every question.

    Attributes:
        schema: the decision tree.
        n_volunteers: volunteers known (ids 0..n-1); :meth:`grow` adds more.
        prior_skill: the prior probability that a new volunteer says the true answer.
        prior_strength: pseudo-votes per confusion row of the prior.
        counts: per question, [n_volunteers, K, K] learned confusion counts (without the prior).
    """

    schema: Schema
    n_volunteers: int
    prior_skill: float = 0.8
    prior_strength: float = 4.0
    counts: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.prior_skill <= 1.0 or self.prior_strength <= 0:
            raise ValueError(
                f"prior_skill must lie in [0, 1] and prior_strength be > 0, got "
                f"{self.prior_skill} and {self.prior_strength}"
            )
        if not self.counts:
            self.counts = [
                np.zeros((self.n_volunteers, s.stop - s.start, s.stop - s.start))
                for s in self.schema.question_slices
            ]

    def grow(self, n_volunteers: int) -> None:
        """Make room for volunteer ids up to ``n_volunteers - 1`` (new ones start at the prior)."""
        extra = n_volunteers - self.n_volunteers
        if extra > 0:
            self.counts = [
                np.concatenate([c, np.zeros((extra, *c.shape[1:]))]) for c in self.counts
            ]
            self.n_volunteers = n_volunteers

    def _prior(self, n_answers: int) -> np.ndarray:
        off = (1.0 - self.prior_skill) / n_answers
        return self.prior_strength * (np.eye(n_answers) * self.prior_skill + off)

    def confusion(self, question: int, volunteers: np.ndarray) -> np.ndarray:
        """[n, K, K] posterior-mean confusion matrices of ``volunteers`` on ``question``."""
        counts = self.counts[question][volunteers] + self._prior(self.counts[question].shape[1])
        return counts / counts.sum(axis=2, keepdims=True)

    def _responsibility_counts(
        self, question: int, volunteers: np.ndarray, answers: np.ndarray, mean: np.ndarray
    ) -> np.ndarray:
        """[n_volunteers, K, K] summed responsibilities of a batch of votes (one E step)."""
        r = _responsibilities(self.confusion(question, volunteers), answers, mean)
        k = r.shape[1]
        flat = (volunteers[:, None] * k + np.arange(k)) * k + answers[:, None]
        shape = self.counts[question].shape
        return np.bincount(flat.ravel(), r.ravel(), minlength=int(np.prod(shape))).reshape(shape)

    def learn(
        self, question: int, volunteers: np.ndarray, answers: np.ndarray, mean: np.ndarray
    ) -> None:
        """Online: add new votes' responsibilities to their volunteers' confusion counts.

        Args:
            question: the question index.
            volunteers: [n_votes] volunteer ids.
            answers: [n_votes] answers said (0..K-1).
            mean: [n_votes, K] each galaxy's posterior mean without the vote.
        """
        self.counts[question] += self._responsibility_counts(question, volunteers, answers, mean)

    def reestimate(
        self, question: int, volunteers: np.ndarray, answers: np.ndarray, mean: np.ndarray
    ) -> None:
        """One EM step from every vote so far (arguments as :meth:`learn`).

        Responsibilities under the current confusion replace the counts.
        """
        self.counts[question] = self._responsibility_counts(question, volunteers, answers, mean)

    def evidence(
        self, question: int, volunteers: np.ndarray, answers: np.ndarray, mean: np.ndarray
    ) -> np.ndarray:
        """[n_votes, K] soft counts of a batch of votes on ``question`` (:func:`vote_evidence`)."""
        return vote_evidence(self.confusion(question, volunteers), answers, mean)

    def weights(self) -> np.ndarray:
        """[n_volunteers, n_questions] each volunteer's informativeness in [0, 1].

        The mutual information between the true answer (uniform over answers) and the volunteer's
        answer, over log K: 1 for a perfect volunteer, 0 for one who clicks regardless of the
        galaxy.
        """
        result = np.empty((self.n_volunteers, len(self.counts)))
        volunteers = np.arange(self.n_volunteers)
        for q, c in enumerate(self.counts):
            k = c.shape[1]
            joint = self.confusion(q, volunteers) / k
            said = joint.sum(axis=1, keepdims=True)
            ratio = np.where(joint > 0, joint / (said / k + 1e-300), 1.0)
            result[:, q] = (joint * np.log(ratio)).sum(axis=(1, 2)) / np.log(k)
        return np.clip(result, 0.0, 1.0)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The learned counts, one array per question name (for storage)."""
        return {q.name: c for q, c in zip(self.schema.questions, self.counts, strict=True)}

    @classmethod
    def from_arrays(
        cls, schema: Schema, arrays: dict[str, np.ndarray], **settings: float
    ) -> SkillModel:
        """Rebuild from :meth:`to_arrays` (``settings``: ``prior_skill``, ``prior_strength``).

        Raises:
            ValueError: if a question is missing or its array has the wrong shape.
        """
        counts = []
        n = None
        for question, answers in zip(schema.questions, schema.question_slices, strict=True):
            if question.name not in arrays:
                raise ValueError(f"skill arrays lack question {question.name!r}")
            c = np.asarray(arrays[question.name], dtype=np.float64)
            k = answers.stop - answers.start
            n = c.shape[0] if n is None else n
            if c.shape != (n, k, k):
                raise ValueError(f"skill array of {question.name!r} must be [{n}, {k}, {k}]")
            counts.append(c.copy())
        return cls(schema, int(n or 0), counts=counts, **settings)

"""Expected predictive information gain (EPIG) over a decision tree.

BALD asks what a galaxy's votes would teach the model about its own parameters; much of that can
be about galaxies nobody needs predicted. EPIG asks what they would teach it about the votes on
the galaxies it must predict (the target set, here a random sample of the pool itself):

    EPIG(x) = E_{x* ~ targets} [ I(y ; y* | x, x*) ],

the mutual information, under the posterior, between a vote y on galaxy x and a vote y* on a
target galaxy x*. For one vote per question, the Dirichlet-multinomial predictive is the
categorical of the vote fractions, so with posterior samples j = 1..J (fractions p_j) it is exact
up to Monte Carlo:

    p(y, y*) = (1/J) sum_j p_j(y | x) p_j(y* | x*),
    I = H[p(y)] + H[p(y*)] - H[p(y, y*)].

Over the tree, each question's term counts only if the question is asked of both galaxies, so it
is weighted by P(asked | x) P(asked | x*), and the questions are summed.

Posterior sample j must be one draw of the model's parameters for every galaxy: an ensemble
member, or an MC-dropout pass whose masks all galaxies share
(:meth:`zoobot.finetune.heads.DirichletHead.sample`). Dropout drawn per galaxy, as
``zoobot.predict`` does, leaves only the members' correlation between galaxies.

References:
    Bickford Smith, Kirsch, Farquhar, Gal, Foster & Rainforth 2023, "Prediction-oriented Bayesian
    active learning", AISTATS (arXiv:2304.08151).
"""

from __future__ import annotations

import numpy as np

from prioritiser.errors import AcquisitionInputError

__all__ = ["DEFAULT_TARGETS", "expected_predictive_information"]

DEFAULT_TARGETS = 512
"""Target galaxies sampled from the pool; EPIG's Monte Carlo error falls as 1/sqrt of this."""

#: joint-distribution elements computed at once (galaxies x targets x K^2), bounding memory
_CHUNK_ELEMENTS = 2**24


def _entropy(probabilities: np.ndarray, axis: tuple[int, ...] | int) -> np.ndarray:
    """Shannon entropy in nats along ``axis``, with 0 log 0 = 0."""
    safe = np.where(probabilities > 0, probabilities, 1.0)
    return -(probabilities * np.log(safe)).sum(axis=axis)


def expected_predictive_information(
    fractions: np.ndarray,
    asked: np.ndarray,
    question_slices: list[slice],
    targets: np.ndarray,
) -> np.ndarray:
    """EPIG of one vote per question, summed over the tree's questions.

    Entropies are computed in float32 (the joint distributions dominate memory and time); the
    information of a galaxy is then accurate to about 1e-6 nats, far below the scores that win a
    place in a batch.

    Args:
        fractions: [n_galaxies, n_samples, n_answers] each posterior sample's vote fractions
            (each question's answers sum to 1).
        asked: [n_galaxies, n_questions] P(question asked) of each galaxy.
        question_slices: each question's answer columns, in question order.
        targets: [n_targets] indices of the galaxies whose predictions matter.

    Returns:
        [n_galaxies] EPIG in nats, >= 0; zeros when there are no targets.

    Raises:
        AcquisitionInputError: if the arrays disagree in shape or a target is out of range.
    """
    n_galaxies, n_samples, _ = fractions.shape
    targets = np.asarray(targets, dtype=np.int64)
    if asked.shape != (n_galaxies, len(question_slices)) or targets.ndim != 1:
        raise AcquisitionInputError(
            f"expected_predictive_information needs asked [{n_galaxies}, "
            f"{len(question_slices)}] and targets [n_targets]; got {asked.shape} and "
            f"{targets.shape}"
        )
    if targets.size and not 0 <= targets.min() <= targets.max() < n_galaxies:
        raise AcquisitionInputError(f"targets must index the {n_galaxies} galaxies")
    scores = np.zeros(n_galaxies)
    n_targets = targets.size
    if n_targets == 0 or n_galaxies == 0:
        return scores
    for question, answers in enumerate(question_slices):
        n_answers = answers.stop - answers.start
        answer_fractions = np.ascontiguousarray(fractions[:, :, answers], dtype=np.float32)
        pool_rows = answer_fractions.transpose(0, 2, 1).reshape(n_galaxies * n_answers, n_samples)
        target_rows = (
            answer_fractions[targets].transpose(0, 2, 1).reshape(n_targets * n_answers, n_samples)
        )
        marginal = answer_fractions.mean(axis=1)
        pool_entropy = _entropy(marginal, axis=1)
        target_entropy = _entropy(marginal[targets], axis=1)
        target_weight = asked[targets, question] / n_targets
        chunk = max(1, _CHUNK_ELEMENTS // (n_targets * n_answers**2))
        for start in range(0, n_galaxies, chunk):
            stop = min(start + chunk, n_galaxies)
            joint = pool_rows[start * n_answers : stop * n_answers] @ target_rows.T / n_samples
            joint = joint.reshape(stop - start, n_answers, n_targets, n_answers)
            information = (
                pool_entropy[start:stop, None]
                + target_entropy[None, :]
                - _entropy(joint, axis=(1, 3))
            )
            expected = np.clip(information, 0.0, None) @ target_weight
            scores[start:stop] += asked[start:stop, question] * expected
    return scores

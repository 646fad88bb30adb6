"""Baseline acquisition scores that ignore how many votes a galaxy would get, and EPIG.

Re-exported by ``prioritiser.acquisition``, which registers the named acquisition functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.special import xlogy

from prioritiser._acquisition_common import (
    DEFAULT_TOTAL_VOTES,
    _checked_fractions,
    asked_probability,
    combined_score,
)
from prioritiser.errors import AcquisitionInputError
from prioritiser.predictive_information import DEFAULT_TARGETS, expected_predictive_information

if TYPE_CHECKING:
    from zoobot import Schema

__all__ = [
    "entropy",
    "epig",
    "predictive_entropy",
    "question_variation_ratio",
    "random",
    "random_score",
    "variation_ratio",
]


def predictive_entropy(samples: np.ndarray, schema: Schema) -> np.ndarray:
    """Entropy of each question's posterior-mean vote fractions (a baseline that ignores N).

    Args:
        samples: [n_galaxies, n_samples, n_answers] Dirichlet concentrations.
        schema: the decision tree.

    Returns:
        [n_galaxies, n_questions] entropy in nats.

    Raises:
        AcquisitionInputError: if ``samples`` has the wrong shape or non-positive values.
    """
    fractions = _checked_fractions(samples, schema)[1]
    terms = -xlogy(fractions, fractions)
    return np.stack([terms[:, answers].sum(axis=1) for answers in schema.question_slices], axis=1)


def question_variation_ratio(samples: np.ndarray, schema: Schema) -> np.ndarray:
    """One minus the largest posterior-mean vote fraction of each question (a baseline).

    Args:
        samples: [n_galaxies, n_samples, n_answers] Dirichlet concentrations.
        schema: the decision tree.

    Returns:
        [n_galaxies, n_questions] values in [0, 1 - 1/K].

    Raises:
        AcquisitionInputError: if ``samples`` has the wrong shape or non-positive values.
    """
    fractions = _checked_fractions(samples, schema)[1]
    return np.stack(
        [1.0 - fractions[:, answers].max(axis=1) for answers in schema.question_slices], axis=1
    )


def random_score(n_galaxies: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform random scores: the control that active learning must beat.

    Args:
        n_galaxies: how many scores.
        rng: the random generator (seed it for reproducible batches).

    Returns:
        [n_galaxies] scores in [0, 1).
    """
    return rng.random(n_galaxies)


def entropy(
    samples: np.ndarray,
    schema: Schema,
    *,
    rng: np.random.Generator | None = None,
    total_votes: int = DEFAULT_TOTAL_VOTES,
) -> np.ndarray:
    """Baseline acquisition: :func:`predictive_entropy` weighted by P(asked), summed.

    Args:
        samples: [n_galaxies, n_samples, n_answers] Dirichlet concentrations.
        schema: the decision tree.
        rng: unused.
        total_votes: unused (the predictive entropy ignores N).

    Returns:
        [n_galaxies] scores in nats.

    Raises:
        AcquisitionInputError: for bad samples.
    """
    asked = asked_probability(samples, schema)
    return combined_score(predictive_entropy(samples, schema), schema, asked_probability=asked)


def epig(
    samples: np.ndarray,
    schema: Schema,
    *,
    rng: np.random.Generator | None = None,
    total_votes: int = DEFAULT_TOTAL_VOTES,
) -> np.ndarray:
    """EPIG acquisition: what a vote per question tells about votes on other galaxies.

    The expected information a vote per question on each galaxy gives about votes on a random
    target sample of the same galaxies (prediction-oriented, where BALD is parameter-oriented).
    See :func:`prioritiser.predictive_information.expected_predictive_information`. The targets
    are ``min(n_galaxies, DEFAULT_TARGETS)`` galaxies drawn without replacement with ``rng``.

    Args:
        samples: [n_galaxies, n_samples, n_answers] Dirichlet concentrations.
        schema: the decision tree.
        rng: draws the target galaxies; required.
        total_votes: unused (one vote per question is scored).

    Returns:
        [n_galaxies] scores in nats, >= 0.

    Raises:
        AcquisitionInputError: for bad samples or a missing ``rng``.
    """
    if rng is None:
        raise AcquisitionInputError(
            "the 'epig' acquisition draws its target galaxies with rng; pass "
            "rng=np.random.default_rng(seed)"
        )
    samples, fractions = _checked_fractions(samples, schema)
    per_sample = schema.vote_fractions(samples)
    n_galaxies = samples.shape[0]
    targets = np.sort(rng.choice(n_galaxies, min(n_galaxies, DEFAULT_TARGETS), replace=False))
    asked = schema.question_asked_probability(fractions)
    return expected_predictive_information(per_sample, asked, list(schema.question_slices), targets)


def variation_ratio(
    samples: np.ndarray,
    schema: Schema,
    *,
    rng: np.random.Generator | None = None,
    total_votes: int = DEFAULT_TOTAL_VOTES,
) -> np.ndarray:
    """Baseline acquisition: :func:`question_variation_ratio` weighted by P(asked), summed.

    Args:
        samples: [n_galaxies, n_samples, n_answers] Dirichlet concentrations.
        schema: the decision tree.
        rng: unused.
        total_votes: unused.

    Returns:
        [n_galaxies] scores.

    Raises:
        AcquisitionInputError: for bad samples.
    """
    asked = asked_probability(samples, schema)
    return combined_score(
        question_variation_ratio(samples, schema), schema, asked_probability=asked
    )


def random(
    samples: np.ndarray,
    schema: Schema,
    *,
    rng: np.random.Generator | None = None,
    total_votes: int = DEFAULT_TOTAL_VOTES,
) -> np.ndarray:
    """Control acquisition: :func:`random_score` for each galaxy.

    Args:
        samples: [n_galaxies, n_samples, n_answers] Dirichlet concentrations (only counted).
        schema: the decision tree.
        rng: the random generator; required.
        total_votes: unused.

    Returns:
        [n_galaxies] scores in [0, 1).

    Raises:
        AcquisitionInputError: for bad samples or a missing ``rng``.
    """
    if rng is None:
        raise AcquisitionInputError(
            "the 'random' acquisition needs rng, e.g. rng=np.random.default_rng(seed)"
        )
    return random_score(_checked_fractions(samples, schema)[0].shape[0], rng)

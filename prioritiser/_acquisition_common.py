"""Shared pieces of the acquisition functions: input checks, P(asked), combining questions.

Private to ``prioritiser.acquisition`` and ``prioritiser.baselines``, which re-export the public
names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from prioritiser._dirichlet_multinomial import mean_fractions
from prioritiser.errors import AcquisitionInputError

if TYPE_CHECKING:
    from zoobot import Schema

DEFAULT_TOTAL_VOTES = 40
"""Volunteers who classify a prioritised galaxy (W20; Galaxy Zoo's retirement limit)."""

AcquisitionFunction = Callable[..., np.ndarray]


def asked_probability(samples: np.ndarray, schema: Schema) -> np.ndarray:
    """P(each question is asked), from the posterior-mean vote fractions.

    Args:
        samples: [n_galaxies, n_samples, n_answers] Dirichlet concentrations.
        schema: the decision tree the answers belong to.

    Returns:
        [n_galaxies, n_questions] probabilities in schema question order.

    Raises:
        AcquisitionInputError: if ``samples`` has the wrong shape or non-positive values.
    """
    return schema.question_asked_probability(_checked_fractions(samples, schema)[1])


def combined_score(
    per_question: np.ndarray,
    schema: Schema,
    weights: Mapping[str, float] | None = None,
    asked_probability: np.ndarray | None = None,
) -> np.ndarray:
    """Combine per-question scores into one score per galaxy: sum_q w_q x score_q.

    The default weight of question q is P(q asked) for that galaxy, so questions a volunteer would
    rarely reach count little (pass ``asked_probability``). With ``weights`` (question name ->
    weight; questions not named weigh 0) each term is ``weights[q] x score_q``, further multiplied
    by P(q asked) when ``asked_probability`` is also given.

    Args:
        per_question: [n_galaxies, n_questions] scores, questions in schema order.
        schema: the decision tree.
        weights: optional fixed weight per question name.
        asked_probability: optional [n_galaxies, n_questions] P(question asked), e.g. from
            :func:`asked_probability`.

    Returns:
        [n_galaxies] combined scores.

    Raises:
        AcquisitionInputError: if shapes disagree with the schema, a weight names an unknown
            question or is negative or not finite, or neither weights nor asked_probability is
            given.
    """
    scores = np.asarray(per_question, dtype=np.float64)
    n_questions = len(schema.questions)
    if scores.ndim != 2 or scores.shape[1] != n_questions:
        raise AcquisitionInputError(
            f"per_question must be [n_galaxies, {n_questions}] for schema {schema.name!r}, "
            f"got shape {scores.shape}"
        )
    if weights is None and asked_probability is None:
        raise AcquisitionInputError(
            "combined_score weights questions by P(asked) by default: pass asked_probability "
            "(prioritiser.acquisition.asked_probability(samples, schema)) or explicit weights"
        )
    factor = np.ones(n_questions)
    if weights is not None:
        unknown = sorted(set(weights) - set(schema.question_names))
        if unknown:
            raise AcquisitionInputError(
                f"weights name questions {unknown} that schema {schema.name!r} lacks; "
                f"use names from {schema.question_names}"
            )
        factor = np.array([float(weights.get(name, 0.0)) for name in schema.question_names])
        if not np.isfinite(factor).all() or (factor < 0).any():
            raise AcquisitionInputError(f"weights must be finite and >= 0, got {dict(weights)}")
    if asked_probability is not None:
        asked = np.asarray(asked_probability, dtype=np.float64)
        if asked.shape != scores.shape:
            raise AcquisitionInputError(
                f"asked_probability shape {asked.shape} differs from per_question {scores.shape}"
            )
        return (scores * asked) @ factor
    return scores @ factor


def _checked_fractions(samples: np.ndarray, schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    """Samples as float64 and their posterior-mean vote fractions [n_galaxies, n_answers].

    Raises:
        AcquisitionInputError: for a shape that does not fit the schema, no samples, or a
            concentration that is NaN, infinite or not positive.
    """
    array = np.asarray(samples, dtype=np.float64)
    n_answers = len(schema.label_cols)
    if array.ndim != 3 or array.shape[2] != n_answers:
        raise AcquisitionInputError(
            f"samples must be [n_galaxies, n_samples, {n_answers}] Dirichlet concentrations "
            f"for schema {schema.name!r}, got shape {array.shape}"
        )
    if array.shape[1] == 0:
        raise AcquisitionInputError("samples holds no posterior samples (axis 1 has length 0)")
    fractions, is_valid = mean_fractions(array, *_question_bounds(schema))
    if not is_valid:
        raise AcquisitionInputError(
            "samples must be finite, positive Dirichlet concentrations; found NaN, inf or <= 0"
        )
    return array, fractions


def _question_bounds(schema: Schema) -> tuple[np.ndarray, np.ndarray]:
    """[n_questions] int64 first answer index of each question, and one past its last."""
    starts = np.array([answers.start for answers in schema.question_slices], dtype=np.int64)
    stops = np.array([answers.stop for answers in schema.question_slices], dtype=np.int64)
    return starts, stops

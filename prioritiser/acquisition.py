"""Acquisition functions: how much new volunteer votes on each galaxy would teach the model.

Arrays in, arrays out. Posterior samples are Dirichlet concentrations shaped
``[n_galaxies, n_samples, n_answers]`` with answers in ``schema.label_cols`` order (one sample per
MC-dropout pass or ensemble member). The main score is BALD: the mutual information between the
votes a galaxy would receive and the choice of posterior sample, per question of the decision tree.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import xlogy

from prioritiser._dirichlet_multinomial import mean_fractions, tree_information
from prioritiser.errors import AcquisitionInputError, UnknownAcquisitionError
from prioritiser.predictive_information import DEFAULT_TARGETS, expected_predictive_information

if TYPE_CHECKING:
    from zoobot import Schema

__all__ = [
    "DEFAULT_MAX_EXACT_OUTCOMES",
    "DEFAULT_TOTAL_VOTES",
    "asked_probability",
    "bald",
    "combined_score",
    "entropy",
    "epig",
    "get_acquisition",
    "list_acquisitions",
    "mutual_information",
    "predictive_entropy",
    "question_mutual_information",
    "question_variation_ratio",
    "random",
    "random_score",
    "variation_ratio",
]

logger = logging.getLogger(__name__)

DEFAULT_TOTAL_VOTES = 40
"""Volunteers who classify a prioritised galaxy (W20; Galaxy Zoo's retirement limit)."""

DEFAULT_MAX_EXACT_OUTCOMES = 32
"""Questions whose vote splits number at most this are enumerated exactly (binary ones always)."""

_METHODS = ("auto", "exact", "stick_breaking")

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


def mutual_information(
    samples: np.ndarray,
    schema: Schema,
    total_votes: int = DEFAULT_TOTAL_VOTES,
    *,
    max_exact_outcomes: int = DEFAULT_MAX_EXACT_OUTCOMES,
) -> np.ndarray:
    """BALD per question: what the next volunteers' votes would say about the model's posterior.

    For question q, with N_q = round(total_votes x P(q asked)) expected votes (P(asked) from the
    posterior-mean vote fractions via ``schema.question_asked_probability``)::

        MI_q = H[ mean_s DirMult(k | N_q, alpha_s) ] - mean_s H[ DirMult(k | N_q, alpha_s) ]

    in nats, and 0 where N_q = 0. See :func:`question_mutual_information` for how each question is
    computed (exact enumeration where cheap, a stick-breaking approximation otherwise) and for the
    approximation's measured error.

    Args:
        samples: [n_galaxies, n_samples, n_answers] Dirichlet concentrations, answers in
            ``schema.label_cols`` order.
        schema: the decision tree.
        total_votes: volunteers who would classify the galaxy.
        max_exact_outcomes: enumerate a question exactly when its vote splits number at most this.

    Returns:
        [n_galaxies, n_questions] mutual information in nats, questions in schema order.

    Raises:
        AcquisitionInputError: if ``samples`` has the wrong shape or non-finite or non-positive
            values, or ``total_votes`` is negative.

    References:
        Walmsley et al. 2020, MNRAS 491, 1554, "Galaxy Zoo: probabilistic morphology through
        Bayesian CNNs and active learning" (W20). Houlsby, Huszar, Ghahramani & Lengyel 2011,
        "Bayesian active learning for classification and preference learning", arXiv:1112.5745.
    """
    samples, fractions = _checked_fractions(samples, schema)
    asked = schema.question_asked_probability(fractions)
    return _mutual_information(samples, fractions, schema, asked, total_votes, max_exact_outcomes)


def _mutual_information(
    samples: np.ndarray,
    fractions: np.ndarray,
    schema: Schema,
    asked: np.ndarray,
    total_votes: int,
    max_exact_outcomes: int,
) -> np.ndarray:
    """mutual_information for checked samples, their mean fractions and P(asked)."""
    if total_votes < 0:
        raise AcquisitionInputError(f"total_votes must be >= 0, got {total_votes}")
    started = time.perf_counter()
    vote_counts = np.rint(total_votes * asked).astype(np.int64)  # [n_galaxies, n_questions]
    is_exact = np.zeros(vote_counts.shape, dtype=bool)
    for q, answers in enumerate(schema.question_slices):
        is_exact[:, q] = _is_exact(
            vote_counts[:, q], answers.stop - answers.start, "auto", max_exact_outcomes
        )
    starts, stops = _question_bounds(schema)
    result = tree_information(samples, fractions, starts, stops, vote_counts, is_exact)
    logger.debug(
        "mutual information n_galaxies=%d n_samples=%d total_votes=%d duration_s=%.3f",
        samples.shape[0],
        samples.shape[1],
        total_votes,
        time.perf_counter() - started,
    )
    return result


def question_mutual_information(
    concentrations: np.ndarray,
    vote_counts: np.ndarray | int,
    *,
    method: str = "auto",
    max_exact_outcomes: int = DEFAULT_MAX_EXACT_OUTCOMES,
) -> np.ndarray:
    """Mutual information between one question's N votes and the posterior sample, in nats.

    ``exact`` enumerates every split of N votes over K answers (C(N+K-1, K-1) outcomes), in log
    space with log rising factorials, in compiled kernels (``prioritiser._dirichlet_multinomial``)
    run in parallel over galaxies, with the posterior samples in SIMD lanes. That is cheap for
    binary questions (N+1 outcomes; their beta-binomial pmf is built from the ratio of successive
    outcomes, see ``prioritiser._sticks``) but not for K >= 4 at N = 40 (12,341 to 1.2 million
    outcomes). Results agree with scipy's pmfs to 1e-10 nats for concentrations from 1e-3 to
    1e12 (tested).

    ``stick_breaking`` writes the K-answer Dirichlet-multinomial as a chain of K-1 beta-binomials
    (answers sorted by ascending mean vote fraction; stick a covers answer a against the answers
    after it) and computes each stick's mutual information I_a exactly at its expected vote count
    round(N x mean fraction of votes left for it). The chain rule sums the I_a conditioned on the
    earlier sticks; conditioning is dropped, and the sticks are combined as independent shares of
    the sample entropy log S: ``MI = log S x (1 - prod_a (1 - I_a / log S))``, which is exact for
    binary questions, never exceeds log S and is 0 when all samples agree. Error against exact
    enumeration (``benchmarks/acquisition.py``: 15 samples, concentrations 1 + 100 sigmoid(z),
    K = 3, 4, 5 at N = 40 and K = 6 at N = 20): median |relative error| 1-6 %, worst 10-15 % when
    samples scatter independently per answer (then it under-estimates by 3-6 % on average); when
    samples move together the sticks share information and it over-estimates by 2-8 % on average,
    worst 23-36 %. Rankings agree with exact MI to Spearman >= 0.99. Its cost grows like
    K x N per sample instead of N^(K-1) / (K-1)!.

    ``auto`` (default) is exact for binary questions and wherever the outcomes number at most
    ``max_exact_outcomes``, and stick-breaking otherwise.

    Args:
        concentrations: [n_galaxies, n_samples, n_answers] Dirichlet concentrations of one question.
        vote_counts: N per galaxy ([n_galaxies] non-negative integers) or one N for all.
        method: ``auto``, ``exact`` or ``stick_breaking``.
        max_exact_outcomes: the ``auto`` threshold on C(N+K-1, K-1).

    Returns:
        [n_galaxies] mutual information, between 0 and log(n_samples).

    Raises:
        AcquisitionInputError: for a bad shape, non-positive concentrations, negative or
            mis-shaped vote counts, or an unknown method.
    """
    alpha = np.asarray(concentrations, dtype=np.float64)
    if alpha.ndim != 3 or alpha.shape[2] < 2:
        raise AcquisitionInputError(
            "concentrations must be [n_galaxies, n_samples, n_answers >= 2], "
            f"got shape {alpha.shape}"
        )
    bounds = np.array([0], dtype=np.int64), np.array([alpha.shape[2]], dtype=np.int64)
    fractions, is_valid = mean_fractions(alpha, *bounds)
    if not is_valid:
        raise AcquisitionInputError("concentrations must be finite and positive")
    if method not in _METHODS:
        raise AcquisitionInputError(f"unknown method {method!r}; choose one of {list(_METHODS)}")
    counts = np.asarray(vote_counts)
    if counts.ndim == 0:
        counts = np.full(alpha.shape[0], counts)
    if (
        counts.shape != alpha.shape[:1]
        or not np.issubdtype(counts.dtype, np.integer)
        or (counts < 0).any()
    ):
        raise AcquisitionInputError(
            f"vote_counts must be one non-negative integer per galaxy ({alpha.shape[0]}), "
            f"got dtype {counts.dtype} and shape {counts.shape}"
        )
    counts = counts.astype(np.int64)
    is_exact = _is_exact(counts, alpha.shape[2], method, max_exact_outcomes)
    result = tree_information(alpha, fractions, *bounds, counts[:, None], is_exact[:, None])
    return result[:, 0]


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


def bald(
    samples: np.ndarray,
    schema: Schema,
    *,
    rng: np.random.Generator | None = None,
    total_votes: int = DEFAULT_TOTAL_VOTES,
) -> np.ndarray:
    """BALD acquisition: :func:`mutual_information` per question, weighted by P(asked), summed.

    Args:
        samples: [n_galaxies, n_samples, n_answers] Dirichlet concentrations.
        schema: the decision tree.
        rng: unused (every registry entry takes it).
        total_votes: volunteers who would classify the galaxy.

    Returns:
        [n_galaxies] scores in nats, higher meaning "show this galaxy sooner".

    Raises:
        AcquisitionInputError: for bad samples or a negative ``total_votes``.
    """
    samples, fractions = _checked_fractions(samples, schema)
    asked = schema.question_asked_probability(fractions)
    information = _mutual_information(
        samples, fractions, schema, asked, total_votes, DEFAULT_MAX_EXACT_OUTCOMES
    )
    return combined_score(information, schema, asked_probability=asked)


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


def list_acquisitions() -> list[str]:
    """Names of the registered acquisition functions."""
    return sorted(_REGISTRY)


def get_acquisition(name: str) -> AcquisitionFunction:
    """The acquisition function registered under ``name``.

    Every entry is called as ``fn(samples, schema, *, rng, total_votes=40)`` and returns finite
    [n_galaxies] scores, higher meaning "show this galaxy sooner". Each name is the name of the
    function it returns (:func:`bald`, :func:`entropy`, :func:`epig`, :func:`variation_ratio`,
    :func:`random`).

    Args:
        name: ``bald``, ``entropy``, ``epig``, ``variation_ratio`` or ``random``.

    Returns:
        The function.

    Raises:
        UnknownAcquisitionError: naming the registered functions.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownAcquisitionError(
            f"no acquisition function {name!r}; choose one of {list_acquisitions()}"
        ) from None


_REGISTRY: dict[str, AcquisitionFunction] = {
    function.__name__: function for function in (bald, entropy, epig, variation_ratio, random)
}


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


def _is_exact(
    vote_counts: np.ndarray, n_answers: int, method: str, max_exact_outcomes: int
) -> np.ndarray:
    """Which galaxies a question enumerates exactly (the rest use stick-breaking)."""
    if method == "exact":
        return np.ones(vote_counts.shape, dtype=bool)
    if method == "stick_breaking" or n_answers == 2:
        return np.zeros(vote_counts.shape, dtype=bool)
    return _outcome_counts(vote_counts, n_answers) <= max_exact_outcomes


def _outcome_counts(vote_counts: np.ndarray, n_answers: int) -> np.ndarray:
    """How many ways N votes split over K answers: C(N + K - 1, K - 1), per galaxy."""
    largest = int(vote_counts.max(initial=0))
    table = np.array([math.comb(n + n_answers - 1, n_answers - 1) for n in range(largest + 1)])
    return table[vote_counts]

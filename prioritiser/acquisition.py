"""Acquisition functions: how much new volunteer votes on each galaxy would teach the model.

Arrays in, arrays out. Posterior samples are Dirichlet concentrations shaped
``[n_galaxies, n_samples, n_answers]`` with answers in ``schema.label_cols`` order (one sample per
MC-dropout pass or ensemble member). The main score is BALD: the mutual information between the
votes a galaxy would receive and the choice of posterior sample, per question of the decision tree.
Baselines (entropy, variation ratio, random, EPIG) live in ``prioritiser.baselines`` and are
re-exported here with the registry of named acquisition functions.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import numpy as np

from prioritiser._acquisition_common import (
    DEFAULT_TOTAL_VOTES,
    AcquisitionFunction,
    _checked_fractions,
    _question_bounds,
    asked_probability,
    combined_score,
)
from prioritiser._dirichlet_multinomial import mean_fractions, tree_information
from prioritiser.baselines import (
    entropy,
    epig,
    predictive_entropy,
    question_variation_ratio,
    random,
    random_score,
    variation_ratio,
)
from prioritiser.errors import AcquisitionInputError, UnknownAcquisitionError

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

DEFAULT_MAX_EXACT_OUTCOMES = 861
"""Questions whose vote splits number at most this are enumerated exactly (binary ones always):
every 3-answer question up to N = 40 (861 splits), 4-answer ones up to N = 15 (969 splits at
N = 16), 5-answer ones up to N = 9 and 6-answer ones up to N = 7. Issue 15: stick-breaking ranks
3-answer questions of similar information at Spearman 0.98-0.99 only (``benchmarks/
mi_ranking.py``); exactness there costs ~40 % of whole-tree throughput."""

_METHODS = ("auto", "exact", "stick_breaking")


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

"""Compiled kernels for the mutual information of Dirichlet-multinomial votes (private).

``prioritiser.acquisition`` validates shapes and calls :func:`mean_fractions` and
:func:`tree_information`; everything here assumes well-shaped arrays. One parallel kernel walks
the galaxies in chunks and, for each galaxy, every question of the tree, so a galaxy's posterior
samples are read from memory once. Compiled code is cached on disk (``cache=True``), so only the
first process on a machine pays the compile time.

Each question takes one of the two routes defined in
``prioritiser.acquisition.question_mutual_information``:

- exact enumeration of every vote split (3 or more answers, few splits), in log space: log rising
  factorials as running sums of log(alpha + j), combined over a table of splits (``_enumeration``);
- beta-binomial sticks (binary questions: one stick with all N votes; otherwise the K - 1 sticks
  of the stick-breaking approximation at their expected vote counts; ``_sticks``).

Both routes put the posterior samples side by side in the innermost loops (padded to a multiple
of 8), and take their logs and exps from ``prioritiser._vector_math``, so those loops compile to
SIMD instructions (LLVM picks 256-bit AVX registers on Sapphire Rapids, whose tuning prefers them
over 512-bit ones; checked in the compiled IR).

numba's on-disk cache keys a compiled kernel on its own source file only: after editing
``_sticks.py``, ``_enumeration.py`` or ``_vector_math.py``, whose code is compiled into the
kernels here, delete ``prioritiser/__pycache__/*.nbi`` (or touch this file) before measuring.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np
from numba import njit, prange

from prioritiser._enumeration import enumerated_information
from prioritiser._sticks import stick_information

__all__ = ["mean_fractions", "split_tables", "tree_information", "vote_split_table"]

_CHUNK = 16
"""Galaxies per parallel work item: enough to amortise the scratch buffers each item allocates,
small enough that two threads share 20,000 galaxies evenly."""

_LANE_MULTIPLE = 8
"""Samples are padded to a multiple of this (one AVX-512 register of float64), so that loops over
samples need no scalar remainder; padded lanes copy sample 0 and carry no weight."""


@lru_cache(maxsize=64)
def vote_split_table(n_answers: int, max_votes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every split of N = 0..max_votes votes over K answers, concatenated over N.

    Returns:
        ``offsets`` [max_votes + 2] (the splits of N are rows ``offsets[N]:offsets[N + 1]``),
        ``splits`` [n_rows, K] vote counts, and ``log_coefficient`` [n_rows] log N! / prod k_a!.
    """
    blocks, coefficients, offsets = [], [], [0]
    for n_votes in range(max_votes + 1):
        splits = np.array(
            [
                np.diff((-1, *bars, n_votes + n_answers - 1)) - 1
                for bars in itertools.combinations(range(n_votes + n_answers - 1), n_answers - 1)
            ],
            dtype=np.int64,
        ).reshape(-1, n_answers)
        log_factorial = np.array([math.lgamma(k + 1.0) for k in range(n_votes + 1)])
        coefficients.append(log_factorial[n_votes] - log_factorial[splits].sum(axis=1))
        blocks.append(splits)
        offsets.append(offsets[-1] + len(splits))
    return (
        np.array(offsets, dtype=np.int64),
        np.ascontiguousarray(np.concatenate(blocks)),
        np.concatenate(coefficients),
    )


def split_tables(
    max_exact_votes: dict[int, int], max_answers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vote-split tables of several answer counts K, stacked for one kernel call.

    Args:
        max_exact_votes: K -> the largest N enumerated exactly for questions with K answers.
        max_answers: columns of the stacked ``splits`` (the largest K in the tree).

    Returns:
        ``offsets`` [max_answers + 1, largest N + 2] (the splits of N votes over K answers are rows
        ``offsets[K, N]:offsets[K, N + 1]``), ``splits`` [n_rows, max_answers] (columns past K are
        0) and ``log_coefficient`` [n_rows].
    """
    largest = max(max_exact_votes.values(), default=0)
    offsets = np.zeros((max_answers + 1, largest + 2), dtype=np.int64)
    split_blocks = [np.zeros((0, max_answers), dtype=np.int64)]
    coefficient_blocks = [np.zeros(0)]
    n_rows = 0
    for n_answers, max_votes in sorted(max_exact_votes.items()):
        block_offsets, splits, log_coefficient = vote_split_table(n_answers, max_votes)
        offsets[n_answers, : max_votes + 2] = n_rows + block_offsets
        padded = np.zeros((splits.shape[0], max_answers), dtype=np.int64)
        padded[:, :n_answers] = splits
        split_blocks.append(padded)
        coefficient_blocks.append(log_coefficient)
        n_rows += splits.shape[0]
    return offsets, np.concatenate(split_blocks), np.concatenate(coefficient_blocks)


def mean_fractions(
    samples: np.ndarray, starts: np.ndarray, stops: np.ndarray
) -> tuple[np.ndarray, bool]:
    """Posterior-mean vote fraction of each answer within its question, and an input check.

    Args:
        samples: [n_galaxies, n_samples, n_answers] float64 concentrations.
        starts: [n_questions] int64 first answer index of each question.
        stops: [n_questions] int64 one past its last answer index.

    Returns:
        [n_galaxies, n_answers] mean over samples of alpha_a / sum of the question's alphas, and
        whether every concentration is finite and positive (the fractions are meaningless if not).
    """
    fractions = np.zeros((samples.shape[0], samples.shape[2]))
    is_valid = np.ones(samples.shape[0], dtype=np.bool_)
    _mean_fractions_kernel(samples, starts, stops, fractions, is_valid)
    return fractions, bool(is_valid.all())


@njit(cache=True, error_model="numpy", parallel=True)
def _mean_fractions_kernel(samples, starts, stops, fractions, is_valid):  # pragma: no cover
    """Fill fractions [n_galaxies, n_answers] and is_valid [n_galaxies]; see mean_fractions.

    Each answer is divided by its question's total through a per-answer copy of the totals, so
    that the divisions of a sample run as one SIMD loop over answers.
    """
    n_galaxies, n_samples, n_answers = samples.shape
    n_chunks = -(-n_galaxies // _CHUNK)
    for chunk in prange(n_chunks):
        question_total = np.empty(n_answers)
        for g in range(chunk * _CHUNK, min((chunk + 1) * _CHUNK, n_galaxies)):
            valid = True
            sample_fractions = fractions[g]
            for s in range(n_samples):
                alpha = samples[g, s]
                for q in range(starts.shape[0]):
                    total = 0.0
                    for answer in range(starts[q], stops[q]):
                        total += alpha[answer]
                    for answer in range(starts[q], stops[q]):
                        question_total[answer] = total
                for answer in range(n_answers):
                    value = alpha[answer]
                    valid &= (value > 0.0) & (value < np.inf)  # NaN fails both
                    sample_fractions[answer] += value / question_total[answer]
            for answer in range(n_answers):
                sample_fractions[answer] /= n_samples
            is_valid[g] = valid


def tree_information(
    samples: np.ndarray,
    fractions: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
    vote_counts: np.ndarray,
    is_exact: np.ndarray,
) -> np.ndarray:
    """Mutual information of every question of every galaxy (unchecked inputs).

    Args:
        samples: [n_galaxies, n_samples, n_answers] float64 concentrations (any strides).
        fractions: [n_galaxies, n_answers] their mean vote fractions (:func:`mean_fractions`),
            which order each question's sticks.
        starts: [n_questions] int64 first answer index of each question.
        stops: [n_questions] int64 one past its last answer index.
        vote_counts: [n_galaxies, n_questions] int64 N per galaxy and question.
        is_exact: [n_galaxies, n_questions] bool, enumerate exactly (else stick-breaking);
            ignored for binary questions.

    Returns:
        [n_galaxies, n_questions] mutual information in nats.
    """
    n_galaxies, n_samples = samples.shape[0], samples.shape[1]
    result = np.zeros(vote_counts.shape)
    if n_galaxies == 0 or n_samples < 2:
        return result
    answer_counts = stops - starts
    max_exact_votes: dict[int, int] = {}
    for q, n_answers in enumerate(answer_counts.tolist()):
        exact_votes = vote_counts[is_exact[:, q], q]
        if n_answers > 2 and exact_votes.size:
            largest = max(int(exact_votes.max()), max_exact_votes.get(n_answers, 0))
            max_exact_votes[n_answers] = largest
    offsets, splits, log_coefficient = split_tables(max_exact_votes, int(answer_counts.max()))
    max_votes = max(int(vote_counts.max()), 1)
    log_integers = np.log(np.maximum(np.arange(max_votes + 1.0), 1.0))
    _tree_kernel(
        samples,
        fractions,
        starts,
        stops,
        vote_counts,
        is_exact,
        offsets,
        splits,
        log_coefficient,
        log_integers,
        result,
    )
    return result


@njit(cache=True, error_model="numpy", parallel=True)
def _tree_kernel(
    samples,
    fractions,
    starts,
    stops,
    vote_counts,
    is_exact,
    offsets,
    splits,
    log_coefficient,
    log_integers,
    result,
):  # pragma: no cover - compiled
    """Fill result [n_galaxies, n_questions]; see tree_information."""
    n_galaxies, n_samples, _ = samples.shape
    lanes = -(-n_samples // _LANE_MULTIPLE) * _LANE_MULTIPLE
    max_answers = np.max(stops - starts)
    max_outcomes = np.max(offsets[:, 1:] - offsets[:, :-1])
    max_votes = log_integers.shape[0] - 1
    n_chunks = -(-n_galaxies // _CHUNK)
    for chunk in prange(n_chunks):
        concentrations = np.empty((max_answers, lanes))
        order = np.empty(max_answers, dtype=np.int64)
        values = np.empty((max_votes + 1, lanes))
        rising = np.empty((max_answers, offsets.shape[1] - 1, lanes))
        workspace = np.empty((6, lanes))
        mixture = np.empty(max(max_votes + 1, max_outcomes))
        for g in range(chunk * _CHUNK, min((chunk + 1) * _CHUNK, n_galaxies)):
            for q in range(starts.shape[0]):
                n_votes = vote_counts[g, q]
                if n_votes == 0:
                    result[g, q] = 0.0
                    continue
                start, n_answers = starts[q], stops[q] - starts[q]
                for answer in range(n_answers):
                    for s in range(lanes):
                        concentrations[answer, s] = samples[
                            g, s if s < n_samples else 0, start + answer
                        ]
                if n_answers > 2 and is_exact[g, q]:
                    first, last = offsets[n_answers, n_votes], offsets[n_answers, n_votes + 1]
                    result[g, q] = enumerated_information(
                        concentrations[:n_answers],
                        n_votes,
                        n_samples,
                        splits[first:last, :n_answers],
                        log_coefficient[first:last],
                        rising,
                        workspace,
                        mixture,
                    )
                else:
                    result[g, q] = _stick_breaking(
                        concentrations[:n_answers],
                        fractions[g, start : start + n_answers],
                        n_votes,
                        n_samples,
                        order,
                        values,
                        workspace,
                        mixture,
                        log_integers,
                    )


@njit(cache=True, error_model="numpy")
def _stick_breaking(
    concentrations, fractions, n_votes, n_samples, order, values, workspace, mixture, log_integers
):  # pragma: no cover - compiled
    """One question's MI by beta-binomial sticks (exact for K = 2): concentrations [K, lanes].

    Answers are ordered by ascending mean fraction (stable), stick i sets answer order[i] against
    the sum of the answers after it, with round(N x the votes left for it) votes, and the sticks
    combine as ``log S x (1 - prod_i (1 - I_i / log S))``.
    """
    n_answers, lanes = concentrations.shape
    first, rest = workspace[0], workspace[1]
    if n_answers == 2:
        return stick_information(
            concentrations[0],
            concentrations[1],
            n_votes,
            n_samples,
            values,
            workspace[2:],
            mixture,
            log_integers,
        )
    for answer in range(n_answers):  # insertion sort: stable, and K is at most a handful
        position = answer
        while position > 0 and fractions[order[position - 1]] > fractions[answer]:
            order[position] = order[position - 1]
            position -= 1
        order[position] = answer
    sample_entropy = math.log(n_samples)
    unexplained, cumulative = 1.0, 0.0
    for stick in range(n_answers - 1):
        fraction = fractions[order[stick]]
        cumulative += fraction
        share = min(max(1.0 - (cumulative - fraction), 0.0), 1.0)
        stick_votes = int(np.rint(n_votes * share))
        if stick_votes == 0:
            continue
        for s in range(lanes):
            first[s] = concentrations[order[stick], s]
            rest[s] = 0.0
        for later in range(n_answers - 1, stick, -1):
            for s in range(lanes):
                rest[s] += concentrations[order[later], s]
        information = stick_information(
            first, rest, stick_votes, n_samples, values, workspace[2:], mixture, log_integers
        )
        unexplained *= 1.0 - min(information / sample_entropy, 1.0)
    return sample_entropy * (1.0 - unexplained)

"""Compiled kernels for the mutual information of Dirichlet-multinomial votes (private).

``prioritiser.acquisition`` validates inputs and calls :func:`question_information`; everything
here assumes valid arrays. The kernels are numba-compiled (float64, no fastmath, so results match
the numpy definitions to rounding) and run galaxies in parallel chunks. Compiled code is cached on
disk (``cache=True``), so only the first process on a machine pays the compile time.

Each galaxy and question takes one of two routes, both defined in
``prioritiser.acquisition.question_mutual_information``:

- exact enumeration (questions with 3 or more answers and few vote splits): log rising factorials
  by running sums of log(alpha + j), combined over a table of every vote split;
- beta-binomial sticks (binary questions: one stick with all N votes; otherwise the K - 1 sticks
  of the stick-breaking approximation, at their expected vote counts). Each sample's pmf of
  k = 0..N comes from the ratio p(k + 1) / p(k), with no log-gamma and, for concentrations >= 1,
  no exp (:func:`_unimodal_pmf`). The pmfs of a block of galaxies go into one flat array so that
  numpy's vectorised log does the one transcendental per outcome that the entropies need.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np
from numba import njit, prange

__all__ = ["log_binomial_table", "mean_fractions", "question_information", "vote_split_table"]

_CHUNK = 32
"""Galaxies per parallel work item: enough to amortise the scratch buffers each item allocates."""

_BLOCK = 512
"""Galaxies per numpy pass of stick-breaking: bounds the flat pmf array (about 12 MB at N = 40)."""

_TINY = 1e-300
"""Stands in for a negligible or underflowed probability, so that every log is finite; each adds
under 1e-297 nats to an entropy."""

_NEGLIGIBLE = 1e-20
"""Outcomes below this fraction of a unimodal pmf's peak are skipped (see _unimodal_pmf)."""


@lru_cache(maxsize=8)
def log_binomial_table(max_votes: int) -> np.ndarray:
    """[max_votes + 1, max_votes + 1] table of log C(N, k) (0 where k > N)."""
    table = np.zeros((max_votes + 1, max_votes + 1))
    log_factorial = np.array([math.lgamma(n + 1.0) for n in range(max_votes + 1)])
    for n_votes in range(max_votes + 1):
        k = np.arange(n_votes + 1)
        table[n_votes, : n_votes + 1] = (
            log_factorial[n_votes] - log_factorial[k] - log_factorial[n_votes - k]
        )
    return table


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


def mean_fractions(samples: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Posterior-mean vote fraction of each answer within its question (unchecked inputs).

    Args:
        samples: [n_galaxies, n_samples, n_answers] float64 concentrations.
        starts: [n_questions] int64 first answer index of each question.
        stops: [n_questions] int64 one past its last answer index.

    Returns:
        [n_galaxies, n_answers] mean over samples of alpha_a / sum of the question's alphas.
    """
    fractions = np.zeros((samples.shape[0], samples.shape[2]))
    _mean_fractions_kernel(samples, starts, stops, fractions)
    return fractions


@njit(cache=True, fastmath=False, parallel=True)
def _mean_fractions_kernel(samples, starts, stops, fractions):  # pragma: no cover - compiled
    """Fill fractions [n_galaxies, n_answers]; see mean_fractions."""
    n_galaxies, n_samples, _ = samples.shape
    for g in prange(n_galaxies):
        for q in range(starts.shape[0]):
            for s in range(n_samples):
                total = 0.0
                for answer in range(starts[q], stops[q]):
                    total += samples[g, s, answer]
                for answer in range(starts[q], stops[q]):
                    fractions[g, answer] += samples[g, s, answer] / total
        for answer in range(samples.shape[2]):
            fractions[g, answer] /= n_samples


def question_information(
    alpha: np.ndarray,
    vote_counts: np.ndarray,
    is_exact: np.ndarray,
) -> np.ndarray:
    """Mutual information per galaxy of one question (unchecked inputs).

    Args:
        alpha: [n_galaxies, n_samples, K] float64 concentrations (any strides).
        vote_counts: [n_galaxies] int64 N per galaxy.
        is_exact: [n_galaxies] bool, enumerate exactly (else stick-breaking); ignored for K = 2.

    Returns:
        [n_galaxies] mutual information in nats.
    """
    n_galaxies, n_samples, n_answers = alpha.shape
    result = np.zeros(n_galaxies)
    if n_galaxies == 0 or n_samples < 2:
        return result
    has_votes = vote_counts > 0
    if n_answers > 2:
        exact = np.flatnonzero(is_exact & has_votes)
        if exact.size:
            _enumerate_members(alpha, vote_counts, exact, result)
        has_votes &= ~is_exact
    sticks = np.flatnonzero(has_votes)
    for first in range(0, sticks.size, _BLOCK):
        members = sticks[first : first + _BLOCK]
        result[members] = _stick_block(alpha, vote_counts, members)
    return result


def _enumerate_members(
    alpha: np.ndarray, vote_counts: np.ndarray, members: np.ndarray, result: np.ndarray
) -> None:
    """Exact enumeration for the galaxies ``members`` (K >= 3), written into ``result``."""
    max_votes = int(vote_counts[members].max())
    offsets, splits, log_coefficient = vote_split_table(alpha.shape[2], max_votes)
    _enumeration_kernel(alpha, vote_counts, members, offsets, splits, log_coefficient, result)


def _stick_block(alpha: np.ndarray, vote_counts: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Stick-breaking MI (exact for K = 2) of the galaxies ``members``: [n_members].

    The compiled kernels lay out every stick's pmfs, sample by sample, in one flat array; numpy's
    vectorised log then does the one transcendental per outcome that the entropies need.
    """
    n_samples, n_answers = alpha.shape[1], alpha.shape[2]
    n_sticks = n_answers - 1
    order = np.empty((members.size, n_answers), dtype=np.int64)
    stick_votes = np.empty((members.size, n_sticks), dtype=np.int64)
    _plan_sticks(alpha, vote_counts, members, order, stick_votes)
    lengths = stick_votes.ravel() + 1
    mixture_offsets = np.cumsum(lengths) - lengths
    pmfs = np.empty(int(lengths.sum()) * n_samples)
    mixture = np.empty(int(lengths.sum()))
    _fill_pmfs(
        alpha,
        members,
        order,
        stick_votes,
        mixture_offsets,
        log_binomial_table(int(stick_votes.max())),
        pmfs,
        mixture,
    )
    negative_entropy = np.add.reduceat(_x_log_x(pmfs), mixture_offsets * n_samples) / n_samples
    mixture_entropy = -np.add.reduceat(_x_log_x(mixture), mixture_offsets)
    information = np.maximum(mixture_entropy + negative_entropy, 0.0).reshape(-1, n_sticks)
    if n_answers == 2:
        return information[:, 0]
    sample_entropy = math.log(n_samples)
    unexplained = np.ones(members.size)
    for stick in range(n_sticks):
        unexplained *= 1.0 - np.minimum(information[:, stick] / sample_entropy, 1.0)
    return sample_entropy * (1.0 - unexplained)


def _x_log_x(values: np.ndarray) -> np.ndarray:
    """Elementwise v log v of positive values."""
    logs = np.log(values)
    return np.multiply(values, logs, out=logs)


@njit(cache=True, fastmath=False, parallel=True)
def _plan_sticks(alpha, vote_counts, members, order, stick_votes):  # pragma: no cover - compiled
    """Per member galaxy: answers by ascending mean fraction and each stick's expected votes.

    Binary questions keep their answer order and have one stick with all N votes.
    """
    n_samples, n_answers = alpha.shape[1], alpha.shape[2]
    for m in prange(members.shape[0]):
        g = members[m]
        n_votes = vote_counts[g]
        if n_answers == 2:
            order[m, 0], order[m, 1] = 0, 1
            stick_votes[m, 0] = n_votes
            continue
        mean_fraction = np.zeros(n_answers)
        for s in range(n_samples):
            total = 0.0
            for answer in range(n_answers):
                total += alpha[g, s, answer]
            for answer in range(n_answers):
                mean_fraction[answer] += alpha[g, s, answer] / total
        mean_fraction /= n_samples
        order[m] = np.argsort(mean_fraction, kind="mergesort")
        cumulative = 0.0
        for stick in range(n_answers - 1):
            fraction = mean_fraction[order[m, stick]]
            cumulative += fraction
            share = min(max(1.0 - (cumulative - fraction), 0.0), 1.0)
            stick_votes[m, stick] = int(np.rint(n_votes * share))


@njit(cache=True, fastmath=False, parallel=True)
def _fill_pmfs(
    alpha, members, order, stick_votes, mixture_offsets, log_binomial, pmfs, mixture
):  # pragma: no cover - compiled
    """Write every stick's beta-binomial pmfs (sample-major) and their mean over samples.

    Stick i of member m with n votes owns ``mixture[o : o + n + 1]`` and
    ``pmfs[o * S : (o + n + 1) * S]``, o = mixture_offsets[m * n_sticks + i]; its first answer
    is ``order[m, i]`` against the sum of the answers after it in ``order``.
    """
    n_samples, n_answers = alpha.shape[1], alpha.shape[2]
    n_sticks = n_answers - 1
    n_chunks = (members.shape[0] + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        for m in range(chunk * _CHUNK, min((chunk + 1) * _CHUNK, members.shape[0])):
            g = members[m]
            for stick in range(n_sticks):
                n_votes = stick_votes[m, stick]
                offset = mixture_offsets[m * n_sticks + stick]
                stick_mixture = mixture[offset : offset + n_votes + 1]
                stick_mixture[:] = _TINY * n_samples  # keeps every mean positive for the log
                for s in range(n_samples):
                    a = alpha[g, s, order[m, stick]]
                    b = 0.0
                    for later in range(n_answers - 1, stick, -1):
                        b += alpha[g, s, order[m, later]]
                    base = offset * n_samples + s * (n_votes + 1)
                    pmf = pmfs[base : base + n_votes + 1]
                    if a >= 1.0 and b >= 1.0:
                        _unimodal_pmf(a, b, n_votes, pmf, stick_mixture)
                    else:
                        _log_space_pmf(a, b, n_votes, log_binomial[n_votes], pmf, stick_mixture)
                for k in range(n_votes + 1):
                    stick_mixture[k] /= n_samples


@njit(cache=True, fastmath=False)
def _unimodal_pmf(a, b, n_votes, pmf, mixture):  # pragma: no cover - compiled
    """Write the beta-binomial pmf of k = 0..N (a, b >= 1) into pmf [N + 1]; add it to mixture.

    With a, b >= 1 the pmf is log-concave, so it rises to one peak and then falls. Walking out
    from the peak with the ratio p(k + 1) / p(k) = (N - k)(a + k) / ((k + 1)(b + N - 1 - k))
    needs no exp, and the walk stops where p drops below _NEGLIGIBLE of the peak and keeps falling
    (those outcomes are written as _TINY): they would change an entropy by under 1e-18 nats.
    """
    start = 0
    if a + b > 2.0:
        start = min(max(int(n_votes * (a - 1.0) / (a + b - 2.0) + 0.5), 0), n_votes)
    # the divisions do not depend on each other, so they pipeline; only the running value (kept in
    # a register) chains from one outcome to the next
    pmf[start] = 1.0
    peak, total = 1.0, 1.0
    high, value = start, 1.0
    while high < n_votes:
        ratio = ((n_votes - high) * (a + high)) / ((high + 1.0) * (b + (n_votes - 1 - high)))
        value *= ratio
        if ratio < 1.0 and value < _NEGLIGIBLE * peak:
            break
        high += 1
        pmf[high] = value
        total += value
        peak = max(peak, value)
    low, value = start, 1.0
    while low > 0:
        ratio = (low * (b + (n_votes - low))) / ((n_votes - low + 1.0) * (a + (low - 1)))
        value *= ratio
        if ratio < 1.0 and value < _NEGLIGIBLE * peak:
            break
        low -= 1
        pmf[low] = value
        total += value
        peak = max(peak, value)
    scale = 1.0 / total
    for k in range(low, high + 1):
        pmf[k] *= scale
        mixture[k] += pmf[k]
    pmf[:low] = _TINY
    pmf[high + 1 :] = _TINY


@njit(cache=True, fastmath=False)
def _log_space_pmf(a, b, n_votes, log_binomial, pmf, mixture):  # pragma: no cover - compiled
    """As _unimodal_pmf for any a, b > 0: every outcome, in log space (a pmf may peak twice)."""
    # log p(k) up to a constant: log C(N, k) + sum_{j<k} log((a + j) / (b + N - 1 - j))
    running, top = 0.0, 0.0
    pmf[0] = 0.0
    for k in range(n_votes):
        ratio = (a + k) / (b + (n_votes - 1 - k))
        if 0.0 < ratio < np.inf:
            running += math.log(ratio)
        else:
            running += math.log(a + k) - math.log(b + (n_votes - 1 - k))
        pmf[k + 1] = log_binomial[k + 1] + running
        top = max(top, pmf[k + 1])
    total = 0.0
    for k in range(n_votes + 1):
        pmf[k] = math.exp(pmf[k] - top)
        total += pmf[k]
    for k in range(n_votes + 1):
        pmf[k] = max(pmf[k] / total, _TINY)
        mixture[k] += pmf[k]


@njit(cache=True, fastmath=False, parallel=True)
def _enumeration_kernel(
    alpha, vote_counts, members, offsets, splits, log_coefficient, result
):  # pragma: no cover - compiled
    """Exact enumeration for each member galaxy, in parallel chunks."""
    n_answers = alpha.shape[2]
    max_votes = offsets.shape[0] - 2
    max_outcomes = offsets[-1] - offsets[-2]
    n_chunks = (members.shape[0] + _CHUNK - 1) // _CHUNK
    for chunk in prange(n_chunks):
        rising = np.empty((n_answers, max_votes + 1))
        mixture = np.empty(max_outcomes)
        for m in range(chunk * _CHUNK, min((chunk + 1) * _CHUNK, members.shape[0])):
            g = members[m]
            n_votes = vote_counts[g]
            start, stop = offsets[n_votes], offsets[n_votes + 1]
            result[g] = _enumerated_information(
                alpha[g], n_votes, splits[start:stop], log_coefficient[start:stop], rising, mixture
            )


@njit(cache=True, fastmath=False)
def _mixture_entropy(mixture, n_samples):  # pragma: no cover - compiled
    """Entropy of mixture / S, where mixture holds the samples' summed pmfs."""
    entropy = 0.0
    for k in range(mixture.shape[0]):
        m = mixture[k] / n_samples
        if m > 0.0:
            entropy -= m * math.log(m)
    return entropy


@njit(cache=True, fastmath=False)
def _enumerated_information(
    alpha, n_votes, splits, log_coefficient, rising, mixture
):  # pragma: no cover - compiled
    """Exact MI over every vote split: alpha [S, K], splits [n_outcomes, K], rising [K, > N]."""
    n_samples, n_answers = alpha.shape
    n_outcomes = splits.shape[0]
    for o in range(n_outcomes):
        mixture[o] = 0.0
    negative_entropy = 0.0
    for s in range(n_samples):
        total = 0.0
        for answer in range(n_answers):
            concentration = alpha[s, answer]
            total += concentration
            rising[answer, 0] = 0.0
            for j in range(n_votes):
                rising[answer, j + 1] = rising[answer, j] + math.log(concentration + j)
        total_rising = 0.0
        for j in range(n_votes):
            total_rising += math.log(total + j)
        for o in range(n_outcomes):
            log_p = log_coefficient[o] - total_rising
            for answer in range(n_answers):
                log_p += rising[answer, splits[o, answer]]
            p = math.exp(log_p)
            if p > 0.0:
                negative_entropy += p * log_p
                mixture[o] += p
    information = _mixture_entropy(mixture[:n_outcomes], n_samples) + negative_entropy / n_samples
    return max(information, 0.0)

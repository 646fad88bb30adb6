"""Benchmark BALD scoring: galaxies/s on the full GZ DECaLS DR5 tree, against two baselines.

EPIG (``prioritiser.acquisition.epig``) gets a row of its own: a different quantity, timed on the
same samples.

Scores synthetic posterior samples (Dirichlet concentrations 1 + 100 sigmoid(z), as Zoobot's head
makes them) with ``prioritiser.acquisition.mutual_information`` (one parallel numba kernel over
galaxies, samples in SIMD lanes, logs and exps from ``prioritiser._vector_math``), with an earlier
vectorised numpy implementation (kept below as a reference path) and with a naive per-galaxy
Python loop over scipy.stats pmfs; all three compute the same quantity. Prints markdown tables of
throughput, the speed-ups measured in the same run, the agreement of the implementations, the
numba compile time (cold and warm on-disk cache, each in a fresh process) and the stick-breaking
approximation's error against exact enumeration at N = 40.

Usage::

    python benchmarks/acquisition.py [--galaxies 20000] [--samples 15] [--threads 1 2]

Set ``NUMBA_THREADING_LAYER`` (``omp``, ``tbb`` or ``workqueue``) to choose numba's threads; the
layer in use is printed. Figures are best of ``--repeats`` runs, with the load average before
and after, since other work on the machine slows every row.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import math
import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np
from scipy.special import gammaln, xlogy
from scipy.stats import betabinom, dirichlet_multinomial

from prioritiser.acquisition import (
    DEFAULT_MAX_EXACT_OUTCOMES,
    epig,
    mutual_information,
    question_mutual_information,
)
from prioritiser.predictive_information import DEFAULT_TARGETS
from zoobot.schemas import decals_dr5_schema

_BLOCK_ELEMENTS = 1 << 16


def make_samples(rng, n_galaxies, n_samples, n_answers, spread=0.5, shared=0.0):
    """[n_galaxies, n_samples, n_answers] concentrations; ``shared`` moves samples together."""
    centre = rng.normal(0.0, 1.5, (n_galaxies, 1, n_answers))
    independent = rng.normal(0.0, 1.0, (n_galaxies, n_samples, n_answers))
    together = rng.normal(0.0, 1.0, (n_galaxies, n_samples, 1)) * rng.normal(
        0.0, 1.0, (n_galaxies, 1, n_answers)
    )
    scale = rng.uniform(0.05, 2.0 * spread, (n_galaxies, 1, 1))
    noise = (1.0 - shared) * independent + shared * together
    return 1.0 + 100.0 / (1.0 + np.exp(-(centre + scale * noise)))


def naive_exact(alpha, n_votes):
    """Exact MI for one galaxy and question, enumerating splits with scipy's pmf."""
    n_answers = alpha.shape[1]
    splits = np.array(
        [
            np.diff((-1, *bars, n_votes + n_answers - 1)) - 1
            for bars in itertools.combinations(range(n_votes + n_answers - 1), n_answers - 1)
        ]
    )
    log_p = np.array([dirichlet_multinomial.logpmf(splits, a, n_votes) for a in alpha])
    return mixture_information(log_p)


def naive_binary(first, second, n_votes):
    """Exact MI of a beta-binomial stick for one galaxy, one sample at a time."""
    k = np.arange(n_votes + 1)
    log_p = np.array([betabinom.logpmf(k, n_votes, a, b) for a, b in zip(first, second)])
    return mixture_information(log_p)


def mixture_information(log_p):
    p = np.exp(log_p)
    mixture = p.mean(axis=0)
    positive = mixture > 0
    mixture_entropy = -(mixture[positive] * np.log(mixture[positive])).sum()
    return max(mixture_entropy + (p * log_p).sum(axis=1).mean(), 0.0)


def naive_sticks(alpha, n_votes):
    """The stick-breaking approximation for one galaxy and question, written as plain loops."""
    fractions = (alpha / alpha.sum(axis=1, keepdims=True)).mean(axis=0)
    order = np.argsort(fractions, kind="stable")
    alpha, fractions = alpha[:, order], fractions[order]
    sample_entropy = math.log(alpha.shape[0])
    unexplained, before = 1.0, 0.0
    for stick in range(alpha.shape[1] - 1):
        stick_votes = int(np.rint(n_votes * min(max(1.0 - before, 0.0), 1.0)))
        information = 0.0
        if stick_votes > 0:
            rest = alpha[:, stick + 1 :].sum(axis=1)
            information = naive_binary(alpha[:, stick], rest, stick_votes)
        unexplained *= 1.0 - min(information / sample_entropy, 1.0)
        before += fractions[stick]
    return sample_entropy * (1.0 - unexplained)


def naive_mutual_information(samples, schema, total_votes, max_exact_outcomes):
    """The baseline: one galaxy, one question, one posterior sample at a time."""
    result = np.zeros((samples.shape[0], len(schema.questions)))
    for g, galaxy in enumerate(samples):
        fractions = np.concatenate(
            [
                (galaxy[:, a] / galaxy[:, a].sum(axis=1, keepdims=True)).mean(axis=0)
                for a in schema.question_slices
            ]
        )
        asked = schema.question_asked_probability(fractions[None])[0]
        for q, answers in enumerate(schema.question_slices):
            n_votes = int(np.rint(total_votes * asked[q]))
            alpha = galaxy[:, answers]
            n_answers = alpha.shape[1]
            if n_votes == 0 or alpha.shape[0] < 2:
                continue
            outcomes = math.comb(n_votes + n_answers - 1, n_answers - 1)
            if n_answers == 2 or outcomes <= max_exact_outcomes:
                result[g, q] = naive_exact(alpha, n_votes)
            else:
                result[g, q] = naive_sticks(alpha, n_votes)
    return result


def best_time(function, repeats):
    """Best (wall seconds, CPU seconds of this process) over repeats."""
    times = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return min(times)


def numpy_reference(samples, schema, total_votes, max_exact_outcomes=DEFAULT_MAX_EXACT_OUTCOMES):
    """The previous vectorised numpy implementation of mutual_information (no input checks)."""
    by_answer = _by_answer(np.asarray(samples, dtype=np.float64))
    asked = schema.question_asked_probability(_mean_fractions(by_answer, schema).T)
    vote_counts = np.rint(total_votes * asked).astype(np.int64)
    result = np.empty(asked.shape)
    for q, answers in enumerate(schema.question_slices):
        result[:, q] = _question_mi(
            by_answer[answers], vote_counts[:, q], "auto", max_exact_outcomes
        )
    return result


def _by_answer(samples: np.ndarray) -> np.ndarray:
    """[n_galaxies, n_samples, n_answers] -> contiguous [n_answers, n_samples, n_galaxies]."""
    return np.ascontiguousarray(samples.transpose(2, 1, 0))


def _mean_fractions(by_answer: np.ndarray, schema) -> np.ndarray:
    """Posterior-mean vote fraction of each answer: [n_answers, S, G] -> [n_answers, G]."""
    fractions = np.empty((by_answer.shape[0], by_answer.shape[2]))
    for answers in schema.question_slices:
        alpha = by_answer[answers]
        fractions[answers] = (alpha / alpha.sum(axis=0)).mean(axis=1)
    return fractions


def _question_mi(
    by_answer: np.ndarray, vote_counts: np.ndarray, method: str, max_exact_outcomes: int
) -> np.ndarray:
    """question_mutual_information on [K, n_samples, n_galaxies] concentrations, unchecked."""
    n_answers, n_samples, n_galaxies = by_answer.shape
    if n_samples < 2 or n_galaxies == 0:
        return np.zeros(n_galaxies)
    if method == "exact" or n_answers == 2:
        return _by_vote_count(_exact_mi, by_answer, vote_counts)
    if method == "stick_breaking":
        return _stick_breaking_mi(by_answer, vote_counts)
    is_exact = _outcome_counts(vote_counts, n_answers) <= max_exact_outcomes
    result = np.empty(n_galaxies)
    result[is_exact] = _by_vote_count(_exact_mi, by_answer[:, :, is_exact], vote_counts[is_exact])
    result[~is_exact] = _stick_breaking_mi(by_answer[:, :, ~is_exact], vote_counts[~is_exact])
    return result


def _outcome_counts(vote_counts: np.ndarray, n_answers: int) -> np.ndarray:
    """How many ways N votes split over K answers: C(N + K - 1, K - 1), per galaxy."""
    largest = int(vote_counts.max(initial=0))
    table = np.array([math.comb(n + n_answers - 1, n_answers - 1) for n in range(largest + 1)])
    return table[vote_counts]


@functools.lru_cache(maxsize=256)
def _vote_splits(n_votes: int, n_answers: int) -> tuple[np.ndarray, np.ndarray]:
    """Every split of N votes over K answers, [n_outcomes, K], and its log N! / prod k_a!."""
    splits = np.array(
        [
            np.diff((-1, *bars, n_votes + n_answers - 1)) - 1
            for bars in itertools.combinations(range(n_votes + n_answers - 1), n_answers - 1)
        ],
        dtype=np.intp,
    )
    log_coefficient = gammaln(n_votes + 1) - gammaln(splits + 1).sum(axis=1)
    return splits, log_coefficient


def _log_rising(alpha: np.ndarray, n_votes: int) -> np.ndarray:
    """Log Gamma(alpha + j) - log Gamma(alpha), j = 0..N: [S, G] -> [N + 1, S, G].

    Votes lead so that the running sum, and every later operation, runs over contiguous rows.
    """
    table = np.empty((n_votes + 1, *alpha.shape))
    table[0] = 0.0
    np.log(alpha + np.arange(n_votes)[:, None, None], out=table[1:])
    # a row-by-row running sum is several times faster than np.cumsum along the leading axis
    for votes in range(2, n_votes + 1):
        np.add(table[votes - 1], table[votes], out=table[votes])
    return table


def _by_vote_count(
    function,
    alpha: np.ndarray,
    vote_counts: np.ndarray,
) -> np.ndarray:
    """Apply ``function(alpha_block, N)`` to galaxies grouped by N, in blocks of bounded size.

    Args:
        function: maps [K, n_samples, n_block] concentrations and N to [n_block] values.
        alpha: [K, n_samples, n_galaxies] concentrations.
        vote_counts: [n_galaxies] N per galaxy.

    Returns:
        [n_galaxies] values, 0 where N = 0.
    """
    result = np.zeros(alpha.shape[2])
    if result.size == 0:
        return result
    order = np.argsort(vote_counts, kind="stable")
    sorted_counts = vote_counts[order]
    starts = np.flatnonzero(np.diff(sorted_counts, prepend=-1))
    stops = np.append(starts[1:], len(order))
    n_answers, n_samples = alpha.shape[0], alpha.shape[1]
    for start, stop in zip(starts, stops, strict=True):
        n_votes = int(sorted_counts[start])
        if n_votes == 0:
            continue
        width = n_samples * math.comb(n_votes + n_answers - 1, n_answers - 1)
        block = max(1, _BLOCK_ELEMENTS // width)
        for first in range(start, stop, block):
            members = order[first : min(first + block, stop)]
            result[members] = function(alpha[:, :, members], n_votes)
    return result


def _exact_mi(alpha: np.ndarray, n_votes: int) -> np.ndarray:
    """Exact MI by enumerating every vote split: [K, n_samples, n_galaxies] -> [n_galaxies]."""
    if alpha.shape[0] == 2:
        return _mixture_information(_beta_binomial_log_pmf(alpha[0], alpha[1], n_votes))
    total = alpha.sum(axis=0)
    splits, log_coefficient = _vote_splits(n_votes, alpha.shape[0])
    # [n_outcomes, n_samples, n_galaxies]
    log_p = log_coefficient[:, None, None] - (gammaln(total + n_votes) - gammaln(total))
    for answer in range(alpha.shape[0]):
        log_p += _log_rising(alpha[answer], n_votes)[splits[:, answer]]
    return _mixture_information(log_p)


def _beta_binomial_log_pmf(first: np.ndarray, second: np.ndarray, n_votes: int) -> np.ndarray:
    """Log beta-binomial pmf of k = 0..N votes for the first of two answers.

    Built from log p(0) and the ratio p(k+1) / p(k) = (N-k)(first+k) / ((k+1)(second+N-k-1)),
    accumulated in log space: one log per outcome instead of two log-gamma tables.

    Args:
        first: [n_samples, n_galaxies] concentrations of the first answer.
        second: [n_samples, n_galaxies] concentrations of the second.
        n_votes: N.

    Returns:
        [N + 1, n_samples, n_galaxies] log probabilities.
    """
    votes = np.arange(n_votes)[:, None, None]
    log_p = np.empty((n_votes + 1, *first.shape))
    total = first + second
    log_p[0] = gammaln(second + n_votes) - gammaln(second)
    log_p[0] -= gammaln(total + n_votes) - gammaln(total)
    step = log_p[1:]
    np.add(first, votes, out=step)
    step *= (n_votes - votes) / (votes + 1.0)
    step /= second + (n_votes - 1 - votes)
    np.log(step, out=step)
    # a row-by-row running sum is several times faster than np.cumsum along the leading axis
    for votes_so_far in range(1, n_votes + 1):
        np.add(log_p[votes_so_far - 1], log_p[votes_so_far], out=log_p[votes_so_far])
    return log_p


def _mixture_information(log_p: np.ndarray) -> np.ndarray:
    """H[mean_s p_s] - mean_s H[p_s]: log_p [n_outcomes, n_samples, n_galaxies] -> [n_galaxies]."""
    p = np.exp(log_p)
    mixture = p.mean(axis=1)  # [n_outcomes, n_galaxies]
    mean_neg_entropy = np.multiply(p, log_p, out=p).sum(axis=(0, 1)) / log_p.shape[1]
    mixture_entropy = -xlogy(mixture, mixture).sum(axis=0)
    return np.maximum(mixture_entropy + mean_neg_entropy, 0.0)


def _stick_breaking_mi(alpha: np.ndarray, vote_counts: np.ndarray) -> np.ndarray:
    """Stick-breaking approximation (see question_mutual_information). [K, S, G] -> [G]."""
    n_answers, n_samples = alpha.shape[0], alpha.shape[1]
    mean_fraction = (alpha / alpha.sum(axis=0)).mean(axis=1)  # [K, G]
    order = np.argsort(mean_fraction, axis=0, kind="stable")
    alpha = np.take_along_axis(alpha, order[:, None, :], axis=0)
    mean_fraction = np.take_along_axis(mean_fraction, order, axis=0)
    # [K, S, G]: total concentration of the answers after each one (the rest of the stick),
    # summed rather than subtracted so that it stays positive
    rest = np.zeros_like(alpha)
    rest[:-1] = np.cumsum(alpha[::-1], axis=0)[::-1][1:]
    votes_before = np.cumsum(mean_fraction, axis=0) - mean_fraction  # [K, G]
    sample_entropy = math.log(n_samples)
    unexplained = np.ones(alpha.shape[2])
    for stick in range(n_answers - 1):
        share = np.clip(1.0 - votes_before[stick], 0.0, 1.0)
        stick_votes = np.rint(vote_counts * share).astype(np.int64)
        pair = np.stack([alpha[stick], rest[stick]])
        information = _by_vote_count(_exact_mi, pair, stick_votes)
        unexplained *= 1.0 - np.minimum(information / sample_entropy, 1.0)
    return sample_entropy * (1.0 - unexplained)


def throughput_table(args, rng):
    schema = decals_dr5_schema
    samples = make_samples(rng, args.galaxies, args.samples, len(schema.label_cols))
    subset = samples[: args.baseline_galaxies]
    mutual_information(subset[:2], schema, args.total_votes)  # compiled or loaded from cache
    print(f"numba {numba.__version__}, threading layer: {numba.threading_layer()}")
    naive_seconds, naive_cpu = best_time(
        lambda: naive_mutual_information(
            subset, schema, args.total_votes, DEFAULT_MAX_EXACT_OUTCOMES
        ),
        1,
    )
    naive = naive_mutual_information(subset, schema, args.total_votes, DEFAULT_MAX_EXACT_OUTCOMES)
    naive_rate = len(subset) / naive_seconds
    numpy_seconds, numpy_cpu = best_time(
        lambda: numpy_reference(samples, schema, args.total_votes), args.repeats
    )
    numpy_rate = args.galaxies / numpy_seconds
    rows = [
        ("naive per-galaxy loop (scipy.stats)", len(subset), naive_rate, len(subset) / naive_cpu),
        (
            "previous vectorised numpy (reference)",
            args.galaxies,
            numpy_rate,
            args.galaxies / numpy_cpu,
        ),
    ]
    for threads in args.threads:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        seconds, cpu = best_time(
            lambda: mutual_information(samples, schema, args.total_votes), args.repeats
        )
        rows.append(
            (
                f"SIMD numba kernels, {threads} thread(s)",
                args.galaxies,
                args.galaxies / seconds,
                args.galaxies / cpu,
            )
        )
    seconds, cpu = best_time(
        lambda: epig(samples, schema, rng=np.random.default_rng(0)), args.repeats
    )
    rows.append(
        (
            f"EPIG, one vote per question, {DEFAULT_TARGETS} targets (numpy float32 + BLAS)",
            args.galaxies,
            args.galaxies / seconds,
            args.galaxies / cpu,
        )
    )
    fast = mutual_information(subset, schema, args.total_votes)
    reference = numpy_reference(subset, schema, args.total_votes)
    print(
        f"\n### BALD throughput: DR5 tree (34 answers), {args.samples} samples, "
        f"N = {args.total_votes}\n"
    )
    print(
        "| implementation | galaxies | galaxies/s (wall) | galaxies per CPU-second "
        "| speed-up vs naive (wall) | speed-up vs numpy reference (wall) |"
    )
    print("|---|---|---|---|---|---|")
    for label, count, rate, cpu_rate in rows:
        print(
            f"| {label} | {count} | {rate:,.0f} | {cpu_rate:,.0f} | {rate / naive_rate:,.0f}x "
            f"| {rate / numpy_rate:.2f}x |"
        )
    print(f"\nload average after the throughput runs: {os.getloadavg()[0]:.2f}")
    print(
        f"max |naive - numba| over {len(subset)} galaxies x 10 questions: "
        f"{np.abs(naive - fast).max():.2e} nats; max |numpy reference - numba|: "
        f"{np.abs(reference - fast).max():.2e} nats"
    )


def compile_table(args):
    """Seconds from import to the first result, in fresh processes: cold, then warm, cache."""
    script = (
        "import time; started = time.perf_counter(); import numpy as np; "
        "from prioritiser.acquisition import mutual_information; "
        "from zoobot.schemas import decals_dr5_schema as schema; "
        "mutual_information(np.ones((2, 3, 34)) + np.arange(3.0)[:, None], schema); "
        "print(time.perf_counter() - started)"
    )
    print("\n### First call in a fresh process (import + compile or cache load + 2 galaxies)\n")
    print("| numba cache | seconds |")
    print("|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ["cold (compiles every kernel)", "warm (loads the cached kernels)"]:
            output = subprocess.run(
                [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
            )
            print(f"| {label} | {float(output.stdout):.2f} |")


def accuracy_table(args, rng):
    print("\n### Stick-breaking approximation vs exact enumeration (15 samples)\n")
    print(
        "| answers | N | outcomes | samples move | galaxies | median rel. error | max rel. error "
        "| mean signed rel. error | Spearman |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n_answers, n_votes, n_galaxies in [(3, 40, 200), (4, 40, 50), (5, 40, 12), (6, 20, 12)]:
        for shared, label in [(0.0, "independently"), (0.7, "together")]:
            alpha = make_samples(
                rng, n_galaxies, args.samples, n_answers, spread=0.75, shared=shared
            )
            exact = question_mutual_information(alpha, n_votes, method="exact")
            approx = question_mutual_information(alpha, n_votes, method="stick_breaking")
            relative = (approx - exact) / np.maximum(exact, 1e-3)
            ranks = np.corrcoef(exact.argsort().argsort(), approx.argsort().argsort())[0, 1]
            outcomes = math.comb(n_votes + n_answers - 1, n_answers - 1)
            print(
                f"| {n_answers} | {n_votes} | {outcomes:,} | {label} | {n_galaxies} "
                f"| {np.median(np.abs(relative)):.1%} | {np.abs(relative).max():.1%} "
                f"| {relative.mean():+.1%} | {ranks:.3f} |"
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=20_000)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--total-votes", type=int, default=40)
    parser.add_argument("--baseline-galaxies", type=int, default=100)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"CPUs: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    throughput_table(args, rng)
    if not args.skip_compile:
        compile_table(args)
    if not args.skip_accuracy:
        accuracy_table(args, rng)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

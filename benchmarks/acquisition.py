"""Benchmark BALD scoring: galaxies/s on the full GZ DECaLS DR5 tree, against a naive loop.

Scores synthetic posterior samples (Dirichlet concentrations 1 + 100 sigmoid(z), as Zoobot's head
makes them) with ``prioritiser.acquisition.mutual_information`` and with a naive per-galaxy Python
loop over scipy.stats pmfs that computes the same quantity; prints markdown tables of throughput,
the speed-up, the agreement of the two, and the stick-breaking approximation's error against exact
enumeration at N = 40.

Usage::

    python benchmarks/acquisition.py [--galaxies 20000] [--samples 15] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.stats import betabinom, dirichlet_multinomial

from prioritiser.acquisition import (
    DEFAULT_MAX_EXACT_OUTCOMES,
    mutual_information,
    question_mutual_information,
)
from zoobot.schemas import decals_dr5_schema


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


def threaded(samples, schema, total_votes, threads, max_exact_outcomes):
    """Score chunks of galaxies on a thread pool (numpy releases the GIL inside its loops)."""
    if threads == 1:
        return mutual_information(
            samples, schema, total_votes, max_exact_outcomes=max_exact_outcomes
        )
    chunks = np.array_split(samples, threads * 4)
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(
            lambda chunk: mutual_information(
                chunk, schema, total_votes, max_exact_outcomes=max_exact_outcomes
            ),
            chunks,
        )
        return np.concatenate(list(parts))


def throughput_table(args, rng):
    schema = decals_dr5_schema
    samples = make_samples(rng, args.galaxies, args.samples, len(schema.label_cols))
    subset = samples[: args.baseline_galaxies]
    rows = []
    naive_seconds, naive_cpu = best_time(
        lambda: naive_mutual_information(
            subset, schema, args.total_votes, DEFAULT_MAX_EXACT_OUTCOMES
        ),
        1,
    )
    naive_rate = len(subset) / naive_seconds
    naive = naive_mutual_information(subset, schema, args.total_votes, DEFAULT_MAX_EXACT_OUTCOMES)
    fast = mutual_information(subset, schema, args.total_votes)
    difference = float(np.abs(naive - fast).max())
    rows.append(
        (
            "naive per-galaxy loop (scipy.stats)",
            "-",
            len(subset),
            naive_rate,
            len(subset) / naive_cpu,
            1.0,
        )
    )
    for threshold in args.thresholds:
        for threads in args.threads:
            seconds, cpu = best_time(
                lambda t=threads, m=threshold: threaded(samples, schema, args.total_votes, t, m),
                args.repeats,
            )
            rate = args.galaxies / seconds
            label = f"vectorised, {threads} thread(s)"
            rows.append(
                (label, threshold, args.galaxies, rate, args.galaxies / cpu, rate / naive_rate)
            )
    print(
        f"\n### BALD throughput: DR5 tree (34 answers), {args.samples} samples, "
        f"N = {args.total_votes}\n"
    )
    print(
        "| implementation | max_exact_outcomes | galaxies | galaxies/s (wall) "
        "| galaxies per CPU-second | speed-up vs naive (wall) |"
    )
    print("|---|---|---|---|---|---|")
    for label, threshold, count, rate, cpu_rate, ratio in rows:
        print(
            f"| {label} | {threshold} | {count} | {rate:,.0f} | {cpu_rate:,.0f} | {ratio:,.0f}x |"
        )
    print(
        f"\nmax |naive - vectorised| over {len(subset)} galaxies x 10 questions: "
        f"{difference:.2e} nats"
    )


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
    parser.add_argument("--thresholds", type=int, nargs="+", default=[DEFAULT_MAX_EXACT_OUTCOMES])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print(f"CPUs: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.2f}")
    throughput_table(args, rng)
    if not args.skip_accuracy:
        accuracy_table(args, rng)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

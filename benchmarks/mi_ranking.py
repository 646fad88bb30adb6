"""How well the stick-breaking mutual information ranks galaxies, and what exactness costs.

Acquisition is a ranking, so this measures Spearman rank correlation of the stick-breaking
approximation against exact enumeration per question size (K answers, N votes), on posteriors
drawn as ``benchmarks/acquisition.py`` draws them (Zoobot-like concentrations 1 + 100 sigmoid(z)):

- realistic: samples scatter independently per answer (spread 0.75);
- adversarial: samples move together (shared 0.7), and "similar information": only the galaxies
  whose exact MI lies within +-25 % of the median, where small relative errors reorder ranks.

Then the throughput of whole-tree ``mutual_information`` (GZ DECaLS DR5, ``--galaxies``,
``--samples``) at several ``max_exact_outcomes`` thresholds, best of ``--repeats``, with the load
average (the machine may be shared: compare rows of one run only).

Usage::

    PYTHONPATH=$PWD python benchmarks/mi_ranking.py [--galaxies 5000] [--samples 15]
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
from acquisition import make_samples
from scipy.stats import spearmanr

from prioritiser.acquisition import mutual_information, question_mutual_information
from zoobot.schemas import decals_dr5_schema

CASES = [(3, 40, 400), (3, 20, 400), (4, 40, 150), (4, 20, 300), (5, 16, 200), (6, 12, 200)]
"""(answers, votes, galaxies): N near 40 x P(asked) of the tree's questions of that size."""


def ranking_table(samples: int, rng: np.random.Generator) -> list[str]:
    """Markdown rows: Spearman of stick-breaking vs exact, per case and posterior family."""
    rows = [
        "| answers | N | splits | samples move | Spearman, all | Spearman, similar MI |",
        "|---|---|---|---|---|---|",
    ]
    for n_answers, n_votes, n_galaxies in CASES:
        for shared, label in [(0.0, "independently"), (0.7, "together")]:
            alpha = make_samples(rng, n_galaxies, samples, n_answers, spread=0.75, shared=shared)
            exact = question_mutual_information(alpha, n_votes, method="exact")
            approx = question_mutual_information(alpha, n_votes, method="stick_breaking")
            median = np.median(exact)
            band = np.abs(exact - median) <= 0.25 * median
            splits = math.comb(n_votes + n_answers - 1, n_answers - 1)
            rows.append(
                f"| {n_answers} | {n_votes} | {splits:,} | {label} "
                f"| {spearmanr(exact, approx)[0]:.3f} "
                f"| {spearmanr(exact[band], approx[band])[0]:.3f} ({band.sum()}) |"
            )
    return rows


def throughput_table(args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    """Markdown rows: whole-tree galaxies/s at each exactness threshold."""
    schema = decals_dr5_schema
    samples = make_samples(rng, args.galaxies, args.samples, len(schema.label_cols))
    rows = ["| max_exact_outcomes | exact questions | galaxies/s |", "|---|---|---|"]
    for threshold, what in [
        (32, "binary; K >= 3 only at tiny N (before)"),
        (861, "all K = 3 up to N = 40 (now)"),
        (12_341, "also K = 4 at N = 40, K = 5 to N = 20, K = 6 to N = 14"),
    ]:
        mutual_information(samples[:64], schema, max_exact_outcomes=threshold)  # compile, tables
        best = math.inf
        for _ in range(args.repeats):
            started = time.perf_counter()
            mutual_information(samples, schema, max_exact_outcomes=threshold)
            best = min(best, time.perf_counter() - started)
        rows.append(f"| {threshold:,} | {what} | {args.galaxies / best:,.0f} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--galaxies", type=int, default=5000)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    print("\n".join(ranking_table(args.samples, rng)))
    print(f"\nload average before: {os.getloadavg()[0]:.1f}")
    print("\n".join(throughput_table(args, rng)))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

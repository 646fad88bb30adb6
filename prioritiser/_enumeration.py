"""Exact mutual information of one question by enumerating every vote split (private).

For K answers and N votes, each posterior sample s gives every split k (sum_a k_a = N) the
Dirichlet-multinomial log probability ``log N! / prod k_a! + sum_a log (alpha_a)^(k_a) -
log (A)^(N)`` (A = sum_a alpha_a; x^(n) = Gamma(x + n) / Gamma(x) the rising factorial), whose
logs are running sums of log(alpha + j). Samples sit side
by side in SIMD lanes ([lanes] arrays, lanes past ``n_samples`` ignored); splits run sequentially.
Every term is in log space, so any positive concentrations are safe.
"""

from __future__ import annotations

from numba import njit

from prioritiser._vector_math import dot, sum_x_log_x, total, vector_exp, vector_log

__all__ = ["enumerated_information"]

_FLAGS = {"contract"}


@njit(cache=True, error_model="numpy", fastmath=_FLAGS)
def enumerated_information(
    concentrations, n_votes, n_samples, splits, log_coefficient, rising, workspace, mixture
):  # pragma: no cover - compiled
    """Exact mutual information in nats of one question with N = n_votes >= 1.

    Args:
        concentrations: [K, lanes] Dirichlet concentrations, samples in lanes.
        n_votes: N.
        n_samples: the lanes that hold samples (the rest are ignored).
        splits: [n_outcomes, K] every split of N votes.
        log_coefficient: [n_outcomes] log N! / prod k_a! of each split.
        rising: [>= K, > N, lanes] scratch.
        workspace: [5, lanes] scratch.
        mixture: [>= n_outcomes] scratch.

    Returns:
        max(H[mean_s p_s] - mean_s H[p_s], 0) over the splits.
    """
    n_answers, lanes = concentrations.shape
    log_p, total_rising, sums = workspace[0], workspace[1], workspace[2]
    weights, running = workspace[3], workspace[4]
    for s in range(lanes):
        log_p[s] = 0.0
        total_rising[s] = 0.0
        sums[s] = 0.0
        weights[s] = 1.0 / n_samples if s < n_samples else 0.0
    for answer in range(n_answers):
        table, concentration = rising[answer], concentrations[answer]
        for s in range(lanes):
            table[0, s] = 0.0
            running[s] = 0.0
            log_p[s] += concentration[s]  # the total concentration A, for now
        for j in range(n_votes):
            row = table[j + 1]
            for s in range(lanes):
                running[s] += vector_log(concentration[s] + j)
                row[s] = running[s]
    for j in range(n_votes):
        for s in range(lanes):
            total_rising[s] += vector_log(log_p[s] + j)
    for o in range(splits.shape[0]):
        for s in range(lanes):
            log_p[s] = log_coefficient[o] - total_rising[s]
        for answer in range(n_answers):
            table = rising[answer, splits[o, answer]]
            for s in range(lanes):
                log_p[s] += table[s]
        for s in range(lanes):
            p = vector_exp(log_p[s])
            sums[s] += p * log_p[s]
            log_p[s] = p
        mixture[o] = dot(log_p, weights)
    for s in range(lanes):
        sums[s] = sums[s] if s < n_samples else 0.0
    return max(total(sums) / n_samples - sum_x_log_x(mixture, splits.shape[0]), 0.0)

"""Mutual information of one beta-binomial stick, all posterior samples at once (private).

A stick sets one answer (concentration a) against others (b) for N votes; each posterior sample
s has a beta-binomial pmf p_s(k), k = 0..N, and the stick's information is
``H[mean_s p_s] - mean_s H[p_s]``. Samples sit side by side in SIMD lanes ([lanes] arrays, lanes a
multiple of 8, lanes past ``n_samples`` ignored), and outcomes k run sequentially.

The pmf comes from the ratio of successive outcomes,
``p(k + 1) / p(k) = (N - k)(a + k) / ((k + 1)(b + N - 1 - k))``, so an unnormalised pmf v_k with
v_0 = 1 needs one division per outcome and no log-gamma. Then with T = sum_k v_k and
E = sum_k v_k log v_k, each sample's entropy is log T - E / T, in the same pass.

Where a, b >= 1 the pmf is log-concave: it rises to one peak and falls, so every v_k that could
underflow is below 1e-308 of the peak and adds under 1e-305 nats. Only v_N / v_0 above 1e308
(a or b far beyond Zoobot's range, e.g. a = 1e10 against b = 1) could overflow; that, and any
sample with a or b < 1 (a pmf that may fall and rise again), take a log-space pass instead:
log v_k by running sums of log((N - k)(a + k)) - log((k + 1)(b + N - 1 - k)), then
v_k = exp(log v_k - max_k log v_k).
"""

from __future__ import annotations

from numba import njit

from prioritiser._vector_math import (
    dot,
    log_from_parts,
    log_parts,
    sum_x_log_x,
    total,
    vector_exp,
    vector_log,
)

__all__ = ["mixture_information", "stick_information"]

_FLAGS = {"contract"}

_LARGEST = 1.7e308

_LINEAR_LIMIT = 1e300
"""Concentrations up to this keep the products in _linear_pass finite."""


@njit(cache=True, error_model="numpy", fastmath=_FLAGS)
def stick_information(
    a, b, n_votes, n_samples, values, workspace, mixture, log_integers
):  # pragma: no cover - compiled
    """Mutual information in nats of one stick with N = n_votes >= 1.

    Args:
        a: [lanes] concentration of the stick's answer per sample.
        b: [lanes] concentration of the answers it is set against.
        n_votes: N.
        n_samples: the lanes that hold samples (the rest are ignored).
        values: [> N, lanes] scratch.
        workspace: [4, lanes] scratch.
        mixture: [> N] scratch.
        log_integers: [> N] log of 0..N (entry 0 unused).

    Returns:
        max(H[mean_s p_s] - mean_s H[p_s], 0).
    """
    totals, sums, current, peak = workspace[0], workspace[1], workspace[2], workspace[3]
    smallest, largest = 1.0, 1.0
    for s in range(a.shape[0]):
        smallest = min(smallest, a[s], b[s])
        largest = max(largest, a[s], b[s])
    is_finite = (
        smallest >= 1.0
        and largest < _LINEAR_LIMIT
        and _linear_pass(a, b, n_votes, values, totals, sums, current, peak)
    )
    if not is_finite:
        _log_space_pass(a, b, n_votes, values, totals, sums, current, peak, log_integers)
    return mixture_information(values, n_votes + 1, n_samples, totals, sums, current, mixture)


@njit(cache=True, error_model="numpy", fastmath=_FLAGS)
def _linear_pass(a, b, n_votes, values, totals, sums, current, pending):  # pragma: no cover
    """v_k from v_0 = 1 by the ratio of successive outcomes; False if any total overflowed.

    Needs 1 <= a, b < 1e300. One division per outcome serves both the ratio of the next outcome
    and the log of this one: 1 / (Q d) gives 1 / Q = d / (Q d) and 1 / d = Q / (Q d), with
    Q = (k + 1)(b + N - 1 - k) the ratio's denominator and d = 2 + f the log's (see
    ``prioritiser._vector_math.log_from_parts``). The running v_k stays in ``current``: read back
    from ``values`` it would cost a store-to-load round trip per outcome, several times slower.
    """
    lanes = a.shape[0]
    for s in range(lanes):
        values[0, s] = 1.0
        current[s] = 1.0
        totals[s] = 1.0
        sums[s] = 0.0
        pending[s] = 1.0 / (b[s] + (n_votes - 1))  # 1 / Q for k = 0
    for k in range(n_votes):
        up, votes = float(n_votes - k), float(k)
        is_last = k == n_votes - 1
        # Q of the next outcome; 1 after the last, where none is needed
        next_down = 0.0 if is_last else float(k + 2)
        next_later = float(n_votes - 2 - k)
        next_offset = 1.0 if is_last else 0.0
        row = values[k + 1]
        for s in range(lanes):
            value = current[s] * ((up * (a[s] + votes)) * pending[s])
            exponent, f = log_parts(value)
            denominator = next_down * (b[s] + next_later) + next_offset
            shared = 1.0 / (denominator * (2.0 + f))
            pending[s] = (2.0 + f) * shared
            log_value = log_from_parts(exponent, f, denominator * shared)
            current[s] = value
            row[s] = value
            totals[s] += value
            sums[s] += value * log_value
    is_finite = True
    for s in range(lanes):
        is_finite &= (totals[s] < _LARGEST) & (abs(sums[s]) < _LARGEST)  # NaN fails too
    return is_finite


@njit(cache=True, error_model="numpy", fastmath=_FLAGS)
def _log_space_pass(
    a, b, n_votes, values, totals, sums, current, peak, log_integers
):  # pragma: no cover - compiled
    """As _linear_pass for any a, b > 0: v_k = exp(log v_k - max_k log v_k), never overflowing."""
    lanes = a.shape[0]
    for s in range(lanes):
        values[0, s] = 0.0
        current[s] = 0.0
        peak[s] = 0.0
    for k in range(n_votes):
        step = log_integers[n_votes - k] - log_integers[k + 1]
        votes, later = float(k), float(n_votes - 1 - k)
        row = values[k + 1]
        for s in range(lanes):
            log_value = current[s] + (step + (vector_log(a[s] + votes) - vector_log(b[s] + later)))
            current[s] = log_value
            row[s] = log_value
            peak[s] = log_value if log_value > peak[s] else peak[s]
    for s in range(lanes):
        totals[s] = 0.0
        sums[s] = 0.0
    for k in range(n_votes + 1):
        row = values[k]
        for s in range(lanes):
            shifted = row[s] - peak[s]
            value = vector_exp(shifted)
            row[s] = value
            totals[s] += value
            sums[s] += value * shifted


@njit(cache=True, error_model="numpy", fastmath=_FLAGS)
def mixture_information(
    values, n_outcomes, n_samples, totals, sums, weights, mixture
):  # pragma: no cover - compiled
    """H[mean_s p_s] - mean_s H[p_s], clipped at 0, for unnormalised pmfs.

    Args:
        values: [>= n_outcomes, lanes] v_s(k), rows are outcomes.
        n_outcomes: rows of ``values`` in use.
        n_samples: lanes in use.
        totals: [lanes] T_s = sum_k v_s(k).
        sums: [lanes] E_s = sum_k v_s(k) log v_s(k); overwritten.
        weights: [lanes] scratch.
        mixture: [>= n_outcomes] scratch.

    Returns:
        The mutual information in nats, p_s = v_s / T_s.
    """
    sample_weight = 1.0 / n_samples
    for s in range(totals.shape[0]):
        is_sample = s < n_samples
        reciprocal = 1.0 / totals[s]
        weights[s] = reciprocal * sample_weight if is_sample else 0.0
        entropy = vector_log(totals[s]) - sums[s] * reciprocal
        sums[s] = entropy if is_sample else 0.0
    for k in range(n_outcomes):
        mixture[k] = dot(values[k], weights)
    return max(-sum_x_log_x(mixture, n_outcomes) - total(sums) * sample_weight, 0.0)

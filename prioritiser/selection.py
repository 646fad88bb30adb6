"""Batch selection: which scored galaxies to upload next, and why each one was picked.

Top-k by BALD tends to pick near-duplicates (Kirsch et al. 2019), so a batch can instead be drawn
by stochastic power sampling, and a fraction of every batch is drawn uniformly at random as an
unbiased control sample. Each pick carries a selection flag, as Galaxy Zoo records on subjects.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from prioritiser.errors import SelectionError

__all__ = [
    "ACTIVE_PRIORITY",
    "RANDOM_SELECTION",
    "SELECTION_METHODS",
    "select_batch",
    "select_power",
    "select_top_k",
]

ACTIVE_PRIORITY = "active_priority"
"""Flag of a galaxy picked for its acquisition score."""

RANDOM_SELECTION = "random_selection"
"""Flag of a galaxy picked uniformly at random (the control sample)."""

SELECTION_METHODS = ("top_k", "power")


def select_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first; ties go to the lower index.

    Args:
        scores: [n] finite scores.
        k: how many to pick; all n if k > n.

    Returns:
        [min(k, n)] distinct indices into ``scores``.

    Raises:
        SelectionError: if ``scores`` is not 1-D and finite, or ``k`` is negative.
    """
    values = _validate_scores(scores)
    count = _validate_count(k, values.size)
    return np.argsort(-values, kind="stable")[:count]


def select_power(
    scores: np.ndarray, k: int, rng: np.random.Generator, beta: float = 1.0
) -> np.ndarray:
    """Sample k indices without replacement with probability proportional to score ** beta.

    Stochastic power acquisition (PowerBALD), drawn with the Gumbel-top-k trick: each galaxy's key
    is ``beta * log(score) + Gumbel noise`` and the k largest keys win, which equals sequential
    sampling without replacement. ``beta`` -> infinity approaches top-k; ``beta = 0`` is uniform.
    Galaxies with score 0 are drawn (uniformly) only once every positive score has been picked.

    Args:
        scores: [n] finite, non-negative scores.
        k: how many to pick; all n if k > n.
        rng: the random generator (seed it for a reproducible batch).
        beta: the power; finite and >= 0.

    Returns:
        [min(k, n)] distinct indices, in the order drawn.

    Raises:
        SelectionError: if scores are not 1-D, finite and non-negative, ``k`` is negative or
            ``beta`` is negative or not finite.

    References:
        Kirsch, Farquhar, Atighehchian, Jesson, Branchaud-Charron & Gal 2023, "Stochastic batch
        acquisition: a simple baseline for deep active learning", TMLR (arXiv:2106.12059).
    """
    values = _validate_scores(scores)
    count = _validate_count(k, values.size)
    if (values < 0).any():
        raise SelectionError("power sampling needs non-negative scores; shift or clip them first")
    if not math.isfinite(beta) or beta < 0:
        raise SelectionError(f"beta must be finite and >= 0, got {beta}")
    gumbel = rng.gumbel(size=values.size)
    positive = values > 0
    keys = np.full(values.size, -np.inf)
    keys[positive] = beta * np.log(values[positive]) + gumbel[positive]
    # zero scores rank after every positive one, in random order among themselves
    order = np.lexsort((-gumbel, -keys, ~positive))
    return order[:count]


def select_batch(
    scores: np.ndarray,
    k: int,
    rng: np.random.Generator,
    method: str = "top_k",
    random_fraction: float = 0.1,
    beta: float = 1.0,
) -> pd.DataFrame:
    """Pick a batch of k galaxies: mostly by score, a fraction uniformly at random.

    ``round(min(k, n) x random_fraction)`` galaxies are random picks flagged ``random_selection``;
    the rest are chosen by ``method`` (``top_k`` or ``power``) and flagged ``active_priority``.
    Random picks are drawn from the galaxies the active picks left.

    Args:
        scores: [n] finite acquisition scores (non-negative for ``power``).
        k: batch size; all n galaxies if k > n.
        rng: the random generator; the same seed gives the same batch.
        method: ``top_k`` or ``power``.
        random_fraction: share of the batch drawn uniformly at random, in [0, 1].
        beta: the power for ``method="power"``.

    Returns:
        DataFrame with one row per pick: ``index`` (position in ``scores``), ``score`` and
        ``selection`` (the flag); active picks first, in pick order.

    Raises:
        SelectionError: for an unknown method, a fraction outside [0, 1], a negative k or
            invalid scores.
    """
    values = _validate_scores(scores)
    count = _validate_count(k, values.size)
    if method not in SELECTION_METHODS:
        raise SelectionError(f"unknown method {method!r}; choose one of {list(SELECTION_METHODS)}")
    if not 0.0 <= random_fraction <= 1.0:
        raise SelectionError(f"random_fraction must be in [0, 1], got {random_fraction}")
    n_random = math.floor(count * random_fraction + 0.5)
    n_active = count - n_random
    if method == "power":
        active = select_power(values, n_active, rng, beta=beta)
    else:
        active = select_top_k(values, n_active)
    remaining = np.setdiff1d(np.arange(values.size), active)
    random = rng.choice(remaining, size=n_random, replace=False)
    index = np.concatenate([active, random]).astype(np.int64)
    flags = np.array([ACTIVE_PRIORITY] * n_active + [RANDOM_SELECTION] * n_random, dtype=object)
    return pd.DataFrame({"index": index, "score": values[index], "selection": flags})


def _validate_scores(scores: np.ndarray) -> np.ndarray:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise SelectionError(f"scores must be 1-D (one per galaxy), got shape {values.shape}")
    if not np.isfinite(values).all():
        raise SelectionError("scores hold NaN or inf; score every galaxy with a finite value")
    return values


def _validate_count(k: int, n: int) -> int:
    if k < 0:
        raise SelectionError(f"k must be >= 0, got {k}")
    return min(int(k), n)

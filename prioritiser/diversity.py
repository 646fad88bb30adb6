"""Diverse batch selection: informative galaxies that do not repeat each other.

Top-k by an acquisition score fills a batch with near-duplicates: galaxies that look alike score
alike. Diverse mini-batch active learning (Zhdanov 2019) keeps the ``prefilter x k`` best-scored
galaxies, clusters their features into k groups with k-means weighted by the scores, and picks
from each cluster the galaxy nearest its centre. The batch then spans the informative part of
feature space instead of its single most uncertain corner.

References:
    Zhdanov 2019, "Diverse mini-batch Active Learning", arXiv:1901.05954.
"""

from __future__ import annotations

import numpy as np

from prioritiser.errors import SelectionError

__all__ = ["select_diverse"]

#: Lloyd iterations at most; the clustering only has to spread the picks, not converge exactly
MAX_ITERATIONS = 30


def _weighted_kmeans(
    points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Cluster points into k groups minimising the weighted squared distance to their centre.

    Seeded by k-means++ on the weights, then Lloyd iterations until the assignment stops
    changing (at most :data:`MAX_ITERATIONS`). An emptied cluster keeps its previous centre.

    Args:
        points: [n, d] finite coordinates, n >= k.
        weights: [n] positive finite weights.
        k: clusters, >= 1.
        rng: seeds k-means++.

    Returns:
        [n] cluster index of each point, in [0, k).
    """
    n = len(points)
    weights = weights / weights.max()
    first = rng.choice(n, p=weights / weights.sum())
    centres = [points[first]]
    nearest = ((points - points[first]) ** 2).sum(axis=1)
    for _ in range(1, k):
        chance = weights * nearest
        total = chance.sum()
        chosen = rng.choice(n, p=chance / total) if total > 0 else rng.choice(n)
        centres.append(points[chosen])
        nearest = np.minimum(nearest, ((points - points[chosen]) ** 2).sum(axis=1))
    centre_array = np.array(centres)
    assignment = np.full(n, -1)
    for _ in range(MAX_ITERATIONS):
        distances = (
            (points**2).sum(axis=1)[:, None]
            - 2.0 * points @ centre_array.T
            + (centre_array**2).sum(axis=1)[None, :]
        )
        updated = distances.argmin(axis=1)
        if np.array_equal(updated, assignment):
            break
        assignment = updated
        mass = np.bincount(assignment, weights=weights, minlength=k)
        filled = mass > 0
        sums = np.zeros_like(centre_array)
        np.add.at(sums, assignment, weights[:, None] * points)
        centre_array[filled] = sums[filled] / mass[filled, None]
    return assignment


def select_diverse(
    scores: np.ndarray,
    features: np.ndarray,
    k: int,
    rng: np.random.Generator,
    prefilter: float = 10.0,
) -> np.ndarray:
    """Pick k galaxies: the best-scored, spread over feature space by weighted k-means.

    Args:
        scores: [n] finite, non-negative acquisition scores.
        features: [n, d] finite features of the same galaxies (encoder features, for example).
        k: how many to pick; all n if k > n.
        rng: seeds the clustering.
        prefilter: cluster the ``ceil(prefilter x k)`` best-scored galaxies; >= 1 (1 is top-k).

    Returns:
        [min(k, n)] distinct indices into ``scores``: one per cluster, the member nearest its
        centre (ties to the higher score), clusters that end up empty replaced by the best
        remaining scores.

    Raises:
        SelectionError: for scores or features of the wrong shape, non-finite or negative
            values, a negative k or a prefilter below 1.
    """
    values = np.asarray(scores, dtype=np.float64)
    points = np.asarray(features, dtype=np.float64)
    if values.ndim != 1 or points.ndim != 2 or len(points) != len(values):
        raise SelectionError(
            f"select_diverse needs scores [n] and features [n, d]; got {values.shape} and "
            f"{points.shape}"
        )
    if not (np.isfinite(values).all() and np.isfinite(points).all()) or (values < 0).any():
        raise SelectionError("select_diverse needs finite non-negative scores and finite features")
    if not isinstance(k, (int, np.integer)) or k < 0 or not 1.0 <= prefilter < np.inf:
        raise SelectionError(
            f"select_diverse needs an integer k >= 0 and a finite prefilter >= 1, got {k!r} and "
            f"{prefilter}"
        )
    count = min(k, len(values))
    if count == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(-values, kind="stable")
    candidates = order[: min(len(values), int(np.ceil(prefilter * count)))]
    if len(candidates) == count:
        return candidates
    top = values[candidates].max()
    weights = values[candidates] / top + 1e-12 if top > 0 else np.ones(len(candidates))
    cluster_points = points[candidates]
    scale = np.abs(cluster_points).max()
    cluster_points = cluster_points / scale if scale > 0 else cluster_points
    assignment = _weighted_kmeans(cluster_points, weights, count, rng)
    picks = []
    for cluster in range(count):
        members = np.flatnonzero(assignment == cluster)
        if members.size == 0:
            continue
        centre = np.average(cluster_points[members], axis=0, weights=weights[members])
        distance = ((cluster_points[members] - centre) ** 2).sum(axis=1)
        picks.append(candidates[members[np.lexsort((-weights[members], distance))[0]]])
    chosen = np.array(picks, dtype=np.int64)
    if len(chosen) < count:
        rest = order[~np.isin(order, chosen)]
        chosen = np.concatenate([chosen, rest[: count - len(chosen)]])
    return chosen

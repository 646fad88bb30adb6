"""The answer probabilities a crowd of volunteers would give each galaxy, from what is *visible*.

Each question's probabilities depend on the truth parameters only through what an observer can
see: features are scaled by ``visibility`` (signal-to-noise and size in PSF widths), spiral arms,
bars and rings also by how face-on the disk is. Faint or small galaxies therefore get less certain
answers, and look smooth more often, as in real Galaxy Zoo data.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from zoobot.errors import SchemaError
from zoobot.schemas import Schema, decals_dr5_schema

__all__ = ["answer_probabilities", "list_supported_questions"]

_MIN_PROBABILITY = 1e-4
_ARTIFACT_PROBABILITY = {
    "none": 0.01,
    "satellite_trail": 0.45,
    "bright_star": 0.8,
    "missing_band": 0.6,
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis. ``scores``: [n, k]."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _ordinal(latent: np.ndarray, cutpoints: list[float], scale: np.ndarray | float) -> np.ndarray:
    """Ordered-logistic probabilities of ``len(cutpoints) + 1`` categories, lowest first. [n, k]."""
    below = [_sigmoid((c - latent) / scale) for c in cutpoints]  # P(category <= k)
    cumulative = np.stack([np.zeros_like(latent), *below, np.ones_like(latent)], axis=1)
    return np.diff(cumulative, axis=1)


def _face_on(t: pd.DataFrame) -> np.ndarray:
    """How well disk-plane features (arms, bars, rings) can be seen: ~1 face-on, ~0 edge-on."""
    return _sigmoid((70.0 - t["inclination_deg"].to_numpy()) / 6.0)


def _arms_seen(t: pd.DataFrame) -> np.ndarray:
    """How visible the spiral arms are: strength x visibility x face-on x arms resolved.

    Arms are resolved when the radial gap between neighbouring arms, 2 pi tan(pitch) / m at about
    1.2 half-light radii, is large compared with the PSF: tightly wound or small spirals blur.
    """
    arms = np.maximum(t["arm_count"].to_numpy(dtype=float), 1.0)
    gap = 2 * np.pi * np.tan(np.radians(t["pitch_angle_deg"].to_numpy())) / arms
    gap_in_psf = gap * 1.2 * t["half_light_radius"].to_numpy() / t["psf_fwhm"].to_numpy()
    resolved = 1.0 - np.exp(-0.5 * gap_in_psf**2)
    return t["visibility"].to_numpy() * _face_on(t) * t["arm_strength"].to_numpy() * resolved


def _smooth_or_featured(t: pd.DataFrame) -> np.ndarray:
    v = t["visibility"].to_numpy()
    disk = 1.0 - t["bulge_to_total"].to_numpy()
    features = (
        _arms_seen(t) / np.maximum(v, 1e-3)
        + t["bar_strength"].to_numpy()
        + 2.0 * t["clumpiness"].to_numpy()
        + t["ring_strength"].to_numpy()
        + 1.2 * disk
    )
    # A thin edge-on disk is recognised as a disk even when small or faint.
    edge_on = 2.5 * _sigmoid((t["inclination_deg"].to_numpy() - 72.0) / 4.0) * disk
    featured = _sigmoid(3.0 * v * features + edge_on * np.minimum(1.0, 2.0 * v + 0.3) - 2.0)
    artifact = t["artifact"].map(_ARTIFACT_PROBABILITY).fillna(0.01).to_numpy(dtype=float)
    return np.stack([(1 - artifact) * (1 - featured), (1 - artifact) * featured, artifact], axis=1)


def _disk_edge_on(t: pd.DataFrame) -> np.ndarray:
    v = t["visibility"].to_numpy()
    bulge_excess = np.maximum(t["bulge_to_total"].to_numpy() - 0.5, 0.0)
    latent = 0.35 * (t["inclination_deg"].to_numpy() - 76.0) - 6.0 * bulge_excess
    yes = _sigmoid((0.5 + 0.5 * v) * latent)
    return np.stack([yes, 1 - yes], axis=1)


def _has_spiral_arms(t: pd.DataFrame) -> np.ndarray:
    # Volunteers are confident there are no arms only when they could have seen them.
    yes = _sigmoid(9.0 * _arms_seen(t) - 0.8 - 1.7 * t["visibility"].to_numpy())
    return np.stack([yes, 1 - yes], axis=1)


def _bar(t: pd.DataFrame) -> np.ndarray:
    v = t["visibility"].to_numpy()
    latent = 6.0 * v * _face_on(t) * t["bar_strength"].to_numpy()
    no_weak_strong = _ordinal(latent, [1.5, 3.5], 0.7 + 1.5 * (1.0 - v))
    return no_weak_strong[:, ::-1]


def _bulge_size(t: pd.DataFrame) -> np.ndarray:
    v = t["visibility"].to_numpy()
    # Unresolved galaxies look concentrated, so their bulges are called bigger.
    latent = t["bulge_to_total"].to_numpy() + 0.15 * (1.0 - v)
    none_to_dominant = _ordinal(latent, [0.04, 0.15, 0.35, 0.6], 0.06 + 0.08 * (1.0 - v))
    return none_to_dominant[:, ::-1]


def _how_rounded(t: pd.DataFrame) -> np.ndarray:
    cigar_to_round = _ordinal(t["axis_ratio"].to_numpy(), [0.4, 0.8], 0.07)
    return cigar_to_round[:, ::-1]


def _edge_on_bulge(t: pd.DataFrame) -> np.ndarray:
    v = t["visibility"].to_numpy()
    bt = t["bulge_to_total"].to_numpy()
    scores = np.stack(
        [4.0 * t["bar_strength"].to_numpy() * v - 1.0, 2.0 - 10.0 * bt, 10.0 * bt - 1.5], axis=1
    )
    return _softmax(scores)


def _spiral_winding(t: pd.DataFrame) -> np.ndarray:
    v = t["visibility"].to_numpy()
    return _ordinal(t["pitch_angle_deg"].to_numpy(), [15.0, 25.0], 2.5 + 6.0 * (1.0 - v))


def _spiral_arm_count(t: pd.DataFrame) -> np.ndarray:
    v = t["visibility"].to_numpy()
    cant_tell = _sigmoid(2.5 - 7.0 * _arms_seen(t))
    arms = t["arm_count"].to_numpy(dtype=float)
    centre = np.where(arms > 0, np.minimum(arms, 5.0), 2.0)
    spread = np.where(arms > 0, 0.5 + 1.0 * (1.0 - v), 1.5)
    counts = np.arange(1, 6, dtype=float)  # 1, 2, 3, 4, more-than-4
    counted = _softmax(-((counts[None, :] - centre[:, None]) ** 2) / (2.0 * spread[:, None] ** 2))
    return np.concatenate([counted * (1 - cant_tell)[:, None], cant_tell[:, None]], axis=1)


def _merging(t: pd.DataFrame) -> np.ndarray:
    v = t["visibility"].to_numpy()
    ratio = t["companion_flux_ratio"].to_numpy()
    tidal = t["tidal_amplitude"].to_numpy()
    minor_companion = np.where(ratio < 0.3, ratio, 0.0)
    scores = np.stack(
        [
            np.full_like(v, 2.0),
            -0.5 + 25.0 * minor_companion * v + 4.0 * tidal * v,
            -2.0 + 8.0 * tidal * v + 3.0 * ratio,
            -3.0 + 14.0 * ratio * np.sqrt(v) + 3.0 * tidal,
        ],
        axis=1,
    )
    return _softmax(scores)


def _ring(t: pd.DataFrame) -> np.ndarray:
    seen = t["visibility"].to_numpy() * _face_on(t) * t["ring_strength"].to_numpy()
    yes = _sigmoid(8.0 * seen - 2.5)
    return np.stack([yes, 1 - yes], axis=1)


# question name -> (answer slugs in order, probability function)
_QUESTIONS: dict[str, tuple[tuple[str, ...], Callable[[pd.DataFrame], np.ndarray]]] = {
    "smooth-or-featured": (("smooth", "featured-or-disk", "artifact"), _smooth_or_featured),
    "disk-edge-on": (("yes", "no"), _disk_edge_on),
    "has-spiral-arms": (("yes", "no"), _has_spiral_arms),
    "bar": (("strong", "weak", "no"), _bar),
    "bulge-size": (("dominant", "large", "moderate", "small", "none"), _bulge_size),
    "how-rounded": (("round", "in-between", "cigar-shaped"), _how_rounded),
    "edge-on-bulge": (("boxy", "none", "rounded"), _edge_on_bulge),
    "spiral-winding": (("tight", "medium", "loose"), _spiral_winding),
    "spiral-arm-count": (("1", "2", "3", "4", "more-than-4", "cant-tell"), _spiral_arm_count),
    "merging": (("none", "minor-disturbance", "major-disturbance", "merger"), _merging),
    "ring": (("yes", "no"), _ring),
}


def list_supported_questions() -> list[str]:
    """Names of the questions ``answer_probabilities`` can answer (a schema may use any subset)."""
    return list(_QUESTIONS)


def answer_probabilities(truths: pd.DataFrame, schema: Schema = decals_dr5_schema) -> np.ndarray:
    """True answer probabilities of every question, for every galaxy.

    Args:
        truths: a frame from ``draw_truths`` (needs its columns, including ``visibility``).
        schema: the decision tree; every question must be one of ``list_supported_questions()``
            with the same answers in the same order (``decals_dr5_schema`` and ``rings_schema``
            qualify).

    Returns:
        [n_galaxies, n_answers] probabilities in ``schema.label_cols`` order; each question's
        answers sum to 1 and every probability is at least 1e-4.

    Raises:
        SchemaError: if the schema has a question, or answers, this model does not know.
    """
    n_galaxies = len(truths)
    out = np.empty((n_galaxies, len(schema.label_cols)))
    for question, answers in zip(schema.questions, schema.question_slices, strict=True):
        known = _QUESTIONS.get(question.name)
        slugs = tuple(answer.text for answer in question.answers)
        if known is None or known[0] != slugs:
            raise SchemaError(
                f"the volunteer model cannot answer question {question.name!r} with answers "
                f"{slugs} (schema {schema.name!r}); supported: {list_supported_questions()}"
            )
        probabilities = known[1](truths)
        probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
        # Mix in a little of the uniform distribution so that no answer is impossible.
        k = len(slugs)
        out[:, answers] = (1.0 - k * _MIN_PROBABILITY) * probabilities + _MIN_PROBABILITY
    return out

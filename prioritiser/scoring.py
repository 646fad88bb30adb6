"""Scoring a catalogue: ensemble posteriors, mutual information per question, a ranked table."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from prioritiser.acquisition import (
    DEFAULT_MAX_EXACT_OUTCOMES,
    _checked_fractions,
    _mutual_information,
    combined_score,
    get_acquisition,
)
from prioritiser.catalogs import check_unique_ids
from prioritiser.config import check_scoring
from zoobot.finetune import FinetuneableZoobotTree
from zoobot.predict import iter_posterior
from zoobot.schemas import Schema

__all__ = ["score_catalog", "score_posterior"]

logger = logging.getLogger(__name__)

#: Galaxies scored per call of the acquisition maths: large calls amortise its per-call cost.
SCORE_CHUNK = 4096


def score_posterior(
    samples: np.ndarray,
    schema: Schema,
    acquisition: str = "bald",
    total_votes: int = 40,
    question_weighting: str = "asked",
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score, mutual information and vote fractions of a chunk of posterior samples.

    Args:
        samples: [galaxies, M x T, n_answers] Dirichlet concentrations.
        schema: the decision tree.
        acquisition: ranking function (see :func:`score_catalog`).
        total_votes: volunteers per galaxy if it were shown.
        question_weighting: ``asked`` or ``uniform`` (``bald`` only).
        rng: randomness for the ``random`` acquisition.

    Returns:
        (score [galaxies], mutual information [galaxies, n_questions] in nats,
        expected vote fractions [galaxies, n_answers], the mean over samples within each
        question, as ``zoobot.predict.vote_fractions_from_samples`` gives, by the acquisition
        kernels' one pass).
    """
    # float64 once, and the fractions and P(asked) once, for every kernel below
    samples, fractions = _checked_fractions(samples, schema)
    asked = schema.question_asked_probability(fractions)
    mi = _mutual_information(
        samples, fractions, schema, asked, total_votes, DEFAULT_MAX_EXACT_OUTCOMES
    )
    if acquisition != "bald":
        score = get_acquisition(acquisition)(
            samples, schema, rng=rng or np.random.default_rng(0), total_votes=total_votes
        )
    elif question_weighting == "uniform":
        score = combined_score(mi, schema, weights={name: 1.0 for name in schema.question_names})
    else:
        score = combined_score(mi, schema, asked_probability=asked)
    return score, mi, fractions


def score_catalog(
    catalog: pd.DataFrame,
    models: Sequence[FinetuneableZoobotTree],
    n_samples: int = 5,
    total_votes: int = 40,
    acquisition: str = "bald",
    seed: int = 0,
    question_weighting: str = "asked",
    **predict_kwargs: object,
) -> pd.DataFrame:
    """Rank every galaxy of a catalogue by how much new votes would teach the ensemble.

    Posteriors stream batch by batch (encoder once per model and image, head ``n_samples``
    times), so memory stays bounded for large catalogues.

    Args:
        catalog: ``id_str`` and ``file_loc`` per galaxy.
        models: the ensemble (one schema).
        n_samples: MC-dropout passes per model.
        total_votes: volunteers per galaxy if it were shown.
        acquisition: ranking function (``bald``, ``entropy``, ``variation_ratio``, ``random``;
            not ``epig``, see Raises).
        seed: seeds the ``random`` acquisition.
        question_weighting: how ``bald`` sums the per-question mutual information: ``asked``
            (each times P(asked)) or ``uniform`` (each once); other acquisitions ignore it.
        **predict_kwargs: see :func:`zoobot.predict.iter_posterior`.

    Returns:
        One row per galaxy, best first: ``rank``, ``id_str``, ``score``, ``mi_<question>`` (nats)
        and ``<answer>_fraction`` (predicted vote fractions).

    Raises:
        ConfigError: for an acquisition outside ``SCORING_ACQUISITIONS`` (``epig`` among them)
            or an unknown ``question_weighting``.
        PrioritiserError: if an ``id_str`` appears twice.
    """
    check_scoring(acquisition, question_weighting)
    check_unique_ids(catalog)
    schema = models[0].schema
    rng = np.random.default_rng(seed)
    ids = catalog["id_str"].astype(str).to_numpy()

    def score_chunk(indices: np.ndarray, samples: np.ndarray) -> pd.DataFrame:
        score, mi, fractions = score_posterior(
            samples, schema, acquisition, total_votes, question_weighting, rng
        )
        frame = pd.DataFrame({"id_str": ids[indices], "score": score})
        frame[[f"mi_{q}" for q in schema.question_names]] = mi
        frame[[f"{c}_fraction" for c in schema.label_cols]] = fractions
        return frame

    frames, pending = [], []
    for batch in iter_posterior(models, catalog, n_samples, **predict_kwargs):
        pending.append(batch)
        if sum(len(i) for i, _ in pending) >= SCORE_CHUNK:
            frames.append(score_chunk(*map(np.concatenate, zip(*pending))))
            pending = []
    if pending:
        frames.append(score_chunk(*map(np.concatenate, zip(*pending))))
    ranked = pd.concat(frames, ignore_index=True).sort_values(
        "score", ascending=False, kind="stable"
    )
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    logger.info(
        "scored catalogue galaxies=%d models=%d acquisition=%s question_weighting=%s",
        len(ranked),
        len(models),
        acquisition,
        question_weighting,
    )
    return ranked.reset_index(drop=True)

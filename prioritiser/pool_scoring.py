"""Scoring the pool from stored encoder features: the heads only, T MC-dropout samples x M models.

With a frozen encoder (head-only finetuning) the pool's features do not change between cycles,
so :func:`update_feature_stores` encodes only galaxies the store lacks (new subjects, or all of
them after the encoder changed) and :func:`score_pool_features` streams the store through the
ensemble's heads into a :class:`~prioritiser.prediction_files.PredictionWriter`. Memory stays flat
in the pool's size except for two numbers per galaxy (id and score) kept for the ranking.

Dropout masks are drawn per galaxy and pass (as ``nn.Dropout`` would) from a generator seeded by
``seed`` and the first subject id of each store record batch, so a galaxy's samples do not depend
on how the pool is split among workers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from prioritiser.config import check_scoring
from prioritiser.errors import PrioritiserError
from prioritiser.prediction_files import PredictionWriter, read_subjects
from prioritiser.scoring import SCORE_CHUNK, score_posterior
from zoobot.feature_store import FeatureStore, encode_to_store, encoder_key
from zoobot.finetune import FinetuneableZoobotTree
from zoobot.precision import resolve_precision

__all__ = ["ScoredPool", "score_pool_features", "selected_predictions", "update_feature_stores"]

logger = logging.getLogger(__name__)


@dataclass
class ScoredPool:
    """What a scoring pass leaves in memory: one id and one score per pool galaxy."""

    subject_ids: np.ndarray  # [n_pool] int64, in store order
    scores: np.ndarray  # [n_pool] float32


def selected_predictions(scored: ScoredPool, picks: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """The picked galaxies' predictions, read back from the file, in pick order.

    Args:
        scored: what :func:`score_pool_features` returned.
        picks: :func:`prioritiser.selection.select_batch`'s ``index`` and ``selection``.
        path: the prediction file written while scoring.

    Returns:
        ``rank`` (1 = best score in the pool, ties to store order), ``id_str``, ``subject_id``,
        ``score``, ``selection``, ``mi_<question>`` and ``<answer>_fraction``.
    """
    order = np.argsort(-scored.scores, kind="stable")
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(1, len(order) + 1)
    positions = picks["index"].to_numpy(dtype=np.int64)
    frame = read_subjects(path, scored.subject_ids[positions])
    frame.insert(0, "id_str", frame["subject_id"].astype(str))
    frame.insert(0, "rank", ranks[positions])
    frame["selection"] = picks["selection"].to_numpy()
    return frame


def _image_size(model: FinetuneableZoobotTree) -> int:
    return int(model.hparams.get("image_size", 224))


def update_feature_stores(
    models: Sequence[FinetuneableZoobotTree],
    catalog: pd.DataFrame,
    root: str | Path,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    precision: str | None = None,
) -> list[FeatureStore]:
    """One store per ensemble member (members sharing an encoder share it), filled incrementally.

    Args:
        models: the ensemble.
        catalog: ``id_str`` and ``file_loc``; put the pool first so it is encoded first.
        root: the feature stores' folder.
        batch_size: images per encoder pass.
        num_workers: decoding processes.
        device: where to encode.
        precision: autocast precision of the encoder pass (``auto`` resolved for the device;
            part of the store's key).

    Returns:
        The stores, one per model, in model order.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    precision = resolve_precision(precision, device)  # the key names what actually ran
    stores, encoded = [], 0
    for model in models:
        key = encoder_key(model.encoder, _image_size(model), precision=precision)
        store = FeatureStore(root, key)
        if all(store.key != done.key for done in stores):
            encoded += encode_to_store(
                model.encoder,
                catalog,
                store,
                _image_size(model),
                batch_size=batch_size,
                num_workers=num_workers,
                device=device,
                precision=precision,
            )
        stores.append(store)
    logger.info(
        "feature stores ready keys=%d newly_encoded=%d", len({s.key for s in stores}), encoded
    )
    return stores


def _dropout_keep(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
    """Keep-masks of dropout at rate ``p`` (1 keeps, 0 drops): uint8 or bool of ``shape``.

    For p = 0.5 (the default head) each mask element is one random bit, about 20x cheaper than
    ``nn.Dropout``'s float draws; other rates draw float32 uniforms.
    """
    if p == 0.5:
        n_bytes = int(np.prod(shape[:-1])) * ((shape[-1] + 7) // 8)
        packed = np.frombuffer(rng.bytes(n_bytes), np.uint8).reshape(*shape[:-1], -1)
        return np.unpackbits(packed, axis=-1)[..., : shape[-1]]
    return rng.random(shape, dtype=np.float32) >= p


def _head_samples(
    models: Sequence[FinetuneableZoobotTree],
    features: Sequence[np.ndarray],
    n_samples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """[galaxies, M x T, n_answers] concentrations, each galaxy and pass its own dropout mask.

    For a head without a hidden layer the masks are drawn here (inverted dropout: kept features
    scaled by 1 / (1 - p)) and the head runs in evaluation mode on the masked features, so the
    head's own layers compute each sample. Heads with a hidden layer sample through
    ``sample_head`` (torch's dropout).
    """
    parts = []
    for model, chunk in zip(models, features):
        head = model.head
        head.eval()
        n, width = chunk.shape
        if not isinstance(head.body, torch.nn.Identity):
            # a hidden layer has its own input dropout: torch's own sampling, slower but exact
            parts.append(model.sample_head(torch.from_numpy(chunk), n_samples).float().numpy())
            continue
        if n_samples == 1:
            inputs = torch.from_numpy(chunk)
        else:
            p = head.dropout.p
            keep = _dropout_keep(rng, (n, n_samples, width), p)
            scaled = (chunk * np.float32(1.0 / (1.0 - p)))[:, None, :]
            masked = np.multiply(scaled, keep, dtype=np.float32)
            inputs = torch.from_numpy(masked.reshape(-1, width))
        outputs = model.predictions(head(inputs)).float()
        parts.append(outputs.reshape(n, n_samples, -1).numpy())
    return np.concatenate(parts, axis=1)


def score_pool_features(
    models: Sequence[FinetuneableZoobotTree],
    stores: Sequence[FeatureStore],
    subject_ids: np.ndarray,
    writer: PredictionWriter,
    n_samples: int = 5,
    total_votes: int = 40,
    acquisition: str = "bald",
    seed: int = 0,
    question_weighting: str = "asked",
) -> ScoredPool:
    """Score every pool galaxy from stored features and stream its predictions into ``writer``.

    Args:
        models: the ensemble (one schema), heads used in MC-dropout mode.
        stores: one per model (see :func:`update_feature_stores`).
        subject_ids: the pool; every id must be in the stores.
        writer: receives subject id, score, mutual information and vote fractions per chunk.
        n_samples: T, MC-dropout passes per model.
        total_votes: volunteers per galaxy if it were shown.
        acquisition: see :func:`prioritiser.scoring.score_catalog`.
        seed: seeds dropout and the ``random`` acquisition.
        question_weighting: ``asked`` or ``uniform``.

    Returns:
        The pool's ids and scores in store order (rank them with a stable sort).

    Raises:
        PrioritiserError: if the stores lack pool galaxies, or models and stores disagree.
        ConfigError: for an acquisition or weighting that cannot score (see ``check_scoring``).
    """
    check_scoring(acquisition, question_weighting)
    if len(models) != len(stores) or not models:
        raise PrioritiserError(f"{len(models)} models but {len(stores)} feature stores")
    schema = models[0].schema
    pool = np.unique(np.asarray(subject_ids, dtype=np.int64))
    rng = np.random.default_rng(seed)
    for model in models:
        model.eval()
    ids_out, scores_out = [], []
    with torch.inference_mode():
        for ids, features in stores[0].iter_chunks():
            masks_rng = np.random.default_rng([seed, int(ids[0]) if len(ids) else 0])
            keep = np.isin(ids, pool, assume_unique=True)
            if not keep.any():
                continue
            ids, features = ids[keep], features[keep]
            per_model = [
                features if store.key == stores[0].key else store.load(ids) for store in stores
            ]
            parts = []
            for start in range(0, len(ids), SCORE_CHUNK):  # small steps bound the temporaries
                part = slice(start, start + SCORE_CHUNK)
                samples = _head_samples(models, [f[part] for f in per_model], n_samples, masks_rng)
                parts.append(
                    score_posterior(
                        samples, schema, acquisition, total_votes, question_weighting, rng
                    )
                )
            score, mi, fractions = (np.concatenate(column) for column in zip(*parts))
            writer.write(ids, score, mi, fractions)
            ids_out.append(ids)
            scores_out.append(np.asarray(score, dtype=np.float32))
    scored = np.concatenate(ids_out) if ids_out else np.zeros(0, np.int64)
    if len(scored) != len(pool):
        lacking = np.setdiff1d(pool, scored)[:10].tolist()
        raise PrioritiserError(
            f"feature store {stores[0].key} lacks {len(pool) - len(scored)} pool subjects, "
            f"e.g. {lacking}; run update_feature_stores first"
        )
    logger.info("scored pool from features galaxies=%d models=%d", len(scored), len(models))
    return ScoredPool(scored, np.concatenate(scores_out))

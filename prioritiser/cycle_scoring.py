"""The score stage of a retrain cycle: the pool through the feature store and heads, a batch picked.

The pool's encoder features come from the feature store (encoded only where missing), the heads
sample the posterior, the whole ranking goes to one Parquet file per model version and cycle, and
only the selected batch is written to the database. Old prediction files and feature stores no
member uses are pruned here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sqlalchemy.engine import Engine

from prioritiser.config import PrioritiserSettings
from prioritiser.pool_scoring import (
    score_pool_features,
    selected_predictions,
    update_feature_stores,
)
from prioritiser.prediction_files import (
    PredictionWriter,
    prediction_path,
    prune_predictions,
    selected_rows,
)
from prioritiser.selection import select_batch
from prioritiser.store import accepted_version_ids, save_predictions
from zoobot.feature_store import prune_feature_stores
from zoobot.finetune import FinetuneableZoobotTree
from zoobot.schemas import Schema

__all__ = ["KEEP_PREDICTION_VERSIONS", "ScoredBatch", "score_and_select"]

#: Prediction files kept for this many newest model versions, besides every deployed one.
KEEP_PREDICTION_VERSIONS = 5


@dataclass(frozen=True)
class ScoredBatch:
    """The selected push items (priority order), how many galaxies were scored, and where to."""

    items: list[dict]
    n_scored: int
    predictions_file: Path


def score_and_select(
    engine: Engine,
    settings: PrioritiserSettings,
    workdir: Path,
    schema: Schema,
    cycle_id: int,
    version_id: int,
    models: list[FinetuneableZoobotTree],
    pool: pd.DataFrame,
) -> ScoredBatch:
    """Score the pool with ``models``, pick the batch to push and persist the predictions.

    Args:
        engine: the store.
        settings: the prioritiser's settings (batch size, samples, acquisition, push size, seed).
        workdir: holds ``features/`` and ``predictions/``.
        schema: the decision tree the models predict.
        cycle_id: the running cycle; with ``settings.seed`` it seeds the MC dropout and selection.
        version_id: the model version whose predictions these are.
        models: the ensemble, already loaded.
        pool: the unlabelled pool (``subject_id`` and image columns).

    Returns:
        The push items (``subject_id``, ``priority``, ``selection``) with the scoring's counts.
    """
    stores = update_feature_stores(
        models,
        pool,
        workdir / "features",
        batch_size=settings.batch_size,
        precision=settings.precision,
    )
    path = prediction_path(workdir / "predictions", version_id, cycle_id)
    # MC dropout draws from torch's generator: seed it per cycle, so the ranking does not depend
    # on how many models were built before (building one draws its initial weights).
    with torch.random.fork_rng(), PredictionWriter(path, schema) as writer:
        torch.manual_seed(settings.seed + cycle_id)
        scored = score_pool_features(
            models,
            stores,
            pool["subject_id"].to_numpy(),
            writer,
            n_samples=settings.n_samples,
            total_votes=settings.total_votes,
            acquisition=settings.acquisition,
            seed=settings.seed + cycle_id,
            question_weighting=settings.question_weighting,
        )
    picks = select_batch(
        scored.scores,
        settings.push_size,
        np.random.default_rng(settings.seed + cycle_id),
        random_fraction=settings.random_control_fraction,
    )
    chosen = selected_predictions(scored, picks, path)
    save_predictions(engine, selected_rows(chosen, version_id, cycle_id))
    prune_predictions(path.parent, KEEP_PREDICTION_VERSIONS, accepted_version_ids(engine))
    prune_feature_stores(workdir / "features", [store.key for store in stores])
    items = [
        {"subject_id": int(subject_id), "priority": float(order + 1), "selection": flag}
        for order, (subject_id, flag) in enumerate(zip(chosen["subject_id"], chosen["selection"]))
    ]
    return ScoredBatch(items=items, n_scored=len(scored.scores), predictions_file=path)

"""One prioritisation cycle, stage by stage: sync, aggregate, retrain, gate, score, push.

Each stage is recorded on the cycle row before the next starts. A crash leaves the database
consistent: classifications and vote counts commit page by page, a model version is recorded in
one transaction after training, and a push journals every write. On restart, a cycle that died
while pushing finishes its own push (the same batch, so nothing is pushed twice); a cycle that
died earlier is marked ``interrupted`` and the next one starts afresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from panoptes_sync.aggregate import aggregate_store
from panoptes_sync.client import ResilientPanoptes
from panoptes_sync.push import PushItem, execute_push, plan_push
from panoptes_sync.store import session_scope
from panoptes_sync.subjects import sync_workflow_subjects
from panoptes_sync.sync import sync_classifications
from prioritiser.config import DaemonConfig
from prioritiser.ensemble import load_ensemble, train_ensemble
from prioritiser.evaluation import validation_loss
from prioritiser.pool import Catalogues, build_catalogues, cache_images, count_labelled
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
from prioritiser.records import Cycle, ModelVersion, Prediction, utcnow
from prioritiser.selection import select_batch
from zoobot.feature_store import prune_feature_stores
from zoobot.schemas import Schema

__all__ = ["CycleContext", "deployed_version", "resume_interrupted", "run_retrain", "run_sync"]

logger = logging.getLogger(__name__)

MIN_TRAIN, MIN_VALIDATION = 8, 4

#: Prediction files kept for this many newest model versions, besides every deployed one.
KEEP_PREDICTION_VERSIONS = 5


@dataclass
class CycleContext:
    """What every stage needs: settings, the store, a Panoptes connection and the schema."""

    config: DaemonConfig
    engine: Engine
    connect: Callable[[], ResilientPanoptes]
    schema: Schema
    trainer_kwargs: dict[str, Any]

    @property
    def workdir(self) -> Path:
        """Caches, checkpoints and reports."""
        return Path(self.config.prioritiser.workdir)


def _start(ctx: CycleContext, kind: str) -> int:
    with session_scope(ctx.engine) as session:
        cycle = Cycle(kind=kind, status="running", stage="start", counts={}, metrics={})
        session.add(cycle)
        session.flush()
        return cycle.id


def _update(ctx: CycleContext, cycle_id: int, **values: Any) -> None:
    with session_scope(ctx.engine) as session:
        cycle = session.get(Cycle, cycle_id)
        for key in ("counts", "metrics"):
            if key in values:
                values[key] = {**getattr(cycle, key), **values[key]}
        for key, value in values.items():
            setattr(cycle, key, value)


def _finish(ctx: CycleContext, cycle_id: int, status: str, error: str | None = None) -> None:
    _update(ctx, cycle_id, status=status, ended_at=utcnow(), error=error)
    with session_scope(ctx.engine) as session:
        cycle = session.get(Cycle, cycle_id)
        logger.info(
            "cycle finished id=%d kind=%s status=%s stage=%s counts=%s metrics=%s",
            cycle.id,
            cycle.kind,
            cycle.status,
            cycle.stage,
            cycle.counts,
            cycle.metrics,
        )


def _sync_and_aggregate(ctx: CycleContext, cycle_id: int) -> None:
    settings = ctx.config.sync
    client = ctx.connect()
    report = sync_classifications(
        client,
        ctx.engine,
        settings.project_id,
        page_size=settings.page_size,
        max_pages=settings.max_pages_per_sync or None,
    )
    pool = sync_workflow_subjects(client, ctx.engine, settings.workflow_id)
    aggregated = aggregate_store(
        ctx.engine, settings.workflow_id, ctx.schema, first_only=settings.first_only
    )
    _update(
        ctx,
        cycle_id,
        stage="synced",
        counts={
            "new_classifications": int(report.new_classifications),
            "aggregated_classifications": int(aggregated.classifications),
            "subjects": pool.subjects,
            "retired": pool.retired,
        },
    )


def run_sync(ctx: CycleContext) -> int:
    """A sync cycle: new classifications in, votes aggregated. Returns the cycle id."""
    cycle_id = _start(ctx, "sync")
    try:
        _sync_and_aggregate(ctx, cycle_id)
    except Exception as error:  # the daemon's boundary: record, log, carry on
        logger.exception("sync cycle failed id=%d", cycle_id)
        _finish(ctx, cycle_id, "failed", f"{type(error).__name__}: {error}")
        return cycle_id
    _finish(ctx, cycle_id, "done")
    return cycle_id


def deployed_version(engine: Engine) -> ModelVersion | None:
    """The deployed model version, if any."""
    with session_scope(engine) as session:
        version = session.execute(select(ModelVersion).where(ModelVersion.deployed)).scalar()
        if version is not None:
            session.expunge(version)
        return version


def _train_and_gate(ctx: CycleContext, cycle_id: int, catalogues: Catalogues) -> ModelVersion:
    settings = ctx.config.prioritiser
    current = deployed_version(ctx.engine)
    checkpoints = train_ensemble(
        catalogues.train,
        catalogues.validation,
        ctx.schema,
        ctx.workdir / "models" / f"cycle-{cycle_id}",
        n_models=settings.n_models,
        encoder=settings.encoder,
        warm_start=current.checkpoints if current else (),
        seed=settings.seed + cycle_id,
        model_kwargs={
            "image_size": settings.image_size,
            "n_blocks": settings.n_blocks,
            "learning_rate": settings.learning_rate,
        },
        trainer_kwargs={"max_epochs": settings.max_epochs, **ctx.trainer_kwargs},
        batch_size=settings.batch_size,
    )
    _update(ctx, cycle_id, stage="trained")
    loss = validation_loss(load_ensemble(checkpoints), catalogues.validation)
    baseline = (
        validation_loss(load_ensemble(current.checkpoints), catalogues.validation)
        if current
        else None
    )
    deploy = baseline is None or loss <= baseline * (1 + settings.gate_tolerance)
    with session_scope(ctx.engine) as session:
        if deploy:
            session.execute(update(ModelVersion).values(deployed=False))
        version = ModelVersion(
            cycle_id=cycle_id,
            checkpoints=[str(p) for p in checkpoints],
            n_labelled=catalogues.n_labelled,
            validation_loss=loss,
            baseline_loss=baseline,
            deployed=deploy,
            status="accepted" if deploy else "rejected",
            metrics={"n_train": len(catalogues.train), "n_validation": len(catalogues.validation)},
        )
        session.add(version)
    _update(
        ctx,
        cycle_id,
        stage="gated",
        metrics={"validation_loss": loss, "baseline_loss": baseline, "deployed": deploy},
    )
    logger.info("quality gate loss=%.4f baseline=%s deployed=%s", loss, baseline, deploy)
    return deployed_version(ctx.engine)


def _score_and_select(
    ctx: CycleContext, cycle_id: int, version: ModelVersion, pool: pd.DataFrame
) -> list[dict]:
    settings = ctx.config.prioritiser
    models = load_ensemble(version.checkpoints)
    stores = update_feature_stores(
        models,
        pool,
        ctx.workdir / "features",
        batch_size=settings.batch_size,
        precision=settings.precision,
    )
    path = prediction_path(ctx.workdir / "predictions", version.id, cycle_id)
    with PredictionWriter(path, ctx.schema) as writer:
        scored = score_pool_features(
            models,
            stores,
            pool["id_str"].astype("int64").to_numpy(),
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
    rows = selected_rows(chosen, version.id, cycle_id)
    with session_scope(ctx.engine) as session:
        if rows:
            session.execute(insert(Prediction), rows)
        kept = session.execute(select(ModelVersion.id).where(ModelVersion.status == "accepted"))
        kept_versions = kept.scalars().all()
    prune_predictions(path.parent, KEEP_PREDICTION_VERSIONS, kept_versions)
    prune_feature_stores(ctx.workdir / "features", [store.key for store in stores])
    items = [
        {"subject_id": int(subject_id), "priority": float(order + 1), "selection": flag}
        for order, (subject_id, flag) in enumerate(zip(chosen["subject_id"], chosen["selection"]))
    ]
    _update(
        ctx,
        cycle_id,
        stage="push",
        push_items=items,
        counts={"scored": len(scored.scores), "selected": len(items)},
        metrics={"predictions_file": str(path)},
    )
    return items


def _push(ctx: CycleContext, cycle_id: int, items: list[dict]) -> None:
    settings = ctx.config.sync
    plan = plan_push(
        [PushItem(priority=i["priority"], subject_id=i["subject_id"]) for i in items],
        settings.project_id,
        settings.workflow_id,
        mode="new_set",
        max_subjects=settings.push_batch_size,
        set_name=f"prioritised cycle {cycle_id}",
        batch_id=f"cycle-{cycle_id}",
    )
    report = execute_push(
        None if settings.dry_run else ctx.connect(),
        ctx.engine,
        plan,
        dry_run=settings.dry_run,
        max_requests=settings.max_requests_per_push or None,
    )
    _update(
        ctx,
        cycle_id,
        stage="pushed",
        counts={"pushed": report.subjects, "push_requests": report.requests},
    )


def run_retrain(ctx: CycleContext) -> int:
    """Sync, aggregate, cache images, retrain, gate, score the pool, push. Returns the cycle id."""
    settings = ctx.config.prioritiser
    cycle_id = _start(ctx, "retrain")
    try:
        _sync_and_aggregate(ctx, cycle_id)
        cache_images(ctx.engine, ctx.workdir / "images")
        catalogues = build_catalogues(
            ctx.engine,
            ctx.schema,
            settings.labelled_min_votes,
            settings.validation_fraction,
            settings.seed,
        )
        _update(
            ctx,
            cycle_id,
            stage="catalogued",
            counts={
                "train": len(catalogues.train),
                "validation": len(catalogues.validation),
                "pool": len(catalogues.pool),
                "labelled": count_labelled(ctx.engine, ctx.schema, settings.labelled_min_votes),
            },
        )
        if (
            len(catalogues.train) < MIN_TRAIN
            or len(catalogues.validation) < MIN_VALIDATION
            or catalogues.pool.empty
        ):
            _finish(ctx, cycle_id, "skipped", "too few labelled galaxies, or an empty pool")
            return cycle_id
        version = _train_and_gate(ctx, cycle_id, catalogues)
        items = _score_and_select(ctx, cycle_id, version, catalogues.pool)
        _push(ctx, cycle_id, items)
    except Exception as error:  # the daemon's boundary: record, log, carry on
        logger.exception("retrain cycle failed id=%d", cycle_id)
        _finish(ctx, cycle_id, "failed", f"{type(error).__name__}: {error}")
        return cycle_id
    _finish(ctx, cycle_id, "done")
    return cycle_id


def resume_interrupted(ctx: CycleContext) -> list[int]:
    """Finish pushes of cycles that died pushing; mark other unfinished cycles interrupted.

    A push that fails again (Zooniverse down, say) is logged and left for the next start, so the
    daemon still starts.
    """
    with session_scope(ctx.engine) as session:
        unfinished = [
            (c.id, c.stage, c.push_items)
            for c in session.execute(select(Cycle).where(Cycle.status == "running")).scalars()
        ]
    resumed = []
    for cycle_id, stage, items in unfinished:
        if stage == "pushed":
            _finish(ctx, cycle_id, "done")
        elif stage == "push" and items:
            logger.info("resuming push of interrupted cycle id=%d", cycle_id)
            try:
                _push(ctx, cycle_id, items)
            except Exception:  # the daemon's boundary: retried at the next start
                logger.exception("resuming the push of cycle id=%d failed; will retry", cycle_id)
                continue
            _finish(ctx, cycle_id, "done")
            resumed.append(cycle_id)
        else:
            _finish(ctx, cycle_id, "interrupted", f"process ended during stage {stage!r}")
    return resumed

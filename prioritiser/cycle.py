"""One prioritisation cycle, stage by stage: sync, aggregate, retrain, gate, score, push.

Each stage is recorded on the cycle row before the next starts. A crash leaves the database
consistent: classifications and vote counts commit page by page, a model version is recorded in
one transaction after training, and a push journals every write. On restart, a cycle that died
while pushing finishes its own push (the same batch, so nothing is pushed twice); a cycle that
died earlier is marked ``interrupted`` and the next one starts afresh.

A stop (`CycleContext.stop`) is honoured at safe points: between stages, between training steps
and before every push write. A cycle stopped before its push is marked ``interrupted``; one
stopped while pushing stays ``running`` at stage ``push``, for the next start to finish.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from panoptes_sync.aggregate import aggregate_store
from panoptes_sync.client import ResilientPanoptes
from panoptes_sync.push import PushItem, execute_push, plan_push
from panoptes_sync.subjects import sync_workflow_subjects
from panoptes_sync.sync import sync_classifications
from prioritiser.config import DaemonConfig
from prioritiser.cycle_scoring import score_and_select
from prioritiser.ensemble import StopWhenSet, TrainedEnsemble, load_ensemble, train_ensemble
from prioritiser.errors import CycleStopped, DaemonLockedError
from prioritiser.evaluation import validation_loss
from prioritiser.pool import Catalogues, build_catalogues, cache_images, count_labelled
from prioritiser.records import ModelVersion
from prioritiser.store import (
    cycle_stage,
    deployed_version,
    finish_cycle,
    record_version,
    start_cycle,
    unfinished_cycles,
    update_cycle,
)
from zoobot.finetune import FinetuneableZoobotTree
from zoobot.schemas import Schema

__all__ = ["NEXT_STAGE", "CycleContext", "resume_interrupted", "run_retrain", "run_sync"]

logger = logging.getLogger(__name__)

MIN_TRAIN, MIN_VALIDATION = 8, 4
#: The stage a retrain cycle runs after each recorded one (a failure is named by it).
NEXT_STAGE = {
    "start": "sync",
    "synced": "catalogue",
    "catalogued": "train",
    "trained": "gate",
    "gated": "score",
    "push": "push",
    "pushed": "finish",
}


@dataclass
class CycleContext:
    """What every stage needs: settings, the store, a Panoptes connection and the schema.

    Attributes:
        stop: set to ask the running cycle to end at its next safe point.
        guards: called at every safe point; whatever they raise ends the cycle there (the
            daemon checks that it still holds its lock).
    """

    config: DaemonConfig
    engine: Engine
    connect: Callable[[], ResilientPanoptes]
    schema: Schema
    trainer_kwargs: dict[str, Any]
    stop: threading.Event = field(default_factory=threading.Event)
    guards: list[Callable[[], None]] = field(default_factory=list)

    @property
    def workdir(self) -> Path:
        """Caches, checkpoints and reports."""
        return Path(self.config.prioritiser.workdir)

    def checkpoint(self) -> None:
        """A safe point: raise `CycleStopped` if a stop was asked, then run the guards."""
        if self.stop.is_set():
            raise CycleStopped("stop asked")
        for guard in self.guards:
            guard()


def _finish(ctx: CycleContext, cycle_id: int, status: str, error: str | None = None) -> None:
    cycle = finish_cycle(ctx.engine, cycle_id, status, error)
    logger.info(
        "cycle finished id=%d kind=%s status=%s stage=%s counts=%s metrics=%s",
        cycle["id"],
        cycle["kind"],
        cycle["status"],
        cycle["stage"],
        cycle["counts"],
        cycle["metrics"],
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
    update_cycle(
        ctx.engine,
        cycle_id,
        stage="synced",
        counts={
            "new_classifications": int(report.new_classifications),
            "aggregated_classifications": int(aggregated.classifications),
            "subjects": pool.subjects,
            "retired": pool.retired,
        },
    )


def _ended(ctx: CycleContext, cycle_id: int, kind: str, error: Exception) -> None:
    """Record how a cycle that raised ended: stopped at a safe point, lock lost, or failed."""
    if isinstance(error, DaemonLockedError):
        logger.error("cycle id=%d left as it is: %s", cycle_id, error)
        return
    if isinstance(error, CycleStopped) or ctx.stop.is_set():
        stage = cycle_stage(ctx.engine, cycle_id)
        if stage == "push":
            logger.info("cycle stopped id=%d while pushing; the next start resumes", cycle_id)
            return
        cut = "" if isinstance(error, CycleStopped) else f" ({type(error).__name__}: {error})"
        _finish(ctx, cycle_id, "interrupted", f"stopped after stage {stage!r}{cut}")
        return
    logger.exception("%s cycle failed id=%d", kind, cycle_id)
    _finish(ctx, cycle_id, "failed", f"{type(error).__name__}: {error}")


def run_sync(ctx: CycleContext) -> int:
    """A sync cycle: new classifications in, votes aggregated. Returns the cycle id."""
    cycle_id = start_cycle(ctx.engine, "sync")
    try:
        ctx.checkpoint()
        _sync_and_aggregate(ctx, cycle_id)
    except Exception as error:  # the daemon's boundary: record, log, carry on
        _ended(ctx, cycle_id, "sync", error)
        return cycle_id
    _finish(ctx, cycle_id, "done")
    return cycle_id


def _train(
    ctx: CycleContext, cycle_id: int, catalogues: Catalogues, current: ModelVersion | None
) -> TrainedEnsemble:
    settings = ctx.config.prioritiser
    callbacks = [*ctx.trainer_kwargs.get("callbacks", []), StopWhenSet(ctx.stop)]
    return train_ensemble(
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
        trainer_kwargs={
            "max_epochs": settings.max_epochs,
            **ctx.trainer_kwargs,
            "callbacks": callbacks,
        },
        batch_size=settings.batch_size,
    )


def _train_and_gate(
    ctx: CycleContext, cycle_id: int, catalogues: Catalogues
) -> tuple[ModelVersion, list[FinetuneableZoobotTree]]:
    """Train, compare with the deployed ensemble, record; returns the deployed one, loaded."""
    settings = ctx.config.prioritiser
    current = deployed_version(ctx.engine)
    trained = _train(ctx, cycle_id, catalogues, current)
    ctx.checkpoint()
    update_cycle(ctx.engine, cycle_id, stage="trained")
    loss = validation_loss(trained.models, catalogues.validation)
    current_models = load_ensemble(current.checkpoints) if current else None
    baseline = validation_loss(current_models, catalogues.validation) if current else None
    deploy = baseline is None or loss <= baseline * (1 + settings.gate_tolerance)
    record_version(
        ctx.engine,
        deployed=deploy,
        cycle_id=cycle_id,
        checkpoints=[str(p) for p in trained.checkpoints],
        n_labelled=catalogues.n_labelled,
        validation_loss=loss,
        baseline_loss=baseline,
        status="accepted" if deploy else "rejected",
        metrics={"n_train": len(catalogues.train), "n_validation": len(catalogues.validation)},
    )
    update_cycle(
        ctx.engine,
        cycle_id,
        stage="gated",
        metrics={"validation_loss": loss, "baseline_loss": baseline, "deployed": deploy},
    )
    logger.info("quality gate loss=%.4f baseline=%s deployed=%s", loss, baseline, deploy)
    return deployed_version(ctx.engine), trained.models if deploy else current_models


def _score_and_select(
    ctx: CycleContext,
    cycle_id: int,
    version: ModelVersion,
    models: list[FinetuneableZoobotTree],
    pool: pd.DataFrame,
) -> list[dict]:
    scored = score_and_select(
        ctx.engine,
        ctx.config.prioritiser,
        ctx.workdir,
        ctx.schema,
        cycle_id,
        version.id,
        models,
        pool,
    )
    ctx.checkpoint()
    update_cycle(
        ctx.engine,
        cycle_id,
        stage="push",
        push_items=scored.items,
        counts={"scored": scored.n_scored, "selected": len(scored.items)},
        metrics={"predictions_file": str(scored.predictions_file)},
    )
    return scored.items


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
        guard=ctx.checkpoint,
    )
    update_cycle(
        ctx.engine,
        cycle_id,
        stage="pushed",
        counts={"pushed": report.subjects, "push_requests": report.requests},
    )


def _catalogue(ctx: CycleContext, cycle_id: int) -> Catalogues:
    settings = ctx.config.prioritiser
    cache_images(ctx.engine, ctx.workdir / "images")
    catalogues = build_catalogues(
        ctx.engine,
        ctx.schema,
        settings.labelled_min_votes,
        settings.validation_fraction,
        settings.seed,
    )
    update_cycle(
        ctx.engine,
        cycle_id,
        stage="catalogued",
        counts={
            "train": len(catalogues.train),
            "validation": len(catalogues.validation),
            "pool": len(catalogues.pool),
            "labelled": count_labelled(ctx.engine, ctx.schema, settings.labelled_min_votes),
        },
    )
    return catalogues


def run_retrain(ctx: CycleContext) -> int:
    """Sync, aggregate, cache images, retrain, gate, score the pool, push. Returns the cycle id.

    A failure is recorded on the cycle (status ``failed``, the error) and logged; a stop ends
    the cycle at its next safe point.
    """
    cycle_id = start_cycle(ctx.engine, "retrain")
    try:
        ctx.checkpoint()
        _sync_and_aggregate(ctx, cycle_id)
        ctx.checkpoint()
        catalogues = _catalogue(ctx, cycle_id)
        if (
            len(catalogues.train) < MIN_TRAIN
            or len(catalogues.validation) < MIN_VALIDATION
            or catalogues.pool.empty
        ):
            _finish(ctx, cycle_id, "skipped", "too few labelled galaxies, or an empty pool")
            return cycle_id
        ctx.checkpoint()
        version, models = _train_and_gate(ctx, cycle_id, catalogues)
        ctx.checkpoint()
        items = _score_and_select(ctx, cycle_id, version, models, catalogues.pool)
        _push(ctx, cycle_id, items)
    except Exception as error:  # the daemon's boundary: record, log, carry on
        _ended(ctx, cycle_id, "retrain", error)
        return cycle_id
    _finish(ctx, cycle_id, "done")
    return cycle_id


def resume_interrupted(ctx: CycleContext) -> list[int]:
    """Finish pushes of cycles that died pushing; mark other unfinished cycles interrupted.

    A push that fails again (Zooniverse down, say), or is stopped, is logged and left for the
    next start, so the daemon still starts.
    """
    resumed = []
    for cycle_id, stage, items in unfinished_cycles(ctx.engine):
        if stage == "pushed":
            _finish(ctx, cycle_id, "done")
        elif stage == "push" and items:
            logger.info("resuming push of interrupted cycle id=%d", cycle_id)
            try:
                _push(ctx, cycle_id, items)
            except (CycleStopped, DaemonLockedError) as error:
                logger.info("resuming the push of cycle id=%d ended: %s", cycle_id, error)
                continue
            except Exception:  # the daemon's boundary: retried at the next start
                logger.exception("resuming the push of cycle id=%d failed; will retry", cycle_id)
                continue
            _finish(ctx, cycle_id, "done")
            resumed.append(cycle_id)
        else:
            _finish(ctx, cycle_id, "interrupted", f"process ended during stage {stage!r}")
    return resumed

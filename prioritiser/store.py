"""Every query the prioritiser makes of its tables: cycles, model versions, predictions, lock.

The tables themselves are in `prioritiser.records`; panoptes_sync's tables are reached through
panoptes_sync's own repository functions, except for the read-only join of the demo's report.
Deploying a model version is `deploy` alone: the quality gate and ``rollback`` both call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from panoptes_sync.store import Subject, create_engine_for_url, session_scope
from prioritiser.errors import PrioritiserError
from prioritiser.records import (
    Cycle,
    DaemonLock,
    ModelVersion,
    Prediction,
    create_tables,
    utcnow,
)

__all__ = [
    "LockHolder",
    "accepted_version_ids",
    "claim_lock",
    "cycle_outcome",
    "cycle_rows",
    "cycle_stage",
    "deploy",
    "deployed_version",
    "finish_cycle",
    "labelled_at_last_retrain",
    "lock_holder",
    "open_store",
    "record_version",
    "release_lock_row",
    "save_predictions",
    "selected_predictions",
    "start_cycle",
    "touch_lock",
    "unfinished_cycles",
    "update_cycle",
    "version_rows",
]


def open_store(database_url: str) -> Engine:
    """An engine on ``database_url`` with the prioritiser's tables created where missing."""
    engine = create_engine_for_url(database_url)
    create_tables(engine)
    return engine


def start_cycle(engine: Engine, kind: str) -> int:
    """Record a new running cycle of ``kind``; returns its id."""
    with session_scope(engine) as session:
        cycle = Cycle(kind=kind, status="running", stage="start", counts={}, metrics={})
        session.add(cycle)
        session.flush()
        return cycle.id


def update_cycle(engine: Engine, cycle_id: int, **values: Any) -> None:
    """Set columns of a cycle; ``counts`` and ``metrics`` are merged into what is there."""
    with session_scope(engine) as session:
        cycle = session.get(Cycle, cycle_id)
        for key in ("counts", "metrics"):
            if key in values:
                values[key] = {**getattr(cycle, key), **values[key]}
        for key, value in values.items():
            setattr(cycle, key, value)


def finish_cycle(
    engine: Engine, cycle_id: int, status: str, error: str | None = None
) -> dict[str, Any]:
    """End a cycle with ``status``; returns its kind, stage, counts and metrics."""
    update_cycle(engine, cycle_id, status=status, ended_at=utcnow(), error=error)
    with session_scope(engine) as session:
        cycle = session.get(Cycle, cycle_id)
        return {
            "id": cycle.id,
            "kind": cycle.kind,
            "status": cycle.status,
            "stage": cycle.stage,
            "counts": cycle.counts,
            "metrics": cycle.metrics,
        }


def cycle_stage(engine: Engine, cycle_id: int) -> str:
    """The last stage cycle ``cycle_id`` reached."""
    with session_scope(engine) as session:
        return session.get(Cycle, cycle_id).stage


def cycle_outcome(engine: Engine, cycle_id: int) -> tuple[str, str, str | None]:
    """(status, stage, error) of cycle ``cycle_id``."""
    with session_scope(engine) as session:
        cycle = session.get(Cycle, cycle_id)
        return cycle.status, cycle.stage, cycle.error


def unfinished_cycles(engine: Engine) -> list[tuple[int, str, list[dict] | None]]:
    """(id, stage, push items) of every cycle still marked running."""
    with session_scope(engine) as session:
        return [
            (c.id, c.stage, c.push_items)
            for c in session.execute(select(Cycle).where(Cycle.status == "running")).scalars()
        ]


def labelled_at_last_retrain(engine: Engine) -> int:
    """Labelled galaxies counted by the last finished retrain (0 before any)."""
    with session_scope(engine) as session:
        last = session.execute(
            select(Cycle)
            .where(Cycle.kind == "retrain", Cycle.status == "done")
            .order_by(Cycle.id.desc())
        ).scalar()
        return last.counts.get("labelled", 0) if last else 0


def cycle_rows(engine: Engine) -> list[Cycle]:
    """Every cycle, oldest first (detached rows)."""
    with session_scope(engine) as session:
        cycles = list(session.execute(select(Cycle).order_by(Cycle.id)).scalars())
        session.expunge_all()
        return cycles


def version_rows(engine: Engine) -> list[ModelVersion]:
    """Every model version, oldest first (detached rows)."""
    with session_scope(engine) as session:
        versions = list(session.execute(select(ModelVersion).order_by(ModelVersion.id)).scalars())
        session.expunge_all()
        return versions


def deployed_version(engine: Engine) -> ModelVersion | None:
    """The deployed model version, if any (detached)."""
    with session_scope(engine) as session:
        version = session.execute(select(ModelVersion).where(ModelVersion.deployed)).scalar()
        if version is not None:
            session.expunge(version)
        return version


def _deploy(session: Session, version_id: int) -> None:
    session.execute(update(ModelVersion).values(deployed=False))
    session.execute(update(ModelVersion).where(ModelVersion.id == version_id).values(deployed=True))


def deploy(engine: Engine, version_id: int) -> None:
    """Deploy ``version_id`` and undeploy every other version, in one transaction.

    Raises:
        PrioritiserError: if there is no such version.
    """
    with session_scope(engine) as session:
        if session.get(ModelVersion, version_id) is None:
            raise PrioritiserError(
                f"no model version {version_id}; see `python -m prioritiser status`"
            )
        _deploy(session, version_id)


def record_version(engine: Engine, deployed: bool, **fields: Any) -> int:
    """Record a trained ensemble and, if ``deployed``, deploy it in the same transaction.

    Args:
        engine: the store.
        deployed: whether the version passed the quality gate.
        **fields: the other `ModelVersion` columns.

    Returns:
        The version's id.
    """
    with session_scope(engine) as session:
        version = ModelVersion(deployed=False, **fields)
        session.add(version)
        session.flush()
        if deployed:
            _deploy(session, version.id)
        return version.id


def save_predictions(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Store a cycle's pushed predictions (`Prediction` rows as dicts): the one place that does.

    The whole ranking lives in the cycle's prediction file (`prioritiser.prediction_files`).
    """
    if rows:
        with session_scope(engine) as session:
            session.execute(insert(Prediction), rows)


def accepted_version_ids(engine: Engine) -> list[int]:
    """Ids of every model version the quality gate accepted."""
    with session_scope(engine) as session:
        kept = session.execute(select(ModelVersion.id).where(ModelVersion.status == "accepted"))
        return list(kept.scalars().all())


def selected_predictions(engine: Engine) -> list[tuple[Prediction, str | None]]:
    """The last scored cycle's pushed predictions with their cached image, in rank order."""
    with session_scope(engine) as session:
        last_cycle = session.execute(
            select(Prediction.cycle_id).order_by(Prediction.cycle_id.desc())
        ).scalar()
        rows = session.execute(
            select(Prediction, Subject.cache_path)
            .join(Subject, Subject.id == Prediction.subject_id)
            .where(Prediction.cycle_id == last_cycle, Prediction.selection.is_not(None))
            .order_by(Prediction.rank)
        ).all()
        session.expunge_all()
        return [(prediction, path) for prediction, path in rows]


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock row: host, process and last heartbeat."""

    hostname: str
    pid: int
    heartbeat_at: datetime


def _holder(row: DaemonLock | None) -> LockHolder | None:
    return None if row is None else LockHolder(row.hostname, row.pid, row.heartbeat_at)


def lock_holder(engine: Engine, name: str) -> LockHolder | None:
    """The current holder of lock ``name``, if any."""
    with session_scope(engine) as session:
        return _holder(session.get(DaemonLock, name))


def claim_lock(
    engine: Engine,
    name: str,
    hostname: str,
    pid: int,
    now: datetime,
    is_live: Callable[[LockHolder], bool],
) -> LockHolder | None:
    """Take lock ``name`` for (hostname, pid) unless another holder is live.

    Returns:
        The live other holder, or None when the lock is now this process's.

    Raises:
        sqlalchemy.exc.IntegrityError: if another process took it at the same moment.
    """
    with session_scope(engine) as session:
        row = session.execute(
            select(DaemonLock).where(DaemonLock.name == name).with_for_update()
        ).scalar()
        holder = _holder(row)
        if holder is not None and (holder.hostname, holder.pid) == (hostname, pid):
            return None
        if holder is not None:
            if is_live(holder):
                return holder
            session.delete(row)
            session.flush()
        session.add(DaemonLock(name=name, hostname=hostname, pid=pid, heartbeat_at=now))
        return None


def touch_lock(engine: Engine, name: str, pid: int, now: datetime) -> bool:
    """Refresh the heartbeat of lock ``name`` if ``pid`` holds it; returns whether it does."""
    with session_scope(engine) as session:
        row = session.get(DaemonLock, name)
        if row is None or row.pid != pid:
            return False
        row.heartbeat_at = now
        return True


def release_lock_row(engine: Engine, name: str, pid: int) -> None:
    """Delete lock ``name`` if ``pid`` holds it."""
    with session_scope(engine) as session:
        session.execute(delete(DaemonLock).where(DaemonLock.name == name, DaemonLock.pid == pid))

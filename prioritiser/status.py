"""Reading the daemon's history, and rolling the deployed ensemble back to an earlier version."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import select, update

from panoptes_sync.store import create_engine_for_url, session_scope
from prioritiser.errors import PrioritiserError
from prioritiser.records import Cycle, ModelVersion, create_tables

__all__ = ["read_status", "rollback"]


def read_status(database_url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cycles, model versions) as tables, oldest first.

    A cycle's ``predictions`` is its prediction file (see ``prioritiser.prediction_files``), empty
    for cycles that scored nothing.
    """
    engine = create_engine_for_url(database_url)
    create_tables(engine)
    with session_scope(engine) as session:
        cycles = pd.DataFrame(
            [
                {
                    "cycle": c.id,
                    "kind": c.kind,
                    "started": f"{c.started_at:%Y-%m-%d %H:%M:%S}",
                    "duration_s": round((c.ended_at - c.started_at).total_seconds(), 1)
                    if c.ended_at
                    else None,
                    "status": c.status,
                    "stage": c.stage,
                    "counts": c.counts,
                    "predictions": (c.metrics or {}).get("predictions_file", ""),
                    "error": c.error or "",
                }
                for c in session.execute(select(Cycle).order_by(Cycle.id)).scalars()
            ]
        )
        versions = pd.DataFrame(
            [
                {
                    "version": v.id,
                    "cycle": v.cycle_id,
                    "labelled": v.n_labelled,
                    "validation_loss": round(v.validation_loss, 4),
                    "baseline_loss": None if v.baseline_loss is None else round(v.baseline_loss, 4),
                    "status": v.status,
                    "deployed": v.deployed,
                }
                for v in session.execute(select(ModelVersion).order_by(ModelVersion.id)).scalars()
            ]
        )
    return cycles, versions


def rollback(database_url: str, version_id: int) -> None:
    """Deploy ``version_id`` and undeploy the rest, in one transaction.

    Raises:
        PrioritiserError: if there is no such version.
    """
    engine = create_engine_for_url(database_url)
    create_tables(engine)
    with session_scope(engine) as session:
        if session.get(ModelVersion, version_id) is None:
            raise PrioritiserError(
                f"no model version {version_id}; see `python -m prioritiser status`"
            )
        session.execute(update(ModelVersion).values(deployed=False))
        session.execute(
            update(ModelVersion).where(ModelVersion.id == version_id).values(deployed=True)
        )

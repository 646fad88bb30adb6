"""The daemon's history as tables: its cycles and its model versions, for ``status``."""

from __future__ import annotations

import pandas as pd

from prioritiser.store import cycle_rows, open_store, version_rows

__all__ = ["read_status"]


def read_status(database_url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cycles, model versions) as tables, oldest first.

    A cycle's ``predictions`` is its prediction file (see ``prioritiser.prediction_files``), empty
    for cycles that scored nothing.
    """
    engine = open_store(database_url)
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
            for c in cycle_rows(engine)
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
            for v in version_rows(engine)
        ]
    )
    return cycles, versions

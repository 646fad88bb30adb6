"""Repository functions for aggregated vote counts and the incremental aggregation state."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from panoptes_sync.store.models import AggregationState, VoteCount
from panoptes_sync.store.repository import _batches, _dialect_insert, _upsert

__all__ = [
    "add_vote_counts",
    "get_aggregation_state",
    "get_vote_counts",
    "reset_aggregation",
    "set_aggregation_state",
]


def add_vote_counts(session: Session, schema_name: str, counts: pd.DataFrame) -> int:
    """Add counts to the stored ones (``count = count + new``), creating missing rows.

    Args:
        session: an open session.
        schema_name: the schema the label columns belong to.
        counts: long table with columns ``subject_id``, ``label_col``, ``count``.

    Returns:
        The number of (subject, label column) rows written.
    """
    table = VoteCount.__table__
    rows = [
        {"schema_name": schema_name, "subject_id": int(s), "label_col": str(c), "count": int(n)}
        for s, c, n in zip(counts["subject_id"], counts["label_col"], counts["count"])
        if n
    ]
    for batch in _batches(rows):
        statement = _dialect_insert(session, table)
        statement = statement.on_conflict_do_update(
            index_elements=["schema_name", "subject_id", "label_col"],
            set_={"count": table.c["count"] + statement.excluded["count"]},
        )
        session.execute(statement, batch)
    return len(rows)


def get_vote_counts(session: Session, schema_name: str) -> pd.DataFrame:
    """Stored counts of a schema as a long table ``subject_id, label_col, count``."""
    result = session.execute(
        select(VoteCount.subject_id, VoteCount.label_col, VoteCount.count)
        .where(VoteCount.schema_name == schema_name)
        .order_by(VoteCount.subject_id, VoteCount.label_col)
    )
    frame = pd.DataFrame(result.all(), columns=["subject_id", "label_col", "count"])
    return frame.astype({"subject_id": "int64", "label_col": "object", "count": "int64"})


def get_aggregation_state(session: Session, schema_name: str) -> tuple[int, dict[str, Any]] | None:
    """(last aggregated classification id, options used), or None if never aggregated."""
    state = session.get(AggregationState, schema_name)
    if state is None:
        return None
    return int(state.last_classification_id), dict(state.options or {})


def set_aggregation_state(
    session: Session, schema_name: str, last_classification_id: int, options: dict[str, Any]
) -> None:
    """Record how far a schema has been aggregated, and with which options."""
    _upsert(
        session,
        AggregationState.__table__,
        [
            {
                "schema_name": schema_name,
                "last_classification_id": int(last_classification_id),
                "options": options,
                "updated_at": datetime.now(UTC),
            }
        ],
    )


def reset_aggregation(session: Session, schema_name: str) -> None:
    """Forget a schema's counts and state, so the next run aggregates from scratch."""
    session.execute(delete(VoteCount).where(VoteCount.schema_name == schema_name))
    session.execute(delete(AggregationState).where(AggregationState.schema_name == schema_name))

"""Repository functions of the store: idempotent inserts, upserts, sync state and the push log."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from panoptes_sync.errors import StoreError
from panoptes_sync.store.models import (
    AggregationState,
    Classification,
    Project,
    Push,
    Subject,
    SyncState,
    VoteCount,
    Workflow,
    WorkflowVersion,
)

__all__ = [
    "cached_subjects",
    "set_cache_paths",
    "uncached_subjects",
    "get_sync_state",
    "insert_classifications",
    "list_pushes",
    "record_push",
    "set_sync_state",
    "update_push",
    "upsert_projects",
    "upsert_subjects",
    "upsert_workflow_versions",
    "upsert_workflows",
]

logger = logging.getLogger(__name__)

#: Rows per INSERT statement (keeps SQLite under its bound-parameter limit).
INSERT_BATCH_ROWS = 500
_CLASSIFICATION_REQUIRED = ("id", "workflow_id", "workflow_version", "annotations", "source")


def _dialect_insert(session: Session, table: Table) -> Any:
    name = session.get_bind().dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise StoreError(f"unsupported database dialect {name!r}; use SQLite or PostgreSQL")


def _batches(rows: Sequence[dict[str, Any]], size: int = INSERT_BATCH_ROWS) -> Iterable[list]:
    for start in range(0, len(rows), size):
        yield list(rows[start : start + size])


def _parse_datetime(value: Any) -> datetime | None:
    """Datetimes from the API (ISO 8601, ``Z``) and from exports (``2019-03-29 18:38:10 UTC``)."""
    if value is None or isinstance(value, datetime):
        return value
    text = str(value).strip()
    if not text:
        return None
    if text.endswith(" UTC"):
        text = text[: -len(" UTC")] + "+00:00"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _classification_values(row: dict[str, Any]) -> dict[str, Any]:
    missing = [key for key in _CLASSIFICATION_REQUIRED if key not in row]
    if missing:
        raise StoreError(f"classification row {row.get('id')!r} lacks {missing}")
    subject_ids = [int(s) for s in row.get("subject_ids") or []]
    subject_id = row.get("subject_id")
    return {
        "id": int(row["id"]),
        "project_id": row.get("project_id"),
        "workflow_id": int(row["workflow_id"]),
        "workflow_version": str(row["workflow_version"]),
        "subject_id": subject_id if subject_id is not None else (subject_ids or [None])[0],
        "subject_ids": subject_ids,
        "user_id": row.get("user_id"),
        "user_name": row.get("user_name"),
        "created_at": _parse_datetime(row.get("created_at")),
        "annotations": row["annotations"],
        "metadata": row.get("metadata"),
        "source": row["source"],
        "annotation_format": row.get("annotation_format", "index"),
    }


def insert_classifications(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert classifications, skipping ids already stored (``ON CONFLICT (id) DO NOTHING``).

    A classification seen by both the API sync and an export backfill is stored once: the first
    writer wins. When rows older than a schema's aggregated ``last_classification_id`` arrive (a
    backfill after aggregation), that schema's vote counts are dropped so the next aggregation run
    rebuilds them rather than missing these rows.

    Args:
        session: an open session (the caller commits).
        rows: dicts keyed by column name (``metadata`` for the metadata column); ``created_at``
            may be a datetime or an API/export time string.

    Returns:
        The number of rows that were new.

    Raises:
        StoreError: if a row lacks a required column.
    """
    values = list({value["id"]: value for value in map(_classification_values, rows)}.values())
    table = Classification.__table__
    new_ids: list[int] = []
    for batch in _batches(values):
        statement = (
            _dialect_insert(session, table)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(table.c.id)
        )
        new_ids += list(session.scalars(statement, batch))
    if new_ids:
        _invalidate_aggregations_after(session, min(new_ids))
    return len(new_ids)


def _invalidate_aggregations_after(session: Session, oldest_new_id: int) -> None:
    stale = list(
        session.scalars(
            select(AggregationState.schema_name).where(
                AggregationState.last_classification_id >= oldest_new_id
            )
        )
    )
    for schema_name in stale:
        logger.warning(
            "aggregation invalidated schema=%s reason=older_classifications_inserted oldest_id=%d",
            schema_name,
            oldest_new_id,
        )
        session.execute(delete(VoteCount).where(VoteCount.schema_name == schema_name))
        session.execute(delete(AggregationState).where(AggregationState.schema_name == schema_name))


def _upsert(session: Session, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    """Insert rows or update the columns each row names; rows may name different columns."""
    keys = [column.key for column in table.primary_key.columns]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    count = 0
    for row in rows:
        unknown = set(row) - set(table.columns.keys())
        if unknown:
            raise StoreError(f"unknown columns {sorted(unknown)} for table {table.name}")
        groups.setdefault(tuple(sorted(row)), []).append(row)
        count += 1
    for columns, group in groups.items():
        for batch in _batches(group):
            statement = _dialect_insert(session, table)
            updates = {c: statement.excluded[c] for c in columns if c not in keys}
            if updates:
                statement = statement.on_conflict_do_update(index_elements=keys, set_=updates)
            else:
                statement = statement.on_conflict_do_nothing(index_elements=keys)
            session.execute(statement, batch)
    return count


def upsert_projects(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert or update projects (columns not named in a row are left as they are).

    Returns:
        The number of rows written.
    """
    return _upsert(session, Project.__table__, rows)


def upsert_workflows(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert or update workflows; their project must be stored first (foreign key).

    Returns:
        The number of rows written.
    """
    return _upsert(session, Workflow.__table__, rows)


def upsert_workflow_versions(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert or update workflow versions keyed by (workflow_id, major, minor).

    Returns:
        The number of rows written.
    """
    return _upsert(session, WorkflowVersion.__table__, rows)


def upsert_subjects(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert or update subjects (``retired`` defaults to False on insert).

    Returns:
        The number of rows written.
    """
    return _upsert(session, Subject.__table__, rows)


def get_sync_state(session: Session, key: str) -> int | None:
    """The last id synced for ``key`` (e.g. ``classifications:project:5733``), or None."""
    return session.scalar(select(SyncState.last_id).where(SyncState.key == key))


def set_sync_state(session: Session, key: str, last_id: int) -> None:
    """Record the last id synced for ``key``."""
    _upsert(
        session,
        SyncState.__table__,
        [{"key": key, "last_id": int(last_id), "updated_at": datetime.now(UTC)}],
    )


def record_push(session: Session, **fields: Any) -> int:
    """Add one entry to the push log.

    Args:
        session: an open session.
        **fields: columns of ``pushes``: batch_id and action are required; status defaults to
            ``planned``, dry_run to False, request_count to 0.

    Returns:
        The new entry's id.

    Raises:
        StoreError: if a field is not a column of ``pushes``.
    """
    unknown = set(fields) - set(Push.__table__.columns.keys())
    if unknown:
        raise StoreError(f"unknown push fields {sorted(unknown)}")
    push = Push(**fields)
    session.add(push)
    session.flush()
    return push.id


def update_push(session: Session, push_id: int, **fields: Any) -> None:
    """Update fields (e.g. status, request_count, detail) of one push log entry.

    Raises:
        StoreError: if there is no such entry or a field is not a column.
    """
    push = session.get(Push, push_id)
    if push is None:
        raise StoreError(f"no push with id {push_id}")
    for name, value in fields.items():
        if name not in Push.__table__.columns.keys() or name == "id":
            raise StoreError(f"cannot update push field {name!r}")
        setattr(push, name, value)
    session.flush()


def list_pushes(session: Session, batch_id: str | None = None) -> list[dict[str, Any]]:
    """Push log entries in id order, optionally of one batch, as dicts keyed by column name."""
    query = select(Push).order_by(Push.id)
    if batch_id is not None:
        query = query.where(Push.batch_id == batch_id)
    columns = Push.__table__.columns.keys()
    return [{name: getattr(push, name) for name in columns} for push in session.scalars(query)]


def uncached_subjects(session: Session) -> list[tuple[int, list[dict[str, str]] | None]]:
    """(id, locations) of every subject with no local image recorded yet."""
    rows = session.execute(
        select(Subject.id, Subject.locations).where(Subject.cache_path.is_(None))
    ).all()
    return [(int(subject_id), locations) for subject_id, locations in rows]


def set_cache_paths(session: Session, paths: dict[int, str]) -> None:
    """Record where each subject's image is cached locally (subject id -> path)."""
    if paths:
        rows = [{"id": subject_id, "cache_path": path} for subject_id, path in paths.items()]
        session.execute(update(Subject), rows)  # one bulk UPDATE by primary key


def cached_subjects(session: Session) -> list[tuple[int, str, bool]]:
    """(id, cache path, retired) of every subject whose image is cached locally."""
    rows = session.execute(
        select(Subject.id, Subject.cache_path, Subject.retired).where(
            Subject.cache_path.is_not(None)
        )
    ).all()
    return [(int(subject_id), path, retired) for subject_id, path, retired in rows]

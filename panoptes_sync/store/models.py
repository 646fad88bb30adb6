"""SQLAlchemy models of the panoptes_sync store; table names and keys are a contract."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "AggregationState",
    "Base",
    "Classification",
    "Project",
    "Push",
    "Subject",
    "SyncState",
    "UTCDateTime",
    "VoteCount",
    "Workflow",
    "WorkflowVersion",
    "utcnow",
]

#: Values allowed in ``pushes.action``.
PUSH_ACTIONS = (
    "create_subject",
    "link_subjects",
    "set_priority",
    "create_subject_set",
    "link_subject_set",
    "retire",
)
#: Values allowed in ``pushes.status``.
PUSH_STATUSES = ("planned", "done", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite keeps no zone, so we restore it)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Store aware datetimes in UTC; naive ones are taken to be UTC already."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC datetimes."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the default of every timestamp column)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base; JSON columns hold dicts and lists verbatim."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime}


class Project(Base):
    """A Panoptes project."""

    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    slug: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))


class Workflow(Base):
    """A Panoptes workflow; ``version`` is its current ``"major.minor"``."""

    __tablename__ = "workflows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id"))
    display_name: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(32))
    prioritized: Mapped[bool] = mapped_column(Boolean, default=False)


class WorkflowVersion(Base):
    """One ``major.minor`` version of a workflow: its tasks (answer order) and strings (labels)."""

    __tablename__ = "workflow_versions"
    workflow_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    major: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    minor: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    first_task: Mapped[str | None] = mapped_column(String(64))
    tasks: Mapped[dict[str, Any]] = mapped_column(JSON)
    strings: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Subject(Base):
    """A Panoptes subject (galaxy) with its metadata and image locations."""

    __tablename__ = "subjects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    project_id: Mapped[int | None] = mapped_column(Integer)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, key="metadata")
    locations: Mapped[list[Any] | None] = mapped_column(JSON)
    image_url: Mapped[str | None] = mapped_column(String(2048))
    cache_path: Mapped[str | None] = mapped_column(String(2048))
    retired: Mapped[bool] = mapped_column(Boolean, default=False)


class Classification(Base):
    """One Panoptes classification, keyed by its Panoptes id, stored once whatever its source."""

    __tablename__ = "classifications"
    __table_args__ = (
        CheckConstraint(_in("source", ("api", "export")), name="ck_classifications_source"),
        CheckConstraint(
            _in("annotation_format", ("index", "label")), name="ck_classifications_format"
        ),
        Index("ix_classifications_subject_id", "subject_id"),
        Index("ix_classifications_workflow_id", "workflow_id"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project_id: Mapped[int | None] = mapped_column(Integer)
    workflow_id: Mapped[int] = mapped_column(Integer)
    workflow_version: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    subject_ids: Mapped[list[Any]] = mapped_column(JSON)
    user_id: Mapped[int | None] = mapped_column(Integer)
    user_name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    annotations: Mapped[list[Any]] = mapped_column(JSON)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, key="metadata")
    source: Mapped[str] = mapped_column(String(16))
    annotation_format: Mapped[str] = mapped_column(String(16))


class SyncState(Base):
    """The last id synced per stream, e.g. key ``classifications:project:5733``."""

    __tablename__ = "sync_state"
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class VoteCount(Base):
    """Votes for one answer (label column) of one subject, under one schema."""

    __tablename__ = "vote_counts"
    schema_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    label_col: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AggregationState(Base):
    """How far a schema's vote counts have been aggregated, and with which options."""

    __tablename__ = "aggregation_state"
    schema_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_classification_id: Mapped[int] = mapped_column(BigInteger)
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)


class Push(Base):
    """One planned or performed write to Zooniverse (the push audit log)."""

    __tablename__ = "pushes"
    __table_args__ = (
        CheckConstraint(_in("action", PUSH_ACTIONS), name="ck_pushes_action"),
        CheckConstraint(_in("status", PUSH_STATUSES), name="ck_pushes_status"),
        Index("ix_pushes_batch_id", "batch_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    subject_set_id: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="planned")
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    request_count: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

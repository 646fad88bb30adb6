"""The prioritiser's tables beside the sync store: cycles, model versions, predictions, lock.

They live in the same database (SQLite or PostgreSQL) and are created idempotently with
``create_all``; panoptes_sync's tables are migrated by its Alembic scripts first.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from panoptes_sync.store import database_errors, utcnow

__all__ = ["Cycle", "DaemonLock", "ModelVersion", "Prediction", "create_tables", "utcnow"]


class Base(DeclarativeBase):
    """Declarative base of the prioritiser's tables."""


class Cycle(Base):
    """One run of a job (``sync`` or ``retrain``), with what it did."""

    __tablename__ = "prioritiser_cycles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="running")
    stage: Mapped[str] = mapped_column(String(32), default="start")
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    push_items: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class ModelVersion(Base):
    """A trained ensemble: its checkpoints, validation metrics and whether it is deployed."""

    __tablename__ = "prioritiser_model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    cycle_id: Mapped[int | None] = mapped_column(ForeignKey("prioritiser_cycles.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    checkpoints: Mapped[list[str]] = mapped_column(JSON)
    n_labelled: Mapped[int] = mapped_column(Integer)
    validation_loss: Mapped[float] = mapped_column(Float)
    baseline_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    deployed: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Prediction(Base):
    """A model version's prediction and score for one subject, and whether it was pushed."""

    __tablename__ = "prioritiser_predictions"

    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("prioritiser_model_versions.id"), primary_key=True
    )
    subject_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cycle_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)
    mutual_information: Mapped[dict[str, float]] = mapped_column(JSON)
    vote_fractions: Mapped[dict[str, float]] = mapped_column(JSON)
    selection: Mapped[str | None] = mapped_column(String(24), nullable=True)


class DaemonLock(Base):
    """At most one row: the daemon instance that owns this database."""

    __tablename__ = "prioritiser_daemon_lock"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def create_tables(engine: Engine) -> None:
    """Create the prioritiser's tables where missing.

    Raises:
        StoreError: in one line naming the URL, if the database cannot be used.
    """
    with database_errors(engine):
        Base.metadata.create_all(engine)

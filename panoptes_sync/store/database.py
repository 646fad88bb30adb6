"""Engines, migrations and transactions of the store: SQLite (embedded) or PostgreSQL, by URL."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.orm import Session

from panoptes_sync.errors import StoreError
from zoobot import strict_json

__all__ = [
    "create_engine_for_url",
    "database_errors",
    "redact_url",
    "session_scope",
    "upgrade_database",
]

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Milliseconds a SQLite writer waits for a lock held by another process (e.g. the daemon).
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _compact_json(value: Any) -> str:
    # Compact separators keep stored annotations in the exact shape Panoptes exports use,
    # which lets aggregation take its vectorised fast path. Strict JSON (PostgreSQL refuses NaN):
    # the rare value with a non-finite number is written again with nulls in its place.
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        return strict_json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def redact_url(url: str) -> str:
    """The URL with any password hidden, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


@contextmanager
def database_errors(url: str | Engine, doing: str = "use") -> Iterator[None]:
    """Turn a database failure inside the block into a one-line `StoreError`.

    The message names the URL with its password hidden, and gives the driver's first line only
    (psycopg's hints and SQLAlchemy's background links are dropped).

    Args:
        url: the store's URL or engine.
        doing: what was being done, for the message ("migrate", "use").

    Raises:
        StoreError: from any `SQLAlchemyError` raised in the block.
    """
    try:
        yield
    except SQLAlchemyError as error:
        shown = redact_url(url if isinstance(url, str) else str(url.url))
        cause = getattr(error, "orig", None) or error
        first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        password = _password(url)
        if password:
            first_line = first_line.replace(password, "***")
        raise StoreError(
            f"could not {doing} database {shown}: {type(cause).__name__}: {first_line}; check the "
            "URL and that the database server is running"
        ) from error


def _password(url: str | Engine) -> str | None:
    try:
        return (make_url(url) if isinstance(url, str) else url.url).password
    except ArgumentError:
        return None


def create_engine_for_url(url: str) -> Engine:
    """An engine for a store URL, with the store's connection settings.

    SQLite gets WAL journaling, foreign keys and a busy timeout; ``postgresql://`` and
    ``postgres://`` URLs are routed to psycopg 3.

    Args:
        url: ``sqlite:///FILE``, ``sqlite://`` (in memory) or ``postgresql+psycopg://...``.

    Returns:
        The engine.

    Raises:
        StoreError: if the URL cannot be parsed or names an unsupported backend.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(f"invalid database URL {redact_url(url)!r}: {error}") from error
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise StoreError(
            f"unsupported database {redact_url(url)!r}; use sqlite:///FILE or postgresql+psycopg://"
        )
    engine = sa_create_engine(parsed, json_serializer=_compact_json, future=True)
    if backend == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser syntax
    return config


def upgrade_database(url_or_engine: str | Engine) -> Engine:
    """Create or migrate the store's tables to the newest revision (``alembic upgrade head``).

    Idempotent: running it on an up-to-date database changes nothing.

    Args:
        url_or_engine: a database URL or an engine from `create_engine_for_url`.

    Returns:
        The engine used (created from the URL when a URL was given).

    Raises:
        StoreError: if the database cannot be reached or migrated.
    """
    engine = (
        create_engine_for_url(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    )
    config = _alembic_config(engine)
    with database_errors(engine, "migrate"), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    logger.debug("database upgraded url=%s", redact_url(str(engine.url)))
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits when the block succeeds and rolls back when it raises.

    Args:
        engine: the store's engine.

    Yields:
        The session.
    """
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

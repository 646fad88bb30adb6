"""The emulator's SQLite state: schema, one serialised connection, clock and id counters."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from panoptes_sync.errors import EmulatorStartupError

__all__ = ["EmulatorClock", "EmulatorDatabase", "dumps", "loads"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY, login TEXT UNIQUE NOT NULL, password_hash TEXT, display_name TEXT,
    admin INTEGER NOT NULL DEFAULT 0, uploaded_subjects_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, lock_version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, csrf_token TEXT NOT NULL, user_id INTEGER, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    access_token TEXT PRIMARY KEY, refresh_token TEXT UNIQUE, user_id INTEGER,
    grant_type TEXT NOT NULL, expires_at REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
    id INTEGER PRIMARY KEY, slug TEXT UNIQUE NOT NULL, display_name TEXT NOT NULL,
    owner_id INTEGER NOT NULL, live INTEGER NOT NULL, private INTEGER NOT NULL,
    configuration TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    lock_version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS workflows (
    id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, display_name TEXT NOT NULL,
    tasks TEXT NOT NULL, first_task TEXT NOT NULL, major INTEGER NOT NULL, minor INTEGER NOT NULL,
    prioritized INTEGER NOT NULL, grouped INTEGER NOT NULL, pairwise INTEGER NOT NULL,
    active INTEGER NOT NULL, retirement TEXT NOT NULL, configuration TEXT NOT NULL,
    mobile_friendly INTEGER NOT NULL, primary_language TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, lock_version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS workflow_versions (
    id INTEGER PRIMARY KEY, workflow_id INTEGER NOT NULL, major INTEGER NOT NULL,
    minor INTEGER NOT NULL, first_task TEXT NOT NULL, tasks TEXT NOT NULL, strings TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (workflow_id, major, minor));
CREATE TABLE IF NOT EXISTS workflow_subject_sets (
    workflow_id INTEGER NOT NULL, subject_set_id INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, subject_set_id));
CREATE TABLE IF NOT EXISTS subject_sets (
    id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, display_name TEXT NOT NULL,
    metadata TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    lock_version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS subjects (
    id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, metadata TEXT NOT NULL,
    locations TEXT NOT NULL, uploader_id INTEGER, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, lock_version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS set_member_subjects (
    id INTEGER PRIMARY KEY, subject_set_id INTEGER NOT NULL, subject_id INTEGER NOT NULL,
    priority REAL, random REAL NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    lock_version INTEGER NOT NULL DEFAULT 0, UNIQUE (subject_set_id, subject_id));
CREATE TABLE IF NOT EXISTS subject_workflow_statuses (
    id INTEGER PRIMARY KEY, subject_id INTEGER NOT NULL, workflow_id INTEGER NOT NULL,
    classifications_count INTEGER NOT NULL DEFAULT 0, retired_at TEXT, retirement_reason TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE (subject_id, workflow_id));
CREATE TABLE IF NOT EXISTS classifications (
    id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, workflow_id INTEGER NOT NULL,
    user_id INTEGER, subject_ids TEXT NOT NULL, annotations TEXT NOT NULL, metadata TEXT NOT NULL,
    workflow_version TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS classifications_by_project ON classifications (project_id, id);
CREATE TABLE IF NOT EXISTS seen_subjects (
    user_id INTEGER NOT NULL, workflow_id INTEGER NOT NULL, subject_id INTEGER NOT NULL,
    PRIMARY KEY (user_id, workflow_id, subject_id));
CREATE TABLE IF NOT EXISTS blobs (
    path TEXT PRIMARY KEY, content_type TEXT NOT NULL, data BLOB NOT NULL, created_at REAL);
CREATE TABLE IF NOT EXISTS media (
    id INTEGER PRIMARY KEY, linked_type TEXT NOT NULL, linked_id INTEGER NOT NULL,
    media_type TEXT NOT NULL, content_type TEXT NOT NULL, blob_path TEXT NOT NULL,
    state TEXT NOT NULL, metadata TEXT NOT NULL, requested_at REAL NOT NULL, ready_at REAL,
    cancelled INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    lock_version INTEGER NOT NULL DEFAULT 0, UNIQUE (linked_type, linked_id, media_type));
"""

#: First id handed out per resource kind (realistic magnitudes; classification ids are global).
ID_BASES = {
    "users": 1_885_197,
    "subjects": 28_480_417,
    "subject_sets": 76_001,
    "set_member_subjects": 130_000_001,
    "subject_workflow_statuses": 50_000_001,
    "workflow_versions": 300_001,
    "media": 38_663,
    "classifications": 156_463_584,
}


def dumps(value: Any) -> str:
    """Compact JSON used for every JSON column."""
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def loads(text: str | None) -> Any:
    """Inverse of ``dumps`` (None stays None)."""
    return None if text is None else json.loads(text)


class EmulatorClock:
    """Wall clock plus an offset that tests advance to expire tokens and URLs without sleeping."""

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._offset = 0.0

    def advance(self, seconds: float) -> None:
        """Move the emulator's time forward by ``seconds``."""
        self._offset += seconds

    def now(self) -> float:
        """Seconds since the epoch, as the emulator sees it."""
        return self._now() + self._offset

    def iso(self, at: float | None = None) -> str:
        """ISO-8601 UTC with milliseconds and ``Z``, as Panoptes serialises times."""
        moment = datetime.fromtimestamp(self.now() if at is None else at, tz=UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class EmulatorDatabase:
    """One SQLite connection shared by the server threads, serialised by a re-entrant lock."""

    def __init__(self, path: Path, clock: EmulatorClock) -> None:
        self.path = Path(path)
        self.clock = clock
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=30
            )
        except (OSError, sqlite3.Error) as error:
            raise EmulatorStartupError(
                f"cannot open emulator state {self.path}: {error}; pass a writable --state path"
            ) from error
        self._connection.row_factory = sqlite3.Row
        self._connection.execute("PRAGMA journal_mode=WAL")
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._connection.execute("PRAGMA foreign_keys=ON")
        self._connection.executescript(_SCHEMA)
        columns = {row["name"] for row in self._connection.execute("PRAGMA table_info(users)")}
        if "password_hash" not in columns:
            raise EmulatorStartupError(
                f"emulator state {self.path} stores plain passwords (an older emulator); delete it "
                "or pass a new --state path"
            )

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run one transaction (nested use joins the outer one)."""
        with self._lock:
            if self._connection.in_transaction:
                yield self._connection
                return
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query and return all rows."""
        with self._lock:
            return self._connection.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Row | None:
        """Run a read query and return the first row, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def count(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> int:
        """Run a ``SELECT COUNT(*)`` query and return the number."""
        row = self.query_one(sql, params)
        return 0 if row is None else int(row[0])

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Cursor:
        """Run one write statement inside a transaction."""
        with self.transaction() as connection:
            return connection.execute(sql, params)

    def get_meta(self, key: str) -> str | None:
        """A value of the ``meta`` key/value table."""
        row = self.query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Set a value of the ``meta`` key/value table."""
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def next_id(self, kind: str, step: int = 1) -> int:
        """Hand out the next id of ``kind`` (persisted, so ids survive restarts)."""
        with self.transaction():
            current = self.get_meta(f"next_id:{kind}")
            value = int(current) if current is not None else ID_BASES.get(kind, 1)
            self.set_meta(f"next_id:{kind}", str(value + step))
        return value

"""The per-app emulator context (settings, state, clock) and request-time helpers for routes."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import current_app, request

from panoptes_sync.emulator.database import EmulatorClock, EmulatorDatabase
from panoptes_sync.emulator.http import ApiError
from panoptes_sync.emulator.settings import EmulatorSettings

if TYPE_CHECKING:
    from panoptes_sync.emulator.answers import AnswerModel
    from panoptes_sync.emulator.faults import FaultInjector

__all__ = ["EmulatorContext", "get_context", "get_row", "json_body", "public_url"]

EXTENSION_KEY = "panoptes_emulator"


@dataclass
class EmulatorContext:
    """What every route needs: settings, state, clock, fault injector and the answer model."""

    settings: EmulatorSettings
    database: EmulatorDatabase
    clock: EmulatorClock
    faults: FaultInjector
    answer_model: AnswerModel | None = None
    counters: dict[str, int] = field(default_factory=dict)
    _counter_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, name: str) -> None:
        """Increment an observability counter (e.g. token grants by type)."""
        with self._counter_lock:
            self.counters[name] = self.counters.get(name, 0) + 1


def get_context() -> EmulatorContext:
    """The context of the app serving the current request."""
    context: EmulatorContext = current_app.extensions[EXTENSION_KEY]
    return context


def get_row(table: str, resource_id: Any, label: str | None = None) -> sqlite3.Row:
    """Fetch one row by id or raise the 404 Panoptes gives.

    Raises:
        ApiError: 404 ``Could not find <label> with id='<id>'``.
    """
    label = label or table.rstrip("s")
    try:
        key = int(resource_id)
    except (TypeError, ValueError):
        key = -1
    row = get_context().database.query_one(f"SELECT * FROM {table} WHERE id = ?", (key,))
    if row is None:
        raise ApiError(404, f"Could not find {label} with id='{resource_id}'")
    return row


def json_body() -> dict[str, Any]:
    """The request's JSON object body.

    Raises:
        ApiError: 400 if the body is not a JSON object.
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def public_url(path: str) -> str:
    """An absolute URL on this emulator (``path`` starts with ``/``)."""
    return request.host_url.rstrip("/") + path

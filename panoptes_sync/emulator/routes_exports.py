"""Routes for classification exports: request (``creating``), describe (``ready``), download."""

from __future__ import annotations

import logging
import sqlite3
import uuid

from flask import Blueprint, Response, request

from panoptes_sync.emulator.auth import current_user, is_project_owner, require_login
from panoptes_sync.emulator.blobs import signed_url, store_blob
from panoptes_sync.emulator.context import get_context, get_row, public_url
from panoptes_sync.emulator.database import dumps, loads
from panoptes_sync.emulator.export_csv import classification_export_csv
from panoptes_sync.emulator.http import ApiError, index_response, resource_etag
from panoptes_sync.emulator.resources import serialize_media

__all__ = ["blueprint"]

logger = logging.getLogger(__name__)

blueprint = Blueprint("exports", __name__, url_prefix="/api")

#: Resource type in the URL -> (singular label, media type prefix).
_LINKED = {
    "projects": ("project", "project"),
    "workflows": ("workflow", "workflow"),
    "subject_sets": ("subject_set", "subject_set"),
}


def _linked(linked_type: str, linked_id: int) -> tuple[sqlite3.Row, int]:
    """The exported resource and its project, or the 404 Panoptes gives when not permitted."""
    if linked_type not in _LINKED:
        raise ApiError(404, f"No route matches /{linked_type}/{linked_id}/classifications_export")
    label = _LINKED[linked_type][0]
    row = get_row(linked_type, linked_id, label)
    project_id = row["id"] if linked_type == "projects" else row["project_id"]
    if not is_project_owner(current_user(), project_id):
        raise ApiError(404, f"Could not find {label} with id='{linked_id}'")
    return row, project_id


def _media_response(row: sqlite3.Row, status: int = 200) -> Response:
    src = signed_url(row["blob_path"], "r")
    headers = (
        {"Location": public_url(f"/api/{row['linked_type']}/{row['linked_id']}")}
        if status == 201
        else None
    )
    return index_response(
        "media",
        [serialize_media(row, src)],
        1,
        20,
        1,
        path="/media",
        status=status,
        etag=resource_etag("media", row),
        headers=headers,
        params={},
    )


@blueprint.post("/<linked_type>/<int:linked_id>/classifications_export")
def request_export(linked_type: str, linked_id: int) -> Response:
    """Start an export: 201, ``state: creating``; throttled requests stay ``creating``."""
    user = require_login()
    _linked(linked_type, linked_id)
    context = get_context()
    database, now = context.database, context.clock.now()
    media_type = f"{_LINKED[linked_type][1]}_classifications_export"
    existing = database.query_one(
        "SELECT * FROM media WHERE linked_type = ? AND linked_id = ? AND media_type = ?",
        (linked_type, linked_id, media_type),
    )
    window = context.settings.export_rate_limit_s
    throttled = (
        existing is not None
        and not existing["cancelled"]
        and window > 0
        and now - existing["requested_at"] < window
        and not (user["admin"] and "admin" in request.args)
    )
    metadata = {"state": "creating", "recipients": [user["id"]]}
    blob_path = f"/exports/{media_type}/{uuid.uuid4()}.csv"
    iso = context.clock.iso(now)
    if existing is None:
        database.execute(
            "INSERT INTO media (id, linked_type, linked_id, media_type, content_type, blob_path, "
            "state, metadata, requested_at, ready_at, cancelled, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'text/csv', ?, 'creating', ?, ?, ?, 0, ?, ?)",
            (
                database.next_id("media"),
                linked_type,
                linked_id,
                media_type,
                blob_path,
                dumps(metadata),
                now,
                now + context.settings.export_delay_s,
                iso,
                iso,
            ),
        )
    else:
        database.execute(
            "UPDATE media SET state = 'creating', metadata = ?, blob_path = ?, "
            "requested_at = CASE WHEN ? THEN requested_at ELSE ? END, ready_at = ?, "
            "cancelled = ?, updated_at = ?, lock_version = lock_version + 1 WHERE id = ?",
            (
                dumps(metadata),
                blob_path,
                int(throttled),
                now,
                now + context.settings.export_delay_s,
                int(throttled),
                iso,
                existing["id"],
            ),
        )
    if throttled:
        logger.warning(
            "export throttled (silently cancelled, as Panoptes does) linked=%s/%d window_s=%s",
            linked_type,
            linked_id,
            window,
        )
    row = database.query_one(
        "SELECT * FROM media WHERE linked_type = ? AND linked_id = ? AND media_type = ?",
        (linked_type, linked_id, media_type),
    )
    if row is None:
        raise ApiError(500, f"export of {linked_type}/{linked_id} vanished while being created")
    return _media_response(row, status=201)


@blueprint.get("/<linked_type>/<int:linked_id>/classifications_export")
def describe_export(linked_type: str, linked_id: int) -> Response:
    """Describe the export; the CSV is written once its ``creating`` delay has passed."""
    _linked(linked_type, linked_id)
    context = get_context()
    database = context.database
    media_type = f"{_LINKED[linked_type][1]}_classifications_export"
    row = database.query_one(
        "SELECT * FROM media WHERE linked_type = ? AND linked_id = ? AND media_type = ?",
        (linked_type, linked_id, media_type),
    )
    label = _LINKED[linked_type][0]
    if row is None:
        raise ApiError(404, f"No classifications_export exists for {label} #{linked_id}")
    if (
        row["state"] == "creating"
        and not row["cancelled"]
        and context.clock.now() >= row["ready_at"]
    ):
        runs = int(database.get_meta("export_runs") or 0) + 1
        database.set_meta("export_runs", str(runs))
        text = classification_export_csv(database, linked_type, linked_id, context.settings.seed)
        store_blob(row["blob_path"], "text/csv", text.encode())
        metadata = {**loads(row["metadata"]), "state": "ready"}
        database.execute(
            "UPDATE media SET state = 'ready', metadata = ?, updated_at = ?, "
            "lock_version = lock_version + 1 WHERE id = ?",
            (dumps(metadata), context.clock.iso(), row["id"]),
        )
        logger.info("export ready linked=%s/%d bytes=%d", linked_type, linked_id, len(text))
        row = get_row("media", row["id"], "medium")
    return _media_response(row)

"""Routes for subjects (create with signed upload URLs, read, update with If-Match)."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from email.utils import formatdate
from typing import Any

from flask import Blueprint, Response, request

from panoptes_sync.emulator.auth import is_project_owner, require_login
from panoptes_sync.emulator.context import get_context, get_row, json_body, public_url
from panoptes_sync.emulator.database import dumps
from panoptes_sync.emulator.http import (
    ApiError,
    check_if_match,
    index_response,
    page_arguments,
    resource_etag,
    show_response,
)
from panoptes_sync.emulator.operations import insert_subject, normalise_metadata, touch
from panoptes_sync.emulator.resources import serialize_subject
from panoptes_sync.emulator.routes_workflows import parse_ids

__all__ = ["ALLOWED_MIME_TYPES", "blueprint", "counted_index", "last_modified"]

logger = logging.getLogger(__name__)

blueprint = Blueprint("subjects", __name__, url_prefix="/api")

#: Media types Panoptes accepts for subject locations, with the stored file extension.
ALLOWED_MIME_TYPES = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/gif": "gif",
    "image/svg+xml": "svg",
    "audio/mpeg": "mp3",
    "video/mp4": "mp4",
    "audio/mp4": "m4a",
    "video/mpeg": "mpeg",
    "text/plain": "txt",
    "application/json": "json",
}


def last_modified(row: sqlite3.Row) -> str:
    """An HTTP date for the ``Last-Modified`` header of update responses."""
    return formatdate(get_context().clock.now(), usegmt=True) if row else ""


def counted_index(
    table: str, where: list[str], params: list[Any], serialize: Any, limit: int = 100
) -> Response:
    """A counted, id-ordered index of ``table`` filtered by ``where``."""
    page, page_size = page_arguments(limit)
    database = get_context().database
    clause = " AND ".join(where) or "1 = 1"
    count = database.count(f"SELECT COUNT(*) AS n FROM {table} WHERE {clause}", params)
    rows = database.query(
        f"SELECT * FROM {table} WHERE {clause} ORDER BY id LIMIT ? OFFSET ?",
        [*params, page_size, (page - 1) * page_size],
    )
    return index_response(table, [serialize(r) for r in rows], page, page_size, count)


def _locations(locations: Any) -> list[dict[str, str]]:
    """Validate requested locations and allocate blob paths for the ones to be uploaded."""
    if not isinstance(locations, list):
        raise ApiError(422, "locations must be a list of media types or {type: url} objects")
    out = []
    for location in locations:
        if isinstance(location, str) and location in ALLOWED_MIME_TYPES:
            name = f"{uuid.uuid4()}.{ALLOWED_MIME_TYPES[location]}"
            out.append({location: f"/uploads/subject_location/{name}"})
        elif (
            isinstance(location, dict)
            and len(location) == 1
            and next(iter(location)) in ALLOWED_MIME_TYPES
            and isinstance(next(iter(location.values())), str)
        ):
            out.append(dict(location))
        else:
            raise ApiError(
                422,
                f"location {location!r} is not an allowed media type "
                f"({', '.join(ALLOWED_MIME_TYPES)}) or a {{type: url}} object",
            )
    return out


@blueprint.post("/subjects")
def create_subject() -> Response:
    """Create a subject; the response's locations are signed PUT URLs on this emulator."""
    user = require_login()
    attributes = json_body().get("subjects")
    if not isinstance(attributes, dict):
        raise ApiError(422, 'body must be {"subjects": {...}}')
    project_id = (attributes.get("links") or {}).get("project")
    if project_id is None or "locations" not in attributes:
        raise ApiError(422, "links.project and locations are required")
    project = get_row("projects", project_id, "project")
    if not is_project_owner(user, project["id"]):
        raise ApiError(403, f"You are not permitted to add subjects to project {project_id}")
    limit = get_context().settings.subject_upload_limit
    if user["uploaded_subjects_count"] >= limit and not user["admin"]:
        raise ApiError(
            403, f"User has uploaded {user['uploaded_subjects_count']} subjects of {limit} maximum"
        )
    metadata = attributes.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(422, "metadata must be an object")
    database = get_context().database
    subject_id = insert_subject(
        database, project["id"], metadata, _locations(attributes["locations"]), user["id"]
    )
    database.execute(
        "UPDATE users SET uploaded_subjects_count = uploaded_subjects_count + 1 WHERE id = ?",
        (user["id"],),
    )
    row = get_row("subjects", subject_id)
    logger.debug("subject created subject_id=%d project_id=%d", subject_id, project["id"])
    return show_response(
        "subjects",
        serialize_subject(row, for_upload=True),
        resource_etag("subjects", row),
        status=201,
        headers={"Location": public_url(f"/api/subjects/{subject_id}")},
    )


@blueprint.get("/subjects/<int:subject_id>")
def show_subject(subject_id: int) -> Response:
    """One subject."""
    row = get_row("subjects", subject_id, "subject")
    return show_response("subjects", serialize_subject(row), resource_etag("subjects", row))


@blueprint.get("/subjects")
def list_subjects() -> Response:
    """Subjects by ``id`` (comma list), ``subject_set_id``, ``project_id`` or ``workflow_id``."""
    where: list[str] = []
    params: list[Any] = []
    if "id" in request.args:
        ids = parse_ids(request.args["id"])
        where.append(f"id IN ({','.join('?' * len(ids)) or 'NULL'})")
        params += ids
    if "subject_set_id" in request.args:
        where.append("id IN (SELECT subject_id FROM set_member_subjects WHERE subject_set_id = ?)")
        params.append(request.args["subject_set_id"])
    if "project_id" in request.args:
        where.append("project_id = ?")
        params.append(request.args["project_id"])
    if "workflow_id" in request.args:
        where.append(
            "id IN (SELECT sms.subject_id FROM set_member_subjects sms JOIN "
            "workflow_subject_sets wss ON wss.subject_set_id = sms.subject_set_id "
            "WHERE wss.workflow_id = ?)"
        )
        params.append(request.args["workflow_id"])
    return counted_index("subjects", where, params, serialize_subject)


@blueprint.put("/subjects/<int:subject_id>")
def update_subject(subject_id: int) -> Response:
    """Replace a subject's metadata and/or locations (If-Match); no ETag in the answer."""
    user = require_login()
    row = get_row("subjects", subject_id, "subject")
    if not is_project_owner(user, row["project_id"]):
        raise ApiError(403, f"You are not permitted to update subject {subject_id}")
    check_if_match("subjects", row)
    changes = json_body().get("subjects")
    if not isinstance(changes, dict):
        raise ApiError(422, 'body must be {"subjects": {...}}')
    unknown = sorted(set(changes) - {"metadata", "locations", "links"})
    links = changes.get("links") or {}
    unknown += [f"links.{key}" for key in links if key != "subject_sets"]
    if unknown:
        raise ApiError(422, f"found unpermitted parameters: {', '.join(unknown)}")
    database = get_context().database
    if "metadata" in changes:
        if not isinstance(changes["metadata"], dict):
            raise ApiError(422, "metadata must be an object")
        database.execute(
            "UPDATE subjects SET metadata = ? WHERE id = ?",
            (dumps(normalise_metadata(changes["metadata"])), subject_id),
        )
    if "locations" in changes:
        database.execute(
            "UPDATE subjects SET locations = ? WHERE id = ?",
            (dumps(_locations(changes["locations"])), subject_id),
        )
    touch(database, "subjects", subject_id)
    row = get_row("subjects", subject_id)
    response = show_response("subjects", serialize_subject(row, for_upload=True), None)
    del response.headers["ETag"]
    response.headers["Last-Modified"] = last_modified(row)
    return response

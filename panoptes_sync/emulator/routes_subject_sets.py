"""Routes for subject sets, their subject links, and set member subjects (priority)."""

from __future__ import annotations

import random
import sqlite3
from typing import Any

from flask import Blueprint, Response, request

from panoptes_sync.emulator.auth import is_project_owner, require_login
from panoptes_sync.emulator.context import get_context, get_row, json_body, public_url
from panoptes_sync.emulator.database import dumps
from panoptes_sync.emulator.http import ApiError, check_if_match, resource_etag, show_response
from panoptes_sync.emulator.operations import create_subject_set, link_subjects, touch
from panoptes_sync.emulator.resources import serialize_set_member_subject, serialize_subject_set
from panoptes_sync.emulator.routes_subjects import counted_index, last_modified
from panoptes_sync.emulator.routes_workflows import parse_ids

__all__ = ["blueprint"]

blueprint = Blueprint("subject_sets", __name__, url_prefix="/api")

LINK_ERROR = "Error: check the subject set and all the subjects exist."


def _set_for_update(set_id: int) -> sqlite3.Row:
    user = require_login()
    row = get_row("subject_sets", set_id, "subject_set")
    if not is_project_owner(user, row["project_id"]):
        raise ApiError(403, f"You are not permitted to update subject_set {set_id}")
    return row


def _link(set_row: sqlite3.Row, raw_ids: object) -> None:
    if not isinstance(raw_ids, list) or not raw_ids:
        raise ApiError(422, LINK_ERROR)
    try:
        subject_ids = [int(value) for value in raw_ids]
    except (TypeError, ValueError) as error:
        raise ApiError(422, LINK_ERROR) from error
    context = get_context()
    placeholders = ",".join("?" * len(subject_ids))
    found = context.database.query(
        f"SELECT id FROM subjects WHERE id IN ({placeholders}) AND project_id = ?",
        [*subject_ids, set_row["project_id"]],
    )
    if len(found) != len(set(subject_ids)):
        raise ApiError(422, LINK_ERROR)
    rng = random.Random(f"{context.settings.seed}:{set_row['id']}:{subject_ids}")
    link_subjects(context.database, set_row["id"], subject_ids, rng)


@blueprint.post("/subject_sets")
def create() -> Response:
    """Create a subject set (optionally with ``links.subjects``): 201."""
    user = require_login()
    attributes = json_body().get("subject_sets")
    if not isinstance(attributes, dict):
        raise ApiError(422, 'body must be {"subject_sets": {...}}')
    links = attributes.get("links") or {}
    if links.get("project") is None or not attributes.get("display_name"):
        raise ApiError(422, "display_name and links.project are required")
    project = get_row("projects", links["project"], "project")
    if not is_project_owner(user, project["id"]):
        raise ApiError(403, f"You are not permitted to add subject sets to project {project['id']}")
    metadata = attributes.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(422, "metadata must be an object")
    database = get_context().database
    set_id = create_subject_set(database, project["id"], str(attributes["display_name"]), metadata)
    if links.get("subjects"):
        _link(get_row("subject_sets", set_id), links["subjects"])
    row = get_row("subject_sets", set_id)
    return show_response(
        "subject_sets",
        serialize_subject_set(row),
        resource_etag("subject_sets", row),
        status=201,
        headers={"Location": public_url(f"/api/subject_sets/{set_id}")},
    )


@blueprint.get("/subject_sets/<int:set_id>")
def show(set_id: int) -> Response:
    """One subject set."""
    row = get_row("subject_sets", set_id, "subject_set")
    return show_response(
        "subject_sets", serialize_subject_set(row), resource_etag("subject_sets", row)
    )


@blueprint.get("/subject_sets")
def index() -> Response:
    """Subject sets by ``project_id``, ``workflow_id`` or ``id``."""
    where: list[str] = []
    params: list[Any] = []
    if "project_id" in request.args:
        where.append("project_id = ?")
        params.append(request.args["project_id"])
    if "workflow_id" in request.args:
        where.append(
            "id IN (SELECT subject_set_id FROM workflow_subject_sets WHERE workflow_id = ?)"
        )
        params.append(request.args["workflow_id"])
    if "id" in request.args:
        ids = parse_ids(request.args["id"])
        where.append(f"id IN ({','.join('?' * len(ids)) or 'NULL'})")
        params += ids
    return counted_index("subject_sets", where, params, serialize_subject_set)


@blueprint.put("/subject_sets/<int:set_id>")
def update(set_id: int) -> Response:
    """Update display name and metadata (If-Match)."""
    row = _set_for_update(set_id)
    check_if_match("subject_sets", row)
    changes = json_body().get("subject_sets")
    if not isinstance(changes, dict):
        raise ApiError(422, 'body must be {"subject_sets": {...}}')
    unknown = sorted(set(changes) - {"display_name", "metadata", "links"})
    if unknown:
        raise ApiError(422, f"found unpermitted parameters: {', '.join(unknown)}")
    database = get_context().database
    if "display_name" in changes:
        database.execute(
            "UPDATE subject_sets SET display_name = ? WHERE id = ?",
            (changes["display_name"], set_id),
        )
    if "metadata" in changes:
        database.execute(
            "UPDATE subject_sets SET metadata = ? WHERE id = ?",
            (dumps(changes["metadata"]), set_id),
        )
    touch(database, "subject_sets", set_id)
    response = show_response(
        "subject_sets", serialize_subject_set(get_row("subject_sets", set_id)), None
    )
    del response.headers["ETag"]
    response.headers["Last-Modified"] = last_modified(row)
    return response


@blueprint.delete("/subject_sets/<int:set_id>")
def destroy(set_id: int) -> Response:
    """Delete a subject set and its memberships (If-Match): 204."""
    row = _set_for_update(set_id)
    check_if_match("subject_sets", row)
    with get_context().database.transaction() as connection:
        connection.execute("DELETE FROM set_member_subjects WHERE subject_set_id = ?", (set_id,))
        connection.execute("DELETE FROM workflow_subject_sets WHERE subject_set_id = ?", (set_id,))
        connection.execute("DELETE FROM subject_sets WHERE id = ?", (set_id,))
    return Response(b"", status=204)


@blueprint.post("/subject_sets/<int:set_id>/links/subjects")
def add_subjects(set_id: int) -> Response:
    """Link subjects (no If-Match), copying ``#priority`` into the new members: 200."""
    row = _set_for_update(set_id)
    _link(row, json_body().get("subjects"))
    return show_response(
        "subject_sets", serialize_subject_set(get_row("subject_sets", set_id)), None
    )


@blueprint.delete("/subject_sets/<int:set_id>/links/subjects/<ids>")
def remove_subjects(set_id: int, ids: str) -> Response:
    """Unlink subjects: 204."""
    _set_for_update(set_id)
    subject_ids = parse_ids(ids)
    database = get_context().database
    placeholders = ",".join("?" * len(subject_ids)) or "NULL"
    database.execute(
        "DELETE FROM set_member_subjects WHERE subject_set_id = ? "
        f"AND subject_id IN ({placeholders})",
        [set_id, *subject_ids],
    )
    touch(database, "subject_sets", set_id)
    return Response(b"", status=204)


@blueprint.get("/set_member_subjects/<int:member_id>")
def show_member(member_id: int) -> Response:
    """One set member subject."""
    row = get_row("set_member_subjects", member_id, "set_member_subject")
    return show_response(
        "set_member_subjects",
        serialize_set_member_subject(row),
        resource_etag("set_member_subjects", row),
    )


@blueprint.get("/set_member_subjects")
def index_members() -> Response:
    """Set member subjects by ``subject_set_id``, ``subject_id`` / ``subject_ids`` or ``id``."""
    where: list[str] = []
    params: list[Any] = []
    for key in ("subject_set_id", "subject_id"):
        if key in request.args:
            where.append(f"{key} = ?")
            params.append(request.args[key])
    for key, column in (("subject_ids", "subject_id"), ("id", "id")):
        if key in request.args:
            ids = parse_ids(request.args[key])
            where.append(f"{column} IN ({','.join('?' * len(ids)) or 'NULL'})")
            params += ids
    return counted_index("set_member_subjects", where, params, serialize_set_member_subject)


@blueprint.put("/set_member_subjects/<int:member_id>")
def update_member(member_id: int) -> Response:
    """Set a member's ``priority`` (If-Match), the key prioritized workflows serve by."""
    user = require_login()
    row = get_row("set_member_subjects", member_id, "set_member_subject")
    set_row = get_row("subject_sets", row["subject_set_id"], "subject_set")
    if not is_project_owner(user, set_row["project_id"]):
        raise ApiError(403, f"You are not permitted to update set_member_subject {member_id}")
    check_if_match("set_member_subjects", row)
    changes = json_body().get("set_member_subjects")
    if not isinstance(changes, dict) or set(changes) - {"priority"}:
        unknown = sorted(set(changes) - {"priority"}) if isinstance(changes, dict) else []
        raise ApiError(422, f"found unpermitted parameters: {', '.join(unknown) or 'body'}")
    priority = changes.get("priority")
    if priority is not None and not isinstance(priority, int | float):
        raise ApiError(422, f"priority must be a number or null, got {priority!r}")
    database = get_context().database
    database.execute(
        "UPDATE set_member_subjects SET priority = ? WHERE id = ?", (priority, member_id)
    )
    touch(database, "set_member_subjects", member_id)
    row = get_row("set_member_subjects", member_id)
    response = show_response("set_member_subjects", serialize_set_member_subject(row), None)
    del response.headers["ETag"]
    response.headers["Last-Modified"] = last_modified(row)
    return response

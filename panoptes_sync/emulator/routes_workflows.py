"""Routes for workflows, their versions, subject-set links, retirement and retirement status."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

from flask import Blueprint, Response, request

from panoptes_sync.emulator.auth import is_project_owner, require_login, require_token
from panoptes_sync.emulator.context import get_context, get_row, json_body
from panoptes_sync.emulator.database import dumps, loads
from panoptes_sync.emulator.http import (
    ApiError,
    check_if_match,
    envelope,
    index_response,
    json_response,
    nocount_meta,
    page_arguments,
    resource_etag,
    show_response,
)
from panoptes_sync.emulator.operations import (
    RETIREMENT_REASONS,
    bump_version,
    ensure_statuses,
    retire_subjects,
    touch,
    unretire_subjects,
)
from panoptes_sync.emulator.resources import (
    serialize_subject_workflow_status,
    serialize_workflow,
    serialize_workflow_version,
)

__all__ = ["blueprint", "parse_ids"]

logger = logging.getLogger(__name__)

blueprint = Blueprint("workflows", __name__, url_prefix="/api")

WORKFLOW_PAGE_SIZE_LIMIT = 25
#: Attributes whose change on an active workflow of a live project gives 403, and bumps major.
_STRUCTURAL = ("tasks", "grouped", "prioritized", "pairwise", "first_task")
_BOOLEAN = ("active", "mobile_friendly", "prioritized", "grouped", "pairwise")
_JSON = ("configuration", "retirement", "tasks")
_EDITABLE = {*_STRUCTURAL, *_BOOLEAN, *_JSON, "display_name", "primary_language", "links"}


def parse_ids(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]``.

    Raises:
        ApiError: 422 when an id is not an integer.
    """
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise ApiError(422, f"ids must be integers, got {text!r}") from error


def _workflow_for_update(workflow_id: int) -> tuple[sqlite3.Row, sqlite3.Row]:
    user = require_login()
    row = get_row("workflows", workflow_id, "workflow")
    if not is_project_owner(user, row["project_id"]):
        raise ApiError(403, f"You are not permitted to update workflow {workflow_id}")
    return user, row


@blueprint.get("/workflows/<int:workflow_id>")
def show_workflow(workflow_id: int) -> Response:
    """One workflow."""
    row = get_row("workflows", workflow_id, "workflow")
    return show_response("workflows", serialize_workflow(row), resource_etag("workflows", row))


@blueprint.get("/workflows")
def list_workflows() -> Response:
    """Workflows by ``project_id``, ``subject_set_id``, ``active`` or ``id`` (25 per page max)."""
    page, page_size = page_arguments(WORKFLOW_PAGE_SIZE_LIMIT)
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if "project_id" in request.args:
        where.append("project_id = ?")
        params.append(request.args["project_id"])
    if "subject_set_id" in request.args:
        where.append(
            "id IN (SELECT workflow_id FROM workflow_subject_sets WHERE subject_set_id = ?)"
        )
        params.append(request.args["subject_set_id"])
    if "active" in request.args:
        where.append("active = ?")
        params.append(1 if request.args["active"].lower() == "true" else 0)
    if "id" in request.args:
        ids = parse_ids(request.args["id"])
        where.append(f"id IN ({','.join('?' * len(ids)) or 'NULL'})")
        params += ids
    database = get_context().database
    clause = " AND ".join(where)
    count = database.count(f"SELECT COUNT(*) AS n FROM workflows WHERE {clause}", params)
    rows = database.query(
        f"SELECT * FROM workflows WHERE {clause} ORDER BY id LIMIT ? OFFSET ?",
        [*params, page_size, (page - 1) * page_size],
    )
    return index_response(
        "workflows", [serialize_workflow(r) for r in rows], page, page_size, count
    )


@blueprint.put("/workflows/<int:workflow_id>")
def update_workflow(workflow_id: int) -> Response:
    """Update a workflow (If-Match); structural changes bump the major version."""
    _, row = _workflow_for_update(workflow_id)
    check_if_match("workflows", row)
    changes = json_body().get("workflows")
    if not isinstance(changes, dict):
        raise ApiError(422, 'body must be {"workflows": {...}}')
    unknown = sorted(set(changes) - _EDITABLE)
    if unknown:
        raise ApiError(422, f"found unpermitted parameters: {', '.join(unknown)}")
    database = get_context().database
    project = get_row("projects", row["project_id"], "project")
    structural = [key for key in _STRUCTURAL if key in changes]
    if structural and project["live"] and row["active"]:
        raise ApiError(403, "Can't change an active workflow for a live project.")
    major_change = any(
        (loads(row[key]) if key == "tasks" else row[key]) != changes[key] for key in structural
    )
    for key, value in changes.items():
        if key in _JSON:
            database.execute(
                f"UPDATE workflows SET {key} = ? WHERE id = ?", (dumps(value), row["id"])
            )
        elif key in _BOOLEAN:
            database.execute(
                f"UPDATE workflows SET {key} = ? WHERE id = ?", (int(bool(value)), row["id"])
            )
        elif key in ("display_name", "primary_language", "first_task"):
            database.execute(f"UPDATE workflows SET {key} = ? WHERE id = ?", (value, row["id"]))
    touch(database, "workflows", row["id"])
    if major_change:
        bump_version(database, get_row("workflows", workflow_id), major=True)
        logger.info("workflow version bumped workflow_id=%d changed=%s", workflow_id, structural)
    response = show_response(
        "workflows", serialize_workflow(get_row("workflows", workflow_id)), None
    )
    del response.headers["ETag"]
    return response


@blueprint.post("/workflows/<int:workflow_id>/links/subject_sets")
def link_subject_sets(workflow_id: int) -> Response:
    """Link subject sets to a workflow (no If-Match), creating retirement statuses."""
    _, row = _workflow_for_update(workflow_id)
    set_ids = json_body().get("subject_sets")
    if not isinstance(set_ids, list) or not set_ids:
        raise ApiError(422, 'body must be {"subject_sets": [ids]}')
    database = get_context().database
    for set_id in [int(s) for s in set_ids]:
        subject_set = get_row("subject_sets", set_id, "subject_set")
        if subject_set["project_id"] != row["project_id"]:
            raise ApiError(422, f"subject set {set_id} belongs to another project")
        database.execute(
            "INSERT INTO workflow_subject_sets (workflow_id, subject_set_id) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            (workflow_id, set_id),
        )
        members = database.query(
            "SELECT subject_id FROM set_member_subjects WHERE subject_set_id = ?", (set_id,)
        )
        ensure_statuses(database, workflow_id, [m["subject_id"] for m in members])
    touch(database, "workflows", workflow_id)
    return show_response("workflows", serialize_workflow(get_row("workflows", workflow_id)), None)


@blueprint.delete("/workflows/<int:workflow_id>/links/subject_sets/<ids>")
def unlink_subject_sets(workflow_id: int, ids: str) -> Response:
    """Unlink subject sets from a workflow: 204."""
    _workflow_for_update(workflow_id)
    database = get_context().database
    for set_id in parse_ids(ids):
        database.execute(
            "DELETE FROM workflow_subject_sets WHERE workflow_id = ? AND subject_set_id = ?",
            (workflow_id, set_id),
        )
    touch(database, "workflows", workflow_id)
    return Response(b"", status=204)


def _subject_id_list(body: dict[str, Any], key: str) -> list[int]:
    values = body.get(key)
    if values is None and key == "subject_ids" and "subject_id" in body:
        values = [body["subject_id"]]
    if values is None:
        return []
    if not isinstance(values, list):
        values = [values]
    try:
        return [int(value) for value in values]
    except (TypeError, ValueError) as error:
        raise ApiError(422, f"{key} must be a list of integer ids") from error


@blueprint.post("/workflows/<int:workflow_id>/retired_subjects")
def retire(workflow_id: int) -> Response:
    """Retire subjects in a workflow: 204."""
    _workflow_for_update(workflow_id)
    body = json_body()
    reason = body.get("retirement_reason") or "other"
    reason = "nothing_here" if reason == "blank" else reason
    if reason not in RETIREMENT_REASONS:
        raise ApiError(
            422, f"retirement_reason {reason!r} is not one of {', '.join(RETIREMENT_REASONS)}"
        )
    subject_ids = _subject_id_list(body, "subject_ids")
    if not subject_ids:
        raise ApiError(422, "subject_ids (or subject_id) is required")
    retire_subjects(get_context().database, workflow_id, subject_ids, reason)
    return Response(b"", status=204)


@blueprint.post("/workflows/<int:workflow_id>/unretire_subjects")
def unretire(workflow_id: int) -> Response:
    """Un-retire subjects, by subject ids or subject set ids: 204."""
    _workflow_for_update(workflow_id)
    body = json_body()
    database = get_context().database
    subject_ids = _subject_id_list(body, "subject_ids")
    for set_id in _subject_id_list(body, "subject_set_ids"):
        members = database.query(
            "SELECT subject_id FROM set_member_subjects WHERE subject_set_id = ?", (set_id,)
        )
        subject_ids += [m["subject_id"] for m in members]
    if not subject_ids:
        raise ApiError(422, "subject_ids or subject_set_ids is required")
    unretire_subjects(database, workflow_id, subject_ids)
    return Response(b"", status=204)


@blueprint.get("/workflow_versions")
def list_workflow_versions() -> Response:
    """Versions of a workflow (requires a token, like Panoptes)."""
    require_token()
    page, page_size = page_arguments()
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if "workflow_id" in request.args:
        where.append("workflow_id = ?")
        params.append(request.args["workflow_id"])
    database = get_context().database
    clause = " AND ".join(where)
    count = database.count(f"SELECT COUNT(*) FROM workflow_versions WHERE {clause}", params)
    rows = database.query(
        f"SELECT * FROM workflow_versions WHERE {clause} ORDER BY id LIMIT ? OFFSET ?",
        [*params, page_size, (page - 1) * page_size],
    )
    return index_response(
        "workflow_versions",
        [serialize_workflow_version(r) for r in rows],
        page,
        page_size,
        count,
    )


@blueprint.get("/subject_workflow_statuses")
@blueprint.get("/subject_workflow_statuses/<int:status_id>")
def list_statuses(status_id: int | None = None) -> Response:
    """Retirement statuses by ``subject_id``, ``subject_ids`` or ``workflow_id`` (no count)."""
    page, page_size = page_arguments()
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if status_id is not None:
        where.append("id = ?")
        params.append(status_id)
    for key, column in (("subject_id", "subject_id"), ("workflow_id", "workflow_id")):
        if key in request.args:
            where.append(f"{column} = ?")
            params.append(request.args[key])
    if "subject_ids" in request.args:
        ids = parse_ids(request.args["subject_ids"])
        where.append(f"subject_id IN ({','.join('?' * len(ids)) or 'NULL'})")
        params += ids
    rows = get_context().database.query(
        f"SELECT * FROM subject_workflow_statuses WHERE {' AND '.join(where)} "
        "ORDER BY id LIMIT ? OFFSET ?",
        [*params, page_size, (page - 1) * page_size],
    )
    if status_id is not None and not rows:
        raise ApiError(404, f"Could not find subject_workflow_status with id='{status_id}'")
    meta = nocount_meta("/subject_workflow_statuses", page, page_size, len(rows))
    resources = [serialize_subject_workflow_status(r) for r in rows]
    return json_response(envelope("subject_workflow_statuses", resources, meta))

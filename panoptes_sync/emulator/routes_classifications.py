"""Routes for classifications: ``/classifications/project`` keyset paging, own classifications."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from panoptes_sync.emulator.auth import current_user, require_token
from panoptes_sync.emulator.context import get_context, get_row, json_body, public_url
from panoptes_sync.emulator.database import dumps
from panoptes_sync.emulator.http import (
    DEFAULT_PAGE_SIZE,
    ApiError,
    build_href,
    envelope,
    json_response,
    nocount_meta,
    page_arguments,
    query_params,
    show_response,
)
from panoptes_sync.emulator.operations import count_and_retire
from panoptes_sync.emulator.resources import serialize_classification, workflow_version_string
from panoptes_sync.emulator.routes_workflows import parse_ids

__all__ = ["blueprint"]

blueprint = Blueprint("classifications", __name__, url_prefix="/api")

PROJECT_PATH = "/classifications/project"


def _filters(where: list[str], params: list[Any]) -> None:
    for key in ("project_id", "workflow_id", "user_id"):
        if key in request.args:
            where.append(f"{key} = ?")
            params.append(request.args[key])
    subject_ids: list[int] = []
    if "subject_id" in request.args:
        subject_ids += parse_ids(request.args["subject_id"])
    if "subject_ids" in request.args:
        subject_ids += parse_ids(request.args["subject_ids"])
    if subject_ids:
        placeholders = ",".join("?" * len(subject_ids))
        where.append(
            f"EXISTS (SELECT 1 FROM json_each(subject_ids) WHERE value IN ({placeholders}))"
        )
        params += subject_ids


def _last_id_meta(page: int, page_size: int, last_id: int, rows: list[Any]) -> dict[str, Any]:
    """Meta of a keyset page; ``next_href`` is ``?last_id=<max id on page>`` while non-empty."""
    params = query_params()
    params.pop("page", None)
    if page_size == DEFAULT_PAGE_SIZE:
        params.pop("page_size", None)
    else:
        params["page_size"] = str(page_size)
    without_last = {k: v for k, v in params.items() if k != "last_id"}
    next_href = None
    if rows:
        next_href = build_href(PROJECT_PATH, {**without_last, "last_id": rows[-1]["id"]})
    return {
        "page": page,
        "page_size": page_size,
        "count": 0,
        "include": [],
        "page_count": 0,
        "previous_page": page - 1,
        "next_page": page + 1 if rows else None,
        "first_href": build_href(PROJECT_PATH, without_last),
        "previous_href": build_href(PROJECT_PATH, {**without_last, "last_id": last_id}),
        "next_href": next_href,
        "last_href": build_href(PROJECT_PATH, {**without_last, "page": 0}),
    }


@blueprint.get("/classifications/project")
def project_classifications() -> Response:
    """Classifications of projects the user may update, keyset-paged by ``last_id``."""
    user = require_token()
    page, page_size = page_arguments()
    if "last_id" in request.args and "project_id" not in request.args:
        raise ApiError(422, "Project ID required if last_id is included")
    where: list[str] = []
    params: list[Any] = []
    if not (user["admin"] and "admin" in request.args):
        where.append("project_id IN (SELECT id FROM projects WHERE owner_id = ?)")
        params.append(user["id"])
    _filters(where, params)
    database = get_context().database
    clause = " AND ".join(where) or "1 = 1"
    if "last_id" in request.args:
        try:
            last_id = int(request.args["last_id"])
        except ValueError as error:
            raise ApiError(422, "last_id must be an integer") from error
        rows = database.query(
            f"SELECT * FROM classifications WHERE {clause} AND id > ? ORDER BY id LIMIT ?",
            [*params, last_id, page_size],
        )
        meta = _last_id_meta(page, page_size, last_id, rows)
    else:
        rows = database.query(
            f"SELECT * FROM classifications WHERE {clause} ORDER BY id LIMIT ? OFFSET ?",
            [*params, page_size, (page - 1) * page_size],
        )
        meta = nocount_meta(PROJECT_PATH, page, page_size, len(rows))
    resources = [serialize_classification(row) for row in rows]
    return json_response(envelope("classifications", resources, meta))


@blueprint.get("/classifications")
@blueprint.get("/classifications/<int:classification_id>")
def own_classifications(classification_id: int | None = None) -> Response:
    """The logged-in user's own classifications (Panoptes' CompleteScope)."""
    user = require_token()
    page, page_size = page_arguments()
    where, params = ["user_id = ?"], [user["id"]]
    if classification_id is not None:
        where.append("id = ?")
        params.append(classification_id)
    _filters(where, params)
    rows = get_context().database.query(
        f"SELECT * FROM classifications WHERE {' AND '.join(where)} ORDER BY id LIMIT ? OFFSET ?",
        [*params, page_size, (page - 1) * page_size],
    )
    if classification_id is not None and not rows:
        raise ApiError(404, f"Could not find classification with id='{classification_id}'")
    meta = nocount_meta("/classifications", page, page_size, len(rows))
    return json_response(
        envelope("classifications", [serialize_classification(r) for r in rows], meta)
    )


#: Metadata keys Panoptes' Classification model requires.
REQUIRED_METADATA = ("started_at", "finished_at", "user_language", "user_agent")


def _classification_fields(
    body: dict[str, Any],
) -> tuple[Any, list[int], list[Any], dict[str, Any]]:
    """Validate a create body: (workflow row, subject ids, annotations, metadata)."""
    attributes = body.get("classifications")
    if not isinstance(attributes, dict):
        raise ApiError(422, 'body must be {"classifications": {...}}')
    links = attributes.get("links") or {}
    subjects = links.get("subjects")
    if links.get("workflow") is None or links.get("project") is None or not subjects:
        raise ApiError(422, "links.project, links.workflow and links.subjects are required")
    workflow = get_row("workflows", links["workflow"], "workflow")
    if str(workflow["project_id"]) != str(links["project"]):
        raise ApiError(
            422, f"workflow {workflow['id']} does not belong to project {links['project']}"
        )
    try:
        subject_ids = [int(subject) for subject in subjects]
    except (TypeError, ValueError) as error:
        raise ApiError(422, "links.subjects must be subject ids") from error
    for subject_id in subject_ids:
        get_row("subjects", subject_id, "subject")
    annotations = attributes.get("annotations")
    metadata = attributes.get("metadata")
    if not isinstance(annotations, list) or not isinstance(metadata, dict):
        raise ApiError(422, "annotations must be a list and metadata an object")
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ApiError(422, f"metadata is missing required keys: {', '.join(missing)}")
    return workflow, subject_ids, annotations, metadata


@blueprint.post("/classifications")
def create_classification() -> Response:
    """Record a classification (anonymous when not logged in), counting towards retirement."""
    user = current_user()
    workflow, subject_ids, annotations, metadata = _classification_fields(json_body())
    database = get_context().database
    version = str(metadata.pop("workflow_version", "") or workflow_version_string(workflow))
    now = database.clock.iso()
    with database.transaction() as connection:
        classification_id = database.next_id("classifications")
        connection.execute(
            "INSERT INTO classifications (id, project_id, workflow_id, user_id, subject_ids, "
            "annotations, metadata, workflow_version, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                classification_id,
                workflow["project_id"],
                workflow["id"],
                None if user is None else user["id"],
                dumps(subject_ids),
                dumps(annotations),
                dumps(metadata),
                version,
                now,
                now,
            ),
        )
        for subject_id in subject_ids:
            count_and_retire(database, workflow, subject_id)
            if user is not None:
                connection.execute(
                    "INSERT INTO seen_subjects (user_id, workflow_id, subject_id) "
                    "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (user["id"], workflow["id"], subject_id),
                )
    row = get_row("classifications", classification_id, "classification")
    return show_response(
        "classifications",
        serialize_classification(row),
        None,
        status=201,
        headers={"Location": public_url(f"/api/classifications/{classification_id}")},
    )

"""Routes for users (``/api/me``, ``/api/users``) and projects."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from panoptes_sync.emulator.auth import (
    current_user,
    is_project_owner,
    require_login,
    require_token,
)
from panoptes_sync.emulator.context import get_context, get_row, json_body
from panoptes_sync.emulator.database import dumps
from panoptes_sync.emulator.http import (
    ApiError,
    check_if_match,
    index_response,
    page_arguments,
    resource_etag,
    show_response,
)
from panoptes_sync.emulator.operations import touch
from panoptes_sync.emulator.resources import serialize_project, serialize_user

__all__ = ["blueprint"]

blueprint = Blueprint("projects", __name__, url_prefix="/api")

_PROJECT_EDITABLE = {
    "display_name",
    "description",
    "tags",
    "introduction",
    "private",
    "primary_language",
    "configuration",
    "live",
}


@blueprint.get("/me")
def me() -> Response:
    """The logged-in user (401 with an empty body without a valid token)."""
    user = require_token()
    return show_response("users", serialize_user(user, private=True), resource_etag("users", user))


@blueprint.get("/users/<int:user_id>")
def show_user(user_id: int) -> Response:
    """One user (private attributes only for themself)."""
    row = get_row("users", user_id, "user")
    viewer = current_user()
    private = viewer is not None and viewer["id"] == row["id"]
    return show_response("users", serialize_user(row, private), resource_etag("users", row))


@blueprint.get("/users")
def list_users() -> Response:
    """Users, filtered by ``login`` (comma list) or ``id``."""
    page, page_size = page_arguments()
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if "login" in request.args:
        logins = request.args["login"].split(",")
        where.append(f"login IN ({','.join('?' * len(logins))})")
        params += logins
    if "id" in request.args:
        ids = [int(i) for i in request.args["id"].split(",") if i.isdigit()]
        where.append(f"id IN ({','.join('?' * len(ids)) or 'NULL'})")
        params += ids
    return _index("users", " AND ".join(where), params, page, page_size, serialize_user)


def _index(
    table: str, where: str, params: list[Any], page: int, page_size: int, serialize: Any
) -> Response:
    database = get_context().database
    count = database.count(f"SELECT COUNT(*) AS n FROM {table} WHERE {where}", params)
    rows = database.query(
        f"SELECT * FROM {table} WHERE {where} ORDER BY id LIMIT ? OFFSET ?",
        [*params, page_size, (page - 1) * page_size],
    )
    return index_response(table, [serialize(row) for row in rows], page, page_size, count)


@blueprint.get("/projects/<int:project_id>")
def show_project(project_id: int) -> Response:
    """One project."""
    row = get_row("projects", project_id, "project")
    return show_response("projects", serialize_project(row), resource_etag("projects", row))


@blueprint.get("/projects")
def list_projects() -> Response:
    """Projects, filtered by ``slug``, ``owner`` (login), ``display_name`` or ``id``."""
    page, page_size = page_arguments()
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    if "slug" in request.args:
        where.append("lower(slug) = lower(?)")
        params.append(request.args["slug"])
    if "display_name" in request.args:
        where.append("display_name = ?")
        params.append(request.args["display_name"])
    if "owner" in request.args:
        where.append("owner_id IN (SELECT id FROM users WHERE login = ?)")
        params.append(request.args["owner"])
    if "id" in request.args:
        ids = [int(i) for i in request.args["id"].split(",") if i.isdigit()]
        where.append(f"id IN ({','.join('?' * len(ids)) or 'NULL'})")
        params += ids
    return _index("projects", " AND ".join(where), params, page, page_size, serialize_project)


@blueprint.put("/projects/<int:project_id>")
def update_project(project_id: int) -> Response:
    """Update a project's editable attributes (If-Match required)."""
    user = require_login()
    row = get_row("projects", project_id, "project")
    if not is_project_owner(user, project_id):
        raise ApiError(403, f"You are not permitted to update project {project_id}")
    check_if_match("projects", row)
    changes = json_body().get("projects")
    if not isinstance(changes, dict) or set(changes) - _PROJECT_EDITABLE:
        unknown = (
            sorted(set(changes or {}) - _PROJECT_EDITABLE) if isinstance(changes, dict) else []
        )
        raise ApiError(422, f"found unpermitted parameters: {', '.join(unknown) or 'projects'}")
    database = get_context().database
    columns = {"display_name": "display_name", "private": "private", "live": "live"}
    for key, value in changes.items():
        if key in columns:
            database.execute(
                f"UPDATE projects SET {columns[key]} = ? WHERE id = ?", (value, row["id"])
            )
        elif key == "configuration":
            database.execute(
                "UPDATE projects SET configuration = ? WHERE id = ?", (dumps(value), row["id"])
            )
    touch(database, "projects", row["id"])
    response = show_response("projects", serialize_project(get_row("projects", project_id)), None)
    del response.headers["ETag"]
    return response

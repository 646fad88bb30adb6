"""JSON-API plumbing shared by the emulator's routes: envelope, paging, ETags and errors."""

from __future__ import annotations

import hashlib
import math
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask import Response, request

from zoobot import strict_json

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_PAGE_SIZE",
    "ApiError",
    "build_href",
    "check_if_match",
    "counted_meta",
    "envelope",
    "error_response",
    "index_response",
    "json_response",
    "nocount_meta",
    "page_arguments",
    "query_params",
    "show_response",
    "resource_etag",
]

CONTENT_TYPE = "application/vnd.api+json; version=1; charset=utf-8"
ACCEPT = "application/vnd.api+json; version=1"
DEFAULT_PAGE_SIZE = 20
PAGE_SIZE_LIMIT = 100

#: Top-level ``links`` templates per resource type, as recorded from Panoptes staging.
_LINK_TEMPLATES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "projects": (
        ("workflows", "/workflows?project_id={projects.id}", "workflows"),
        ("active_workflows", "/workflows?project_id={projects.id}", "active_workflows"),
        ("subject_sets", "/subject_sets?project_id={projects.id}", "subject_sets"),
        ("project_contents", "/project_contents?project_id={projects.id}", "project_contents"),
        ("project_roles", "/project_roles?project_id={projects.id}", "project_roles"),
        ("pages", "/projects/{projects.id}/pages", "project_pages"),
        ("owner", "/{projects.owner.href}", "owners"),
        ("organization", "/organizations/{projects.organization}", "organizations"),
        ("avatar", "/projects/{projects.id}/avatar", "media"),
        ("background", "/projects/{projects.id}/background", "media"),
        ("attached_images", "/projects/{projects.id}/attached_images", "media"),
        ("classifications_export", "/projects/{projects.id}/classifications_export", "media"),
        ("subjects_export", "/projects/{projects.id}/subjects_export", "media"),
        ("aggregations_export", "/projects/{projects.id}/aggregations_export", "media"),
    ),
    "workflows": (
        ("project", "/projects/{workflows.project}", "projects"),
        ("subject_sets", "/subject_sets?workflow_id={workflows.id}", "subject_sets"),
        ("tutorial_subject", "/subjects/{workflows.tutorial_subject}", "tutorial_subjects"),
        ("attached_images", "/workflows/{workflows.id}/attached_images", "media"),
        ("classifications_export", "/workflows/{workflows.id}/classifications_export", "media"),
        (
            "published_version",
            "/workflow_versions/{workflows.published_version}",
            "published_versions",
        ),
    ),
    "subjects": (
        ("project", "/projects/{subjects.project}", "projects"),
        ("collections", "/collections?subject_id={subjects.id}", "collections"),
        ("subject_sets", "/subject_sets?subject_id={subjects.id}", "subject_sets"),
    ),
    "subject_sets": (
        ("project", "/projects/{subject_sets.project}", "projects"),
        ("workflows", "/workflows?subject_set_id={subject_sets.id}", "workflows"),
    ),
    "classifications": (
        ("project", "/projects/{classifications.project}", "projects"),
        ("user", "/users/{classifications.user}", "users"),
        ("user_group", "/user_groups/{classifications.user_group}", "user_groups"),
        ("workflow", "/workflows/{classifications.workflow}", "workflows"),
        ("subjects", "/subjects/{classifications.subjects}", "subjects"),
    ),
    "users": (
        ("classifications", "/classifications?user_id={users.id}", "classifications"),
        ("project_preferences", "/project_preferences?user_id={users.id}", "project_preferences"),
        (
            "collection_preferences",
            "/collection_preferences?user_id={users.id}",
            "collection_preferences",
        ),
        ("projects", "/projects?owner={users.login}", "projects"),
        ("collections", "/collections?owner={users.login}", "collections"),
        ("recents", "/users/{users.id}/recents", "recents"),
        ("avatar", "/users/{users.id}/avatar", "media"),
        ("profile_header", "/users/{users.id}/profile_header", "media"),
    ),
}
TYPE_LINKS: dict[str, dict[str, Any]] = {
    kind: {f"{kind}.{name}": {"href": href, "type": target} for name, href, target in items}
    for kind, items in _LINK_TEMPLATES.items()
}


class ApiError(Exception):
    """An error answered with the canonical body ``{"errors": [{"message": ...}]}``.

    Args:
        status: the HTTP status.
        message: the message, worded as Panoptes words it where known.
        headers: extra response headers (e.g. ``Retry-After``).
    """

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON-API response with Panoptes' content type."""
    response = Response(strict_json.dumps(body, separators=(",", ":")), status=status)
    response.headers["Content-Type"] = CONTENT_TYPE
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The canonical error response."""
    return json_response({"errors": [{"message": message}]}, status, headers)


def body_etag(response: Response) -> str:
    """Quoted MD5 of a response body (the ETag of index responses)."""
    return '"' + hashlib.md5(response.get_data()).hexdigest() + '"'


def resource_etag(resource_type: str, row: sqlite3.Row | Mapping[str, Any]) -> str:
    """Quoted MD5 of the resource's cache key; changes whenever the resource is updated."""
    key = f"{resource_type}/{row['id']}-{row['lock_version']}-{row['updated_at']}"
    return '"' + hashlib.md5(key.encode()).hexdigest() + '"'


def check_if_match(resource_type: str, row: sqlite3.Row | Mapping[str, Any]) -> None:
    """Enforce Panoptes' precondition check on PUT and DELETE.

    Raises:
        ApiError: 428 when ``If-Match`` is missing, 412 when it names another version.
    """
    given = request.headers.get("If-Match")
    if not given:
        raise ApiError(428, "Request requires If-Match header to be present")
    current = resource_etag(resource_type, row)
    candidates = [part.strip().removeprefix("W/") for part in given.split(",")]
    if current not in candidates and "*" not in candidates:
        raise ApiError(412, "JsonApiController::PreconditionFailed")


def build_href(path: str, params: Mapping[str, Any]) -> str:
    """``path?k=v`` with the keys sorted as Rails' ``to_query`` sorts them."""
    items = sorted((key, str(value)) for key, value in params.items() if value is not None)
    return path + ("?" + urlencode(items) if items else "")


def page_arguments(limit: int = PAGE_SIZE_LIMIT) -> tuple[int, int]:
    """The ``page`` and ``page_size`` query parameters, validated and clamped.

    Raises:
        ApiError: 422 for a non-numeric value or ``page_size`` < 1.
    """
    try:
        page = int(request.args.get("page", 1))
        page_size = int(request.args.get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError as error:
        raise ApiError(422, "page and page_size must be integers") from error
    if page_size < 1:
        raise ApiError(422, "page_size must be greater than 0")
    return max(page, 1), min(page_size, limit)


def query_params() -> dict[str, str]:
    """The request's query parameters minus ``admin`` (not echoed in hrefs)."""
    return {key: value for key, value in request.args.items() if key != "admin"}


def counted_meta(
    path: str, page: int, page_size: int, count: int, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Paging ``meta`` of a counted index, with hrefs built from the request's query."""
    params = dict(query_params() if params is None else params)
    params.pop("page", None)
    page_count = math.ceil(count / page_size) if count else 0
    previous_page = page - 1 if page > 1 else None
    next_page = page + 1 if page < page_count else None
    last_page = page_count if page_count > 1 else None
    return {
        "page": page,
        "page_size": page_size,
        "count": count,
        "include": [],
        "page_count": page_count,
        "previous_page": previous_page,
        "next_page": next_page,
        "first_href": build_href(path, params),
        "previous_href": build_href(path, {**params, "page": previous_page})
        if previous_page
        else None,
        "next_href": build_href(path, {**params, "page": next_page}) if next_page else None,
        "last_href": build_href(path, {**params, "page": last_page}),
    }


def nocount_meta(
    path: str, page: int, page_size: int, n_rows: int, params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Paging ``meta`` of Panoptes' NoCountSerializer: count 0, a next page while non-empty."""
    params = dict(query_params() if params is None else params)
    params.pop("page", None)
    next_page = page + 1 if n_rows else None
    return {
        "page": page,
        "page_size": page_size,
        "count": 0,
        "include": [],
        "page_count": 0,
        "previous_page": page - 1,
        "next_page": next_page,
        "first_href": build_href(path, params),
        "previous_href": build_href(path, {**params, "page": page - 1}),
        "next_href": build_href(path, {**params, "page": next_page}) if next_page else None,
        "last_href": build_href(path, {**params, "page": 0}),
    }


def show_response(
    resource_type: str,
    resource: Mapping[str, Any],
    etag: str | None,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """One resource, wrapped as Panoptes wraps a show (paging meta of ``?id=<id>``)."""
    return index_response(
        resource_type,
        [resource],
        1,
        DEFAULT_PAGE_SIZE,
        1,
        status=status,
        etag=etag,
        headers=headers,
        params={"id": resource["id"]},
    )


def envelope(
    resource_type: str, resources: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]
) -> dict[str, Any]:
    """``{"<type>": [...], "links": {...}, "meta": {"<type>": paging}}`` (media: no links)."""
    body: dict[str, Any] = {resource_type: list(resources)}
    if resource_type != "media":
        body["links"] = TYPE_LINKS.get(resource_type, {})
    body["meta"] = {resource_type: dict(meta)}
    return body


def index_response(
    resource_type: str,
    resources: Sequence[Mapping[str, Any]],
    page: int,
    page_size: int,
    count: int,
    path: str | None = None,
    status: int = 200,
    etag: str | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> Response:
    """A counted index (or show) response; the ETag is the body's MD5 unless ``etag`` is given."""
    meta = counted_meta(path or f"/{resource_type}", page, page_size, count, params)
    response = json_response(envelope(resource_type, resources, meta), status, headers)
    response.headers["ETag"] = etag or body_etag(response)
    return response

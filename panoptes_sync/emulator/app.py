"""The emulator's Flask app: blueprints, the Accept-header router check, faults, error shapes."""

from __future__ import annotations

import logging

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from panoptes_sync.emulator import (
    auth,
    blobs,
    routes_classifications,
    routes_exports,
    routes_projects,
    routes_subject_sets,
    routes_subjects,
    routes_workflows,
)
from panoptes_sync.emulator.context import EXTENSION_KEY, EmulatorContext
from panoptes_sync.emulator.http import ACCEPT, ApiError, error_response

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def _check_accept() -> Response | None:
    """Panoptes routes ``/api`` only with the JSON-API Accept header; without it, 404."""
    if not request.path.startswith("/api"):
        return None
    if ACCEPT in request.headers.get("Accept", ""):
        return None
    return error_response(
        404, f"Not found: /api requests need the header 'Accept: {ACCEPT}' (Panoptes' router)"
    )


def create_app(context: EmulatorContext) -> Flask:
    """Build the WSGI app serving one emulator state.

    Args:
        context: settings, state, clock and fault injector.

    Returns:
        The Flask app.
    """
    app = Flask("panoptes_sync.emulator")
    app.extensions[EXTENSION_KEY] = context
    app.url_map.strict_slashes = False
    for module in (
        auth,
        blobs,
        routes_projects,
        routes_workflows,
        routes_classifications,
        routes_subjects,
        routes_subject_sets,
        routes_exports,
    ):
        app.register_blueprint(module.blueprint)

    app.before_request(context.faults.before_request)
    if context.settings.require_accept_header:
        app.before_request(_check_accept)
    app.after_request(context.faults.after_request)

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError) -> Response:
        return error_response(error.status, error.message, error.headers)

    @app.errorhandler(auth.EmptyUnauthorized)
    def handle_empty_unauthorized(error: auth.EmptyUnauthorized) -> Response:
        return auth.empty_unauthorized_response()

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException) -> Response:
        status = error.code or 500
        if status == 404:
            message = f"Not found: no route matches {request.method} {request.path}"
        else:
            message = error.description or error.name
        return error_response(status, message)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        logger.exception("emulator error method=%s path=%s", request.method, request.path)
        return error_response(500, f"Internal server error: {type(error).__name__}")

    return app

"""Authentication as Panoptes does it: Devise session sign-in, Doorkeeper tokens, bearer checks."""

from __future__ import annotations

import logging
import secrets
import sqlite3
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from panoptes_sync.emulator.context import get_context
from panoptes_sync.emulator.http import ApiError, envelope, json_response
from panoptes_sync.emulator.passwords import verify_password
from panoptes_sync.emulator.resources import serialize_user

__all__ = [
    "EmptyUnauthorized",
    "blueprint",
    "current_user",
    "is_project_owner",
    "require_login",
    "require_token",
]

logger = logging.getLogger(__name__)

blueprint = Blueprint("auth", __name__)

SESSION_COOKIE = "_Panoptes_session"
SCOPES = (
    "user project group collection classification subject medium organization translation public"
)
INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the redirection "
    "URI used in the authorization request, or was issued to another client."
)


class EmptyUnauthorized(Exception):
    """Doorkeeper's answer to a missing/expired token on a guarded read: 401, empty body."""


def _session_row() -> sqlite3.Row | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    return get_context().database.query_one("SELECT * FROM sessions WHERE id = ?", (session_id,))


@blueprint.get("/users/sign_in")
def sign_in_form() -> Response:
    """Start a session: CSRF token in ``X-CSRF-Token`` and the session cookie."""
    context = get_context()
    row = _session_row()
    if row is None:
        session_id, csrf = secrets.token_hex(16), secrets.token_urlsafe(32)
        context.database.execute(
            "INSERT INTO sessions (id, csrf_token, user_id, created_at) VALUES (?, ?, NULL, ?)",
            (session_id, csrf, context.clock.now()),
        )
    else:
        session_id, csrf = row["id"], row["csrf_token"]
    response = jsonify({"login": "/users/sign_in"})
    response.headers["X-CSRF-Param"] = "authenticity_token"
    response.headers["X-CSRF-Token"] = csrf
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, path="/")
    return response


@blueprint.post("/users/sign_in")
def sign_in() -> Response:
    """Check CSRF token and credentials, bind the user to the session cookie."""
    context = get_context()
    body = request.get_json(silent=True) or {}
    row = _session_row()
    if row is None or body.get("authenticity_token") != row["csrf_token"]:
        return json_response(
            {"errors": [{"message": "Can't verify CSRF token authenticity."}]}, 422
        )
    credentials = body.get("user") or {}
    user = context.database.query_one(
        "SELECT * FROM users WHERE login = ?", (str(credentials.get("login", "")),)
    )
    if user is None or not verify_password(credentials.get("password"), user["password_hash"]):
        response = jsonify({"error": "Invalid login or password."})
        response.status_code = 401
        return response
    context.database.execute(
        "UPDATE sessions SET user_id = ? WHERE id = ?", (user["id"], row["id"])
    )
    body = envelope("users", [serialize_user(user, private=True)], {})
    response = json_response(body)
    response.set_cookie(SESSION_COOKIE, row["id"], httponly=True, path="/")
    return response


def _grant_error(error: str, status: int = 400) -> Response:
    response = jsonify({"error": error, "error_description": INVALID_GRANT})
    response.status_code = status
    return response


def _issue_token(user_id: int | None, grant_type: str, refresh: bool) -> dict[str, Any]:
    context = get_context()
    now = context.clock.now()
    access, refresh_token = secrets.token_hex(32), (secrets.token_hex(32) if refresh else None)
    lifetime = context.settings.token_lifetime_s
    context.database.execute(
        "INSERT INTO tokens (access_token, refresh_token, user_id, grant_type, expires_at, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?)",
        (access, refresh_token, user_id, grant_type, now + lifetime, now),
    )
    context.count(f"grant:{grant_type}")
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": lifetime,
        "scope": SCOPES,
        "created_at": int(now),
    }
    if refresh_token:
        body["refresh_token"] = refresh_token
    return body


@blueprint.post("/oauth/token")
def oauth_token() -> Response:
    """Doorkeeper's token endpoint: password, refresh_token and client_credentials grants."""
    context = get_context()
    settings = context.settings
    form = request.form if request.form else (request.get_json(silent=True) or {})
    grant_type = form.get("grant_type")
    if form.get("client_id") != settings.client_id:
        return _grant_error("invalid_client", 401)
    if grant_type == "password":
        login = form.get("login") or form.get("username")
        if login:
            user = context.database.query_one("SELECT * FROM users WHERE login = ?", (login,))
            if user is None or not verify_password(form.get("password"), user["password_hash"]):
                return _grant_error("invalid_grant")
            user_id = int(user["id"])
        else:
            session = _session_row()
            if session is None or session["user_id"] is None:
                return _grant_error("invalid_grant")
            user_id = int(session["user_id"])
        return jsonify(_issue_token(user_id, "password", refresh=True))
    if grant_type == "refresh_token":
        with context.database.transaction() as connection:
            row = connection.execute(
                "SELECT * FROM tokens WHERE refresh_token = ? AND revoked = 0",
                (form.get("refresh_token", ""),),
            ).fetchone()
            if row is None:
                return _grant_error("invalid_grant")
            # Doorkeeper revokes a refresh token when it is used; a second use is invalid_grant.
            connection.execute(
                "UPDATE tokens SET revoked = 1 WHERE access_token = ?", (row["access_token"],)
            )
            return jsonify(_issue_token(row["user_id"], "refresh_token", refresh=True))
    if grant_type == "client_credentials":
        if form.get("client_secret") != settings.client_secret:
            return _grant_error("invalid_client", 401)
        owner = context.database.query_one(
            "SELECT id FROM users WHERE login = ?", (settings.login,)
        )
        return jsonify(_issue_token(owner["id"] if owner else None, "client_credentials", False))
    return _grant_error("unsupported_grant_type")


def current_user() -> sqlite3.Row | None:
    """The user of the request's bearer token, or None (no token, unknown, revoked or expired)."""
    if "emulator_user" in g:
        user: sqlite3.Row | None = g.emulator_user
        return user
    g.emulator_user = None
    g.emulator_token_given = False
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        g.emulator_token_given = True
        context = get_context()
        token = context.database.query_one(
            "SELECT * FROM tokens WHERE access_token = ?", (header[7:].strip(),)
        )
        expired = g.get("emulator_force_expiry", False)
        if token is not None and not expired and token["expires_at"] > context.clock.now():
            if token["user_id"] is not None:
                g.emulator_user = context.database.query_one(
                    "SELECT * FROM users WHERE id = ?", (token["user_id"],)
                )
    return g.emulator_user


def require_token() -> sqlite3.Row:
    """For reads guarded by ``doorkeeper_authorize!``: a valid token or an empty-body 401.

    Raises:
        EmptyUnauthorized: when there is no valid token.
    """
    user = current_user()
    if user is None:
        raise EmptyUnauthorized()
    return user


def require_login() -> sqlite3.Row:
    """For writes (``require_login``): a logged-in user or the JSON 401.

    Raises:
        ApiError: 401 ``You must be logged in to access this resource.``
    """
    user = current_user()
    if user is None:
        raise ApiError(401, "You must be logged in to access this resource.")
    return user


def is_project_owner(user: sqlite3.Row | None, project_id: int) -> bool:
    """Owners (and admins in admin mode) may update a project and read its classifications."""
    if user is None:
        return False
    if user["admin"] and "admin" in request.args:
        return True
    row = get_context().database.query_one(
        "SELECT owner_id FROM projects WHERE id = ?", (project_id,)
    )
    return row is not None and row["owner_id"] == user["id"]


def empty_unauthorized_response() -> Response:
    """The exact shape of Doorkeeper's 401: empty body, ``WWW-Authenticate`` header."""
    response = Response(b"", status=401, content_type="text/html")
    response.headers["WWW-Authenticate"] = (
        'Bearer realm="Panoptes", error="invalid_token", '
        'error_description="The access token is invalid"'
    )
    response.headers["Cache-Control"] = "no-store"
    return response

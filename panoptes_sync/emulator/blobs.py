"""The emulator's blob store: signed upload/download URLs, as Azure storage hands them out."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import logging
from urllib.parse import urlencode

from flask import Blueprint, Response, request

from panoptes_sync.emulator.context import get_context, public_url

__all__ = ["blueprint", "read_blob", "signed_url", "store_blob"]

logger = logging.getLogger(__name__)

blueprint = Blueprint("blobs", __name__)

_AZURE_AUTH_FAILED = (
    '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
    "<Message>Server failed to authenticate the request. Make sure the value of Authorization "
    "header is formed correctly including the signature.</Message></Error>"
)


def _signing_key() -> bytes:
    key = get_context().database.get_meta("signing_key")
    return (key or "emulator").encode()


def _signature(path: str, permission: str, expiry: int) -> str:
    message = f"{path}|{permission}|{expiry}".encode()
    return hmac.new(_signing_key(), message, hashlib.sha256).hexdigest()


def signed_url(path: str, permission: str) -> str:
    """An absolute, expiring URL for ``path``; ``permission`` is ``cw`` (PUT) or ``r`` (GET)."""
    context = get_context()
    expiry = int(context.clock.now() + context.settings.upload_url_lifetime_s)
    query = {"sv": "2019-02-02", "se": expiry, "sp": permission}
    query["sig"] = _signature(path, permission, expiry)
    return public_url(path) + "?" + urlencode(query)


def _signature_valid(path: str, permission: str) -> bool:
    try:
        expiry = int(request.args.get("se", ""))
    except ValueError:
        return False
    if expiry < get_context().clock.now():
        return False
    expected = _signature(path, permission, expiry)
    return hmac.compare_digest(expected, request.args.get("sig", ""))


def store_blob(path: str, content_type: str, data: bytes) -> None:
    """Write (or overwrite) a blob."""
    context = get_context()
    context.database.execute(
        "INSERT INTO blobs (path, content_type, data, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (path) DO UPDATE SET content_type = excluded.content_type, "
        "data = excluded.data",
        (path, content_type, data, context.clock.now()),
    )


def read_blob(path: str) -> tuple[str, bytes] | None:
    """``(content_type, data)`` of a blob, or None."""
    row = get_context().database.query_one(
        "SELECT content_type, data FROM blobs WHERE path = ?", (path,)
    )
    return None if row is None else (str(row["content_type"]), bytes(row["data"]))


def _render_seeded_image(path: str) -> tuple[str, bytes] | None:
    """Render (once) the image of a seeded subject, on its first download."""
    from panoptes_sync.emulator.seed import seeded_image_index

    context = get_context()
    index = seeded_image_index(path, context.settings.seed)
    if index is None or context.answer_model is None:
        return None
    data = context.answer_model.subject_image(index)
    store_blob(path, "image/png", data)
    return "image/png", data


def _auth_failed() -> Response:
    return Response(_AZURE_AUTH_FAILED, status=403, content_type="application/xml")


@blueprint.put("/uploads/<path:name>")
def put_upload(name: str) -> Response:
    """The signed PUT of subject media (``x-ms-blob-type: BlockBlob``); 201 like Azure."""
    path = f"/uploads/{name}"
    if not _signature_valid(path, "cw"):
        return _auth_failed()
    content_type = request.headers.get("Content-Type", "application/octet-stream")
    store_blob(path, content_type, request.get_data())
    logger.debug("blob stored path=%s bytes=%d", path, request.content_length or 0)
    return Response(b"", status=201)


@blueprint.get("/uploads/<path:name>")
def get_upload(name: str) -> Response:
    """Public GET of subject media."""
    path = f"/uploads/{name}"
    blob = read_blob(path) or _render_seeded_image(path)
    if blob is None:
        return Response(b"BlobNotFound", status=404, content_type="text/plain")
    return Response(blob[1], status=200, content_type=blob[0])


@blueprint.get("/exports/<path:name>")
def get_export_blob(name: str) -> Response:
    """Signed GET of an export file, gzip-encoded when the settings say so."""
    path = f"/exports/{name}"
    if not _signature_valid(path, "r"):
        return _auth_failed()
    blob = read_blob(path)
    if blob is None:
        return Response(b"BlobNotFound", status=404, content_type="text/plain")
    content_type, data = blob
    response = Response(status=200, content_type=content_type)
    if get_context().settings.export_gzip:
        response.set_data(gzip.compress(data, mtime=0))
        response.headers["Content-Encoding"] = "gzip"
    else:
        response.set_data(data)
    return response

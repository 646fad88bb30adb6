"""The real panoptes-client, hardened: timeouts, bounded backoff, re-authentication, typed errors.

`ResilientPanoptes` subclasses `panoptes_client.Panoptes`, so every `Classification.where`,
`Workflow(...)` or raw `client.get(...)` inside ``with client:`` goes through one retry loop:

- Transient failures are retried with bounded backoff (`panoptes_sync.retry`), never creating
  a duplicate.
- The silent empty 401 that an expired token gets on ``/classifications/project`` triggers a
  fresh login and the request is repeated, instead of yielding an empty page.
- Every request has a timeout (the stock client sets none) through the session's adapter.
- Errors are typed (`panoptes_sync.errors`) and carry method, URL, status and body.
- Credentials are passed explicitly (read from the environment only by `credentials_from_env`
  at the entry point) and never logged.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from panoptes_client import Panoptes

from panoptes_sync.errors import PanoptesAuthError
from panoptes_sync.retry import (
    CountingTimeoutAdapter,
    RetryPolicy,
    error_for_response,
    error_message,
    send_with_retries,
)

__all__ = [
    "PanoptesCredentials",
    "ResilientPanoptes",
    "connect_panoptes",
    "credentials_from_env",
    "iterate_pages",
]

logger = logging.getLogger(__name__)

DEFAULT_CLIENT_ID = Panoptes._endpoint_client_ids["default"]
_JSON_HEADERS = {"Accept": "application/json", "Content-Type": "application/json"}


@dataclass(frozen=True)
class PanoptesCredentials:
    """Login for Panoptes; the password and client secret never appear in repr or logs."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)


def credentials_from_env(environ: Mapping[str, str]) -> PanoptesCredentials:
    """Read Panoptes credentials from environment variables (call this at the entry point only).

    Args:
        environ: Usually ``os.environ``. Reads ZOO_PANOPTES_USERNAME / ZOO_PANOPTES_PASSWORD
            (falling back to panoptes-client's PANOPTES_USERNAME / PANOPTES_PASSWORD),
            PANOPTES_CLIENT_ID and PANOPTES_CLIENT_SECRET.

    Returns:
        The credentials; fields absent from the environment are None (anonymous access).
    """

    def first(*names: str) -> str | None:
        return next((environ[n] for n in names if environ.get(n)), None)

    return PanoptesCredentials(
        username=first("ZOO_PANOPTES_USERNAME", "PANOPTES_USERNAME"),
        password=first("ZOO_PANOPTES_PASSWORD", "PANOPTES_PASSWORD"),
        client_id=first("ZOO_PANOPTES_CLIENT_ID", "PANOPTES_CLIENT_ID"),
        client_secret=first("ZOO_PANOPTES_CLIENT_SECRET", "PANOPTES_CLIENT_SECRET"),
    )


class ResilientPanoptes(Panoptes):
    """`panoptes_client.Panoptes` with timeouts, bounded retries, re-login on 401, typed errors.

    Use it as the thread's client with ``with client:`` so that the library's object API
    (``Classification.where``, ``Workflow(...)``) goes through it.

    Args:
        endpoint: Panoptes host, e.g. ``https://www.zooniverse.org`` (no trailing slash).
        credentials: Login; anonymous when username/password and client secret are None.
        policy: Retry, backoff and timeout settings.
        sleep: Called with seconds to wait between retries (injectable for tests).
        rng: Jitter source (seeded for reproducible tests).
    """

    def __init__(
        self,
        endpoint: str,
        credentials: PanoptesCredentials | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        credentials = credentials or PanoptesCredentials()
        self._ready = False
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.refresh_token: str | None = None
        self.bearer_expires: datetime | None = None
        super().__init__(endpoint=endpoint.rstrip("/"), username="", password="")
        self.username = credentials.username
        self.password = credentials.password
        self.client_id = credentials.client_id or DEFAULT_CLIENT_ID
        self.client_secret = credentials.client_secret
        self.redirect_url = None
        self.admin = False
        self._adapter = CountingTimeoutAdapter(self.policy.timeout_s)
        self.session.mount("http://", self._adapter)
        self.session.mount("https://", self._adapter)
        self._ready = True

    @property
    def request_count(self) -> int:
        """HTTP requests sent through this client so far, retries and media uploads included."""
        return self._adapter.request_count

    @contextmanager
    def request_cap(self, max_requests: int | None) -> Iterator[None]:
        """Within the block, send at most ``max_requests`` more requests (None: no cap).

        Raises:
            RequestCapError: instead of sending the request that would exceed the cap.
        """
        previous = self._adapter.request_limit
        if max_requests is not None:
            self._adapter.request_limit = self.request_count + max_requests
        try:
            yield
        finally:
            self._adapter.request_limit = previous

    def send_with_retries(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """Send one request through `panoptes_sync.retry.send_with_retries` with this policy.

        Raises:
            PanoptesRetriesExhaustedError: Every attempt failed transiently.
        """
        return send_with_retries(
            self.session, self.policy, self._rng, self._sleep, method, url, **kwargs
        )

    def http_request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        etag: str | None = None,
        endpoint: str | None = None,
        retry: bool = False,
    ) -> requests.Response:
        """Send an API request (the stock client's ``retry`` flag is ignored: we always retry).

        Raises:
            PanoptesRequestError: On any 4xx/5xx after retries and re-authentication.
        """
        method = method.upper()
        url = f"{endpoint}/{path}" if endpoint else f"{self.endpoint}/api{path}"
        params = dict(params or {})
        for reauth in range(self.policy.max_reauthentications + 1):
            request_headers = dict(self._http_headers["default"])
            request_headers.update(self._http_headers.get(method, {}))
            request_headers.update(headers or {})
            token = self.get_bearer_token()
            if self.logged_in and token:
                request_headers["Authorization"] = f"Bearer {token}"
            if etag:
                request_headers["If-Match"] = etag
            response = self.send_with_retries(
                method, url, params=params, headers=request_headers, json=json
            )
            if response.status_code != 401 or not self._can_login():
                break
            if reauth < self.policy.max_reauthentications:
                logger.warning("panoptes 401, logging in again url=%s attempt=%d", url, reauth + 1)
                self.reauthenticate()
        if response.status_code >= 400:
            raise error_for_response(method, url, response)
        return response

    def _can_login(self) -> bool:
        return bool(self.client_secret or (self.username and self.password))

    def reauthenticate(self) -> None:
        """Forget the token and session, then log in and fetch a new token."""
        self.bearer_token = None
        self.refresh_token = None
        self.bearer_expires = None
        if not self.client_secret:
            self.logged_in = False
            self.session.cookies.clear()
        self.get_bearer_token()

    def login(self, username: str | None = None, password: str | None = None) -> Any:
        """Devise session login (``/users/sign_in``), with retries and typed errors.

        Returns:
            The sign-in response, or None when already logged in or anonymous.

        Raises:
            PanoptesAuthError: The credentials were refused or no CSRF token was sent.
        """
        if not getattr(self, "_ready", False) or self.logged_in:
            return None
        self.username = username or self.username
        self.password = password or self.password
        if not self.username or not self.password:
            return None
        url = f"{self.endpoint}/users/sign_in"
        first = self.send_with_retries("GET", url, headers=_JSON_HEADERS)
        csrf = first.headers.get("X-CSRF-Token")
        if first.status_code >= 400 or not csrf:
            raise PanoptesAuthError(
                "no X-CSRF-Token from the sign-in page",
                method="GET",
                url=url,
                status=first.status_code,
                body=first.text,
            )
        body = {
            "authenticity_token": csrf,
            "user": {"login": self.username, "password": self.password, "remember_me": True},
        }
        response = self.send_with_retries("POST", url, json=body, headers=_JSON_HEADERS)
        if response.status_code != 200:
            raise PanoptesAuthError(
                f"{error_message(response)}; check PANOPTES_USERNAME and PANOPTES_PASSWORD",
                method="POST",
                url=url,
                status=response.status_code,
                body=response.text,
            )
        self.logged_in = True
        self.logged_in_user_id = int(response.json()["users"][0]["id"])
        return response

    def get_bearer_token(self) -> str | None:
        """Return a valid bearer token, logging in or refreshing (with retries) as needed.

        Returns:
            The token, or None for anonymous access.

        Raises:
            PanoptesAuthError: The token endpoint refused every grant.
        """
        if not getattr(self, "_ready", False):
            return None
        if self.valid_bearer_token():
            return self.bearer_token
        if self.client_secret:
            data = {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            }
        else:
            if not self.logged_in and not self.login():
                return None
            data = {"grant_type": "password", "client_id": self.client_id}
        if self.bearer_token and self.refresh_token:
            data = {
                "grant_type": "refresh_token",
                "refresh_token": self.refresh_token,
                "client_id": self.client_id,
            }
        url = f"{self.endpoint}/oauth/token"
        response = self.send_with_retries("POST", url, data=data)
        if response.status_code >= 400 or "access_token" not in response.text:
            if data["grant_type"] == "refresh_token":
                logger.warning(
                    "panoptes token refresh refused status=%d; logging in again",
                    response.status_code,
                )
                self.reauthenticate()
                return self.bearer_token
            raise PanoptesAuthError(
                error_message(response),
                method="POST",
                url=url,
                status=response.status_code,
                body=response.text,
            )
        payload = response.json()
        self.bearer_token = payload["access_token"]
        self.refresh_token = payload.get("refresh_token")
        self.bearer_expires = datetime.now() + timedelta(seconds=int(payload["expires_in"]))
        if self.client_secret:
            self.logged_in = True
        return self.bearer_token

    def valid_bearer_token(self) -> bool:
        """Whether the token exists and is more than two minutes from expiry."""
        if self.bearer_token is None or self.bearer_expires is None:
            return False
        return datetime.now() + timedelta(minutes=2) <= self.bearer_expires

    def upload_media(self, url: str, data: bytes, content_type: str) -> None:
        """PUT media bytes to a signed upload URL returned by subject creation.

        Args:
            url: Absolute signed URL (no auth header is sent, as Panoptes requires).
            data: The file's bytes.
            content_type: MIME type, e.g. ``image/png``.

        Raises:
            PanoptesRequestError: The upload failed after retries.
        """
        headers = {"Content-Type": content_type, "x-ms-blob-type": "BlockBlob"}
        response = self.send_with_retries("PUT", url, data=data, headers=headers)
        if response.status_code >= 400:
            raise error_for_response("PUT", url, response)


def iterate_pages(
    client: ResilientPanoptes,
    path: str,
    slug: str,
    params: Mapping[str, Any] | None = None,
    page_size: int = 100,
) -> Iterator[dict[str, Any]]:
    """Yield every resource of a page-numbered index (``?page=N``), one request per page.

    Follows ``meta.<slug>.next_href`` only as a "more pages" flag, so each page is a fresh,
    retried request (the stock paginator's next-page GETs are never retried).

    Args:
        client: A logged-in client.
        path: API path, e.g. ``/subjects``.
        slug: Resource type key, e.g. ``subjects``.
        params: Filters, e.g. ``{"project_id": 5733}``.
        page_size: Resources per request (Panoptes caps it at 100; workflows at 25).

    Yields:
        Each resource, in the server's order.
    """
    page = 1
    while True:
        query = {**(params or {}), "page": page, "page_size": page_size}
        body, _ = client.get(path, params=query)
        resources = (body or {}).get(slug, [])
        yield from resources
        if not resources or not (body or {}).get("meta", {}).get(slug, {}).get("next_href"):
            return
        page += 1


def connect_panoptes(
    endpoint: str,
    credentials: PanoptesCredentials | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> ResilientPanoptes:
    """Build a `ResilientPanoptes` and log in (the token is fetched on the first API call).

    Args:
        endpoint: Panoptes host, no trailing slash.
        credentials: Login; see `credentials_from_env`.
        policy: Retry settings.
        sleep: Wait function between retries.
        rng: Jitter source.

    Returns:
        The logged-in client. Use ``with client:`` around object-API calls.

    Raises:
        PanoptesAuthError: The login was refused.
    """
    client = ResilientPanoptes(endpoint, credentials, policy=policy, sleep=sleep, rng=rng)
    client.login()
    logger.info(
        "panoptes connected endpoint=%s user=%s", client.endpoint, client.username or "anonymous"
    )
    return client

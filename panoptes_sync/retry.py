"""Retrying one Panoptes request: the backoff policy, idempotency, and typed errors.

5xx, 429 (honouring ``Retry-After``), timeouts and dropped connections are retried with bounded
exponential backoff and jitter; each retry is logged. Non-idempotent POSTs (creating a subject or
a set) are retried only where the server cannot have acted (429, 503, connect timeout), so a
retry never creates a duplicate. `panoptes_sync.client.ResilientPanoptes` sends every request
through `send_with_retries`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from panoptes_sync.errors import (
    ConfigError,
    PanoptesAuthError,
    PanoptesNotFoundError,
    PanoptesPreconditionError,
    PanoptesRequestError,
    PanoptesRetriesExhaustedError,
    RequestCapError,
)

__all__ = [
    "CountingTimeoutAdapter",
    "RetryPolicy",
    "error_for_response",
    "error_message",
    "send_with_retries",
]

logger = logging.getLogger(__name__)

_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Token grants are safe to repeat: a repeated password grant only issues another token, and a
# refresh grant that lost its response falls back to a fresh login (see get_bearer_token).
_IDEMPOTENT_POST_SUFFIXES = (
    "retired_subjects",
    "unretire_subjects",
    "/users/sign_in",
    "/oauth/token",
)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for transient Panoptes failures.

    Attributes:
        max_attempts: Tries per request, the first included.
        base_delay_s: Delay before the first retry; doubles each retry.
        max_delay_s: Cap on one backoff delay (and on an honoured ``Retry-After``).
        timeout_s: Connect and read timeout of every request.
        max_reauthentications: Fresh logins allowed per request after a 401.
    """

    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    timeout_s: float = 30.0
    max_reauthentications: int = 2

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"retry max_attempts={self.max_attempts} must be >= 1")
        if self.timeout_s <= 0 or self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ConfigError(
                f"retry timeout_s={self.timeout_s} must be > 0 and delays >= 0 "
                f"(base_delay_s={self.base_delay_s}, max_delay_s={self.max_delay_s})"
            )

    def delay_s(self, attempt: int, rng: random.Random, retry_after: str | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based).

        Args:
            attempt: Which retry this is, starting at 1.
            rng: Source of jitter.
            retry_after: The response's ``Retry-After`` header (seconds), if any.

        Returns:
            The delay, at most ``max_delay_s``.
        """
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), self.max_delay_s)
            except ValueError:
                pass
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return ceiling * (0.5 + 0.5 * rng.random())


class CountingTimeoutAdapter(HTTPAdapter):
    """Transport adapter that applies a default timeout and counts every request sent.

    With ``request_limit`` set, a request that would make the count exceed it is not sent:
    `RequestCapError` is raised instead.
    """

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        self.request_count = 0
        self.request_limit: int | None = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send with the default timeout unless the caller set one; count the request."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        if self.request_limit is not None and self.request_count >= self.request_limit:
            raise RequestCapError(
                f"request cap reached before {request.method} {request.url}", self.request_limit
            )
        self.request_count += 1
        return super().send(request, **kwargs)


def _is_idempotent(method: str, url: str) -> bool:
    if method in _IDEMPOTENT_METHODS:
        return True
    path = url.split("?", 1)[0]
    return "/links/" in path or path.endswith(_IDEMPOTENT_POST_SUFFIXES)


def error_message(response: requests.Response) -> str:
    """The error text of a failed response: its JSON ``errors`` or ``error``, else its body."""
    try:
        payload = response.json()
    except ValueError:
        return response.text[:200] or response.reason or "empty body"
    if isinstance(payload, dict):
        if isinstance(payload.get("errors"), list):
            return ", ".join(str(e.get("message", e)) for e in payload["errors"])
        if "error" in payload:
            return str(payload.get("error_description") or payload["error"])
    return response.text[:200]


def error_for_response(method: str, url: str, response: requests.Response) -> PanoptesRequestError:
    """Build the typed error for a failed (4xx/5xx) response.

    Args:
        method: HTTP method sent.
        url: URL requested.
        response: The failed response.

    Returns:
        The matching `PanoptesRequestError` subclass, carrying status, URL and body.
    """
    status = response.status_code
    cls: type[PanoptesRequestError] = PanoptesRequestError
    if status in (401, 403):
        cls = PanoptesAuthError
    elif status == 404:
        cls = PanoptesNotFoundError
    elif status in (409, 412, 428):
        cls = PanoptesPreconditionError
    return cls(error_message(response), method=method, url=url, status=status, body=response.text)


def send_with_retries(
    session: requests.Session,
    policy: RetryPolicy,
    rng: random.Random,
    sleep: Callable[[float], None],
    method: str,
    url: str,
    **kwargs: Any,
) -> requests.Response:
    """Send one request, retrying transient failures with bounded backoff.

    Args:
        session: the HTTP session.
        policy: attempts and backoff.
        rng: jitter source.
        sleep: called with the seconds to wait between attempts.
        method: HTTP method.
        url: Absolute URL.
        **kwargs: Passed to ``requests.Session.request`` (params, json, data, headers).

    Returns:
        The first non-transient response (which may still be a 4xx).

    Raises:
        PanoptesRetriesExhaustedError: Every attempt failed transiently.
    """
    method = method.upper()
    idempotent = _is_idempotent(method, url)
    last_status: int | None = None
    last_body = ""
    last_reason = ""
    for attempt in range(1, policy.max_attempts + 1):
        retry_after = None
        try:
            response = session.request(method, url, **kwargs)
        except requests.exceptions.ConnectTimeout as exc:
            last_status, last_body, last_reason = None, "", f"connect timeout: {exc}"
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            last_status, last_body, last_reason = None, "", f"{type(exc).__name__}: {exc}"
            if not idempotent:
                raise PanoptesRetriesExhaustedError(
                    f"{last_reason}; not retried because the request is not idempotent",
                    method=method,
                    url=url,
                    status=None,
                ) from exc
        else:
            status = response.status_code
            transient = status == 429 or status >= 500
            if not transient or (not idempotent and status not in (429, 503)):
                return response
            last_status, last_body = status, response.text
            last_reason = f"HTTP {status}"
            retry_after = response.headers.get("Retry-After")
        if attempt == policy.max_attempts:
            break
        delay = policy.delay_s(attempt, rng, retry_after)
        logger.warning(
            "panoptes retry method=%s url=%s reason=%r attempt=%d delay_s=%.2f",
            method,
            url,
            last_reason,
            attempt,
            delay,
        )
        sleep(delay)
    raise PanoptesRetriesExhaustedError(
        f"{last_reason} after {policy.max_attempts} attempts",
        method=method,
        url=url,
        status=last_status,
        body=last_body,
    )

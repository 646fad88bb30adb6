"""Errors raised by panoptes_sync.

Hierarchy::

    PanoptesSyncError
    ├── EmulatorError
    │   ├── EmulatorConfigError (also ValueError)
    │   └── EmulatorStartupError (also RuntimeError)
    ├── PanoptesRequestError              an HTTP exchange with Panoptes failed
    │   ├── PanoptesAuthError             (also PermissionError) 401/403, login or token refused
    │   ├── PanoptesNotFoundError         (also LookupError) 404
    │   ├── PanoptesPreconditionError     409/412/428, stale or missing If-Match
    │   ├── PanoptesResponseError         (also ValueError) a 2xx body we cannot use
    │   └── PanoptesRetriesExhaustedError (also ConnectionError) transient failures persisted
    ├── PushError                         (also ValueError) a push that cannot be planned or resumed
    │   └── RequestCapError               a push reached its request cap (nothing over it was sent)
    ├── ConfigError                       (also ValueError) a setting is missing or invalid
    ├── StoreError                        (also RuntimeError) the database cannot be used
    ├── ExportFormatError                 (also ValueError) an export CSV cannot be read at all
    └── AggregationError                  (also ValueError) votes cannot be aggregated as asked
"""

from __future__ import annotations

__all__ = [
    "AggregationError",
    "ConfigError",
    "EmulatorConfigError",
    "EmulatorError",
    "EmulatorStartupError",
    "ExportFormatError",
    "PanoptesAuthError",
    "PanoptesNotFoundError",
    "PanoptesPreconditionError",
    "PanoptesRequestError",
    "PanoptesResponseError",
    "PanoptesRetriesExhaustedError",
    "PanoptesSyncError",
    "PushError",
    "RequestCapError",
    "StoreError",
    "error_line",
]


class PanoptesSyncError(Exception):
    """Root of every error raised by panoptes_sync."""


class EmulatorError(PanoptesSyncError):
    """A problem with the local Panoptes emulator."""


class EmulatorConfigError(EmulatorError, ValueError):
    """An emulator setting (or a ``--fault`` rule) is invalid."""


class EmulatorStartupError(EmulatorError, RuntimeError):
    """The emulator could not start (port in use, unreadable state file, ...)."""


class PanoptesRequestError(PanoptesSyncError):
    """An HTTP request to Panoptes failed.

    Attributes:
        method: HTTP method, upper case.
        url: full request URL (never contains credentials).
        status: HTTP status, or None when no response arrived (timeout, dropped connection).
        body: response body, truncated to 2000 characters ("" when none).
    """

    def __init__(
        self, message: str, *, method: str, url: str, status: int | None, body: str = ""
    ) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body[:2000]
        shown = status if status is not None else "no response"
        super().__init__(f"{method} {url} -> {shown}: {message}")


class PanoptesAuthError(PanoptesRequestError, PermissionError):
    """Login, token or authorisation was refused; check PANOPTES_USERNAME/PANOPTES_PASSWORD."""


class PanoptesNotFoundError(PanoptesRequestError, LookupError):
    """The requested Panoptes resource does not exist."""


class PanoptesPreconditionError(PanoptesRequestError):
    """A write was refused because its If-Match ETag was missing or stale; re-GET and retry."""


class PanoptesResponseError(PanoptesRequestError, ValueError):
    """Panoptes answered with a success status but a body this package cannot use."""


class PanoptesRetriesExhaustedError(PanoptesRequestError, ConnectionError):
    """Transient failures (5xx, 429, timeouts, dropped connections) outlasted every retry."""


class PushError(PanoptesSyncError, ValueError):
    """A push request is invalid (empty, over its cap, missing images or ids) or cannot resume."""


class RequestCapError(PushError):
    """A capped push reached its request limit; the request over it was not sent.

    Attributes:
        limit: the request count the cap allowed.
    """

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class ConfigError(PanoptesSyncError, ValueError):
    """A setting is missing, of the wrong type, or unknown; the message names the setting."""


class StoreError(PanoptesSyncError, RuntimeError):
    """The database cannot be opened, migrated or written; the message names the URL."""


class ExportFormatError(PanoptesSyncError, ValueError):
    """A Panoptes export CSV cannot be read at all (missing file, header or required columns).

    Single bad rows are not errors: they are reported and skipped.
    """


class AggregationError(PanoptesSyncError, ValueError):
    """Votes cannot be aggregated as asked (a schema without Panoptes mapping, no versions)."""


def error_line(error: BaseException) -> str:
    """``error: <Type>: <message>`` on one line: how every command line reports a known failure.

    Args:
        error: the exception caught at a command line's boundary.

    Returns:
        The line, with the message's line breaks and runs of blanks folded into single spaces.
    """
    return f"error: {type(error).__name__}: {' '.join(str(error).split())}"

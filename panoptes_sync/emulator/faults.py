"""Seeded fault injection: 5xx/429 answers, HTML error pages, latency, drops, early token expiry."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator, Sequence

from flask import Response, g, request

from panoptes_sync.emulator.http import error_response
from panoptes_sync.emulator.settings import FaultRule

__all__ = ["FaultInjector", "route_name"]

logger = logging.getLogger(__name__)

_HTML_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def route_name(path: str) -> str:
    """The name fault rules match: ``/api/<name>/...``, ``oauth``, ``sign_in``, ``uploads``, ..."""
    parts = [part for part in path.split("/") if part]
    if not parts:
        return ""
    if parts[0] == "api":
        return parts[1] if len(parts) > 1 else ""
    if parts[0] == "users" and parts[1:2] == ["sign_in"]:
        return "sign_in"
    return parts[0]


class FaultInjector:
    """Decides, per request and with one seeded generator per rule, which fault to inject.

    Args:
        rules: the fault rules, checked in order; the first that fires wins.
        seed: the emulator seed.
    """

    def __init__(self, rules: Sequence[FaultRule], seed: int) -> None:
        self.rules = list(rules)
        self._generators = [random.Random(f"{seed}:fault:{i}") for i in range(len(self.rules))]
        self._fired = [0] * len(self.rules)
        self._lock = threading.Lock()

    @property
    def fired(self) -> list[int]:
        """How many times each rule fired."""
        return list(self._fired)

    def choose(self, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any."""
        name = route_name(path)
        with self._lock:
            for index, rule in enumerate(self.rules):
                if not rule.matches(path, name):
                    continue
                if rule.limit is not None and self._fired[index] >= rule.limit:
                    continue
                if self._generators[index].random() < rule.rate:
                    self._fired[index] += 1
                    return rule
        return None

    def before_request(self) -> Response | None:
        """Flask hook: answer with the fault, or mark the request for a later one."""
        rule = self.choose(request.path)
        if rule is None:
            return None
        logger.info(
            "fault injected kind=%s status=%d path=%s", rule.kind, rule.status, request.path
        )
        headers = {"Retry-After": str(rule.retry_after_s)} if rule.status == 429 else {}
        if rule.kind == "latency":
            time.sleep(rule.latency_s)
            return None
        if rule.kind == "expire":
            g.emulator_force_expiry = True
            return None
        if rule.kind == "drop":
            g.emulator_drop = True
            return None
        if rule.kind == "html":
            reason = _REASONS.get(rule.status, "Error")
            page = _HTML_PAGE.format(status=rule.status, reason=reason)
            response = Response(page, status=rule.status, content_type="text/html")
            response.headers.update(headers)
            return response
        message = (
            "Rate limit exceeded; retry later"
            if rule.status == 429
            else f"Injected fault: HTTP {rule.status}"
        )
        return error_response(rule.status, message, headers)

    @staticmethod
    def after_request(response: Response) -> Response:
        """Flask hook: for ``drop`` faults, send half the body then break the connection."""
        if not g.get("emulator_drop"):
            return response
        body = response.get_data()
        half = body[: len(body) // 2]

        def truncated() -> Iterator[bytes]:
            yield half
            raise ConnectionAbortedError("emulator fault: connection dropped mid-response")

        dropped = Response(truncated(), status=response.status_code)
        for key, value in response.headers.items():
            if key.lower() != "content-length":
                dropped.headers[key] = value
        dropped.headers["Content-Length"] = str(max(len(body), 1))
        return dropped

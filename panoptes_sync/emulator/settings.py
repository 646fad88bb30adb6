"""Settings of the local Panoptes emulator, and its fault-injection rules."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from panoptes_sync.errors import EmulatorConfigError

__all__ = ["ANSWER_MODELS", "FAULT_KINDS", "EmulatorSettings", "FaultRule", "parse_fault_rule"]

#: What a fault rule does to a matching request.
#: ``error``: answer ``status`` with the canonical JSON error body (429 adds ``Retry-After``);
#: ``html``: answer ``status`` with an HTML page, as a proxy (nginx, Azure front door) would;
#: ``drop``: send the headers and half the body, then close the connection;
#: ``latency``: wait ``latency_s`` seconds, then answer normally;
#: ``expire``: treat the bearer token as expired (empty-body 401 on guarded reads).
FAULT_KINDS = ("error", "html", "drop", "latency", "expire")

#: Where simulated subject images and volunteer answers come from.
ANSWER_MODELS = ("simulated", "random")

#: The client id panoptes-client sends to production (panoptes.py ``_endpoint_client_ids``).
DEFAULT_CLIENT_ID = "ce310d45f951de68c4cc8ef46ca38cc0a008f607a2026680295757bfef99f43c"


@dataclass(frozen=True)
class FaultRule:
    """One fault to inject into matching requests, at a seeded random rate.

    Args:
        route: which requests: ``"*"`` (all), a resource name (the first path segment after
            ``/api``, e.g. ``"classifications"``, ``"subjects"``, ``"me"``), ``"oauth"``,
            ``"sign_in"``, ``"uploads"``, ``"exports"``, or a path prefix starting with ``/``
            (e.g. ``"/api/classifications/project"``).
        status: the HTTP status for ``error`` and ``html`` faults.
        rate: probability in [0, 1] that a matching request gets the fault.
        kind: one of ``FAULT_KINDS``.
        retry_after_s: the ``Retry-After`` header of 429 answers.
        latency_s: the delay of ``latency`` faults.
        limit: stop after this many injected faults (None: never stop).
    """

    route: str
    status: int = 503
    rate: float = 1.0
    kind: str = "error"
    retry_after_s: int = 1
    latency_s: float = 0.5
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise EmulatorConfigError(
                f"fault kind {self.kind!r} is unknown; use one of {', '.join(FAULT_KINDS)}"
            )
        if not 0.0 <= self.rate <= 1.0 or math.isnan(self.rate):
            raise EmulatorConfigError(f"fault rate {self.rate} is not in [0, 1]")
        if self.kind in ("error", "html") and not 400 <= self.status <= 599:
            raise EmulatorConfigError(f"fault status {self.status} is not a 4xx or 5xx status")
        if not self.route:
            raise EmulatorConfigError("fault route is empty; use '*' to match every request")

    def matches(self, path: str, route_name: str) -> bool:
        """Whether a request for ``path`` (route name ``route_name``) is subject to this rule."""
        if self.route == "*":
            return True
        if self.route.startswith("/"):
            return path.startswith(self.route)
        return self.route == route_name


def parse_fault_rule(text: str) -> FaultRule:
    """Parse a CLI fault rule ``route:what:rate[:param]``.

    ``what`` is an HTTP status (JSON error body; ``param`` is Retry-After for 429), ``html<status>``
    (an HTML error page), ``drop``, ``latency`` (``param`` = seconds) or ``expire``.

    Examples: ``classifications:503:0.1``, ``*:429:0.05:2``, ``subjects:html502:0.2``,
    ``classifications:drop:0.1``, ``*:latency:1.0:0.25``, ``classifications:expire:0.5``.

    Args:
        text: the rule.

    Returns:
        The rule.

    Raises:
        EmulatorConfigError: if the text does not parse.
    """
    parts = text.split(":")
    if len(parts) not in (3, 4):
        raise EmulatorConfigError(
            f"fault rule {text!r} must look like route:status:rate[:param], "
            "e.g. classifications:503:0.1"
        )
    route, what, rate_text = parts[:3]
    param = parts[3] if len(parts) == 4 else None
    try:
        rate = float(rate_text)
        kwargs: dict[str, object] = {"route": route, "rate": rate}
        if what.isdigit():
            kwargs.update(kind="error", status=int(what))
            if param is not None:
                kwargs["retry_after_s"] = int(param)
        elif what.startswith("html") and what[4:].isdigit():
            kwargs.update(kind="html", status=int(what[4:]))
        elif what in ("drop", "expire"):
            kwargs["kind"] = what
        elif what == "latency":
            kwargs["kind"] = "latency"
            if param is not None:
                kwargs["latency_s"] = float(param)
        else:
            raise EmulatorConfigError(
                f"fault rule {text!r}: {what!r} is not a status, html<status>, drop, latency "
                "or expire"
            )
    except ValueError as error:
        if isinstance(error, EmulatorConfigError):
            raise
        raise EmulatorConfigError(f"fault rule {text!r} has a non-numeric rate or param") from error
    return FaultRule(**kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class EmulatorSettings:
    """Everything the emulator needs, resolved once at the entry point.

    Args:
        state_path: SQLite file holding the emulator's state (created and seeded if missing,
            reused as-is if it exists, so the state survives restarts).
        subjects: simulated subjects created when seeding.
        classifications: classifications made by simulated volunteers when seeding.
        login: the project owner's login.
        password: the project owner's password.
        seed: seed of every random choice (images, votes, selection, faults).
        token_lifetime_s: ``expires_in`` of bearer tokens.
        volunteer_rate_per_s: simulated classifications per second made in a background thread
            while serving (0 disables the thread; ``run_volunteers`` still works).
        image_size: side in pixels of simulated subject images.
        faults: fault-injection rules.
        project_id: id of the seeded project.
        workflow_id: id of the seeded workflow.
        project_slug: slug of the seeded project.
        client_id: OAuth application id accepted by ``/oauth/token``.
        client_secret: secret of that application (for the client_credentials grant).
        retirement_count: ``retirement.options.count`` of the seeded workflow.
        prioritized: initial ``prioritized`` flag of the seeded workflow.
        volunteers: number of simulated volunteer accounts.
        subject_upload_limit: per-user subject upload limit (403 beyond it).
        upload_url_lifetime_s: validity of signed upload and download URLs.
        export_delay_s: how long an export stays ``creating`` before it is ``ready``.
        export_rate_limit_s: a second export of the same resource within this window is
            silently cancelled (stays ``creating``), as Panoptes does for non-admins; 0 disables.
        export_gzip: serve exports with ``Content-Encoding: gzip`` as the real blob store does.
        require_accept_header: answer 404 to ``/api`` requests without the JSON-API Accept header,
            as Panoptes' router does.
        answer_model: ``simulated`` (galaxies and volunteers from ``zoobot.datasets.simulated``)
            or ``random`` (seeded blob images and random tree walks; faster to start).
        other_users: extra ``(login, password)`` accounts that can log in but are not project
            collaborators (their ``classifications/project`` reads are empty, as on Panoptes).
    """

    state_path: Path
    subjects: int = 30
    classifications: int = 200
    login: str = "owner"
    password: str = "secret"
    seed: int = 0
    token_lifetime_s: int = 7200
    volunteer_rate_per_s: float = 0.0
    image_size: int = 64
    faults: list[FaultRule] | tuple[FaultRule, ...] = field(default_factory=tuple)
    project_id: int = 5733
    workflow_id: int = 6122
    project_slug: str = "zookeeper/galaxy-zoo"
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = "emulator-client-secret"
    retirement_count: int = 40
    prioritized: bool = False
    volunteers: int = 50
    subject_upload_limit: int = 100
    upload_url_lifetime_s: int = 300
    export_delay_s: float = 0.5
    export_rate_limit_s: float = 86400.0
    export_gzip: bool = True
    require_accept_header: bool = True
    answer_model: str = "simulated"
    other_users: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_path", Path(self.state_path))
        object.__setattr__(self, "faults", tuple(self.faults))
        object.__setattr__(self, "other_users", tuple(tuple(u) for u in self.other_users))
        logins = [self.login] + [user[0] for user in self.other_users]
        if len(set(logins)) != len(logins) or any(len(u) != 2 for u in self.other_users):
            raise EmulatorConfigError(
                f"emulator accounts must be distinct (login, password) pairs, got {logins}"
            )
        for name in ("subjects", "classifications", "volunteers", "subject_upload_limit"):
            if getattr(self, name) < 0:
                raise EmulatorConfigError(f"emulator setting {name}={getattr(self, name)} is < 0")
        if self.token_lifetime_s <= 0:
            raise EmulatorConfigError(
                f"emulator setting token_lifetime_s={self.token_lifetime_s} must be > 0"
            )
        if self.volunteer_rate_per_s < 0:
            raise EmulatorConfigError(
                f"emulator setting volunteer_rate_per_s={self.volunteer_rate_per_s} must be >= 0"
            )
        if not 8 <= self.image_size <= 1024:
            raise EmulatorConfigError(
                f"emulator setting image_size={self.image_size} must be in [8, 1024]"
            )
        if self.volunteers < 1:
            raise EmulatorConfigError("emulator setting volunteers must be >= 1")
        if self.retirement_count < 1:
            raise EmulatorConfigError("emulator setting retirement_count must be >= 1")
        if self.answer_model not in ANSWER_MODELS:
            raise EmulatorConfigError(
                f"emulator setting answer_model={self.answer_model!r} is not one of "
                f"{', '.join(ANSWER_MODELS)}"
            )
        if not self.login or not self.password:
            raise EmulatorConfigError("emulator owner login and password must be non-empty")

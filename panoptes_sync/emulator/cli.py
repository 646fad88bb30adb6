"""Command line of the emulator: parse flags, build ``EmulatorSettings``, serve until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from panoptes_sync.emulator.server import EmulatorServer
from panoptes_sync.emulator.settings import ANSWER_MODELS, EmulatorSettings, parse_fault_rule
from panoptes_sync.errors import EmulatorConfigError, PanoptesSyncError, error_line
from zoobot.logs import LOG_LEVELS, configure_logging

__all__ = ["build_parser", "main", "settings_from_args"]

logger = logging.getLogger(__name__)

#: Environment variable with the owner's password (kept out of the process list, unlike --user).
PASSWORD_ENV = "ZOO_EMULATOR_PASSWORD"
#: The owner's password when neither the variable nor ``--user LOGIN:PASSWORD`` gives one.
DEFAULT_PASSWORD = "secret"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m panoptes_sync.emulator``."""
    parser = argparse.ArgumentParser(
        prog="python -m panoptes_sync.emulator",
        description=(
            "Serve a local Panoptes (Zooniverse API) emulator on 127.0.0.1 with the project "
            "zookeeper/galaxy-zoo (GZ DECaLS DR5 workflow), simulated subjects and volunteers. "
            "Point panoptes-client at it with Panoptes.connect(endpoint='http://127.0.0.1:PORT')."
        ),
        epilog=(
            f"Environment: {PASSWORD_ENV} sets the owner's password without showing it in the "
            f"process list (default {DEFAULT_PASSWORD!r}; a password in --user wins). The state "
            "file stores salted scrypt hashes, never passwords."
        ),
    )
    parser.add_argument("--port", type=int, default=8765, help="port to serve on (0: any free)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind")
    parser.add_argument("--subjects", type=int, default=30, help="simulated subjects to seed")
    parser.add_argument("--classifications", type=int, default=200, help="classifications to seed")
    parser.add_argument(
        "--user",
        default="owner",
        metavar="LOGIN[:PASSWORD]",
        help=f"owner account; prefer the password in {PASSWORD_ENV} (a flag shows in ps)",
    )
    parser.add_argument(
        "--other-user",
        action="append",
        default=[],
        metavar="LOGIN:PASSWORD",
        help="an extra account that is not a project collaborator; repeatable",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        help="SQLite state file (reused if it exists); default: a new temporary file",
    )
    parser.add_argument(
        "--token-lifetime", type=int, default=7200, help="bearer token lifetime in seconds"
    )
    parser.add_argument(
        "--volunteer-rate",
        type=float,
        default=0.0,
        help="simulated classifications per second while serving",
    )
    parser.add_argument(
        "--answer-model",
        choices=ANSWER_MODELS,
        default="simulated",
        help="simulated: galaxies and volunteers from zoobot's simulator; random: faster start",
    )
    parser.add_argument("--image-size", type=int, default=64, help="subject image side (px)")
    parser.add_argument(
        "--retirement-count", type=int, default=40, help="classifications before retirement"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ROUTE:STATUS:RATE[:PARAM]",
        help=(
            "inject faults, e.g. classifications:503:0.1, *:429:0.05:2 (Retry-After 2), "
            "subjects:html502:0.2, classifications:drop:0.1, *:latency:1.0:0.25, "
            "classifications:expire:0.5; repeatable"
        ),
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default="INFO",
        help="logging level (stderr)",
    )
    return parser


def settings_from_args(
    args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> EmulatorSettings:
    """Build settings from parsed arguments and the environment.

    The owner's password comes from ``--user LOGIN:PASSWORD``, else ``ZOO_EMULATOR_PASSWORD``
    (empty: unset), else ``"secret"``.

    Raises:
        PanoptesSyncError: for a malformed ``--other-user`` or ``--fault``, or an empty login.
    """
    login, sep, password = args.user.partition(":")
    if sep:
        logger.warning(
            "the password in --user is visible in the process list; set %s instead", PASSWORD_ENV
        )
    else:
        password = (env or {}).get(PASSWORD_ENV) or DEFAULT_PASSWORD
    if not login:
        raise EmulatorConfigError(f"--user {args.user!r} must be LOGIN or LOGIN:PASSWORD")
    others = []
    for text in args.other_user:
        other_login, other_sep, other_password = text.partition(":")
        if not other_sep:
            raise EmulatorConfigError(f"--other-user {text!r} must be LOGIN:PASSWORD")
        others.append((other_login, other_password))
    state = args.state
    if state is None:
        state = Path(tempfile.mkdtemp(prefix="panoptes-emulator-")) / "emulator.sqlite3"
    return EmulatorSettings(
        state_path=state,
        subjects=args.subjects,
        classifications=args.classifications,
        login=login,
        password=password,
        seed=args.seed,
        token_lifetime_s=args.token_lifetime,
        volunteer_rate_per_s=args.volunteer_rate,
        retirement_count=args.retirement_count,
        answer_model=args.answer_model,
        image_size=args.image_size,
        other_users=tuple(others),
        faults=[parse_fault_rule(text) for text in args.fault],
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 after Ctrl-C, 1 on a known error, 2 on usage errors (argparse)."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        settings = settings_from_args(args, os.environ)
        server = EmulatorServer(settings, host=args.host, port=args.port)
    except PanoptesSyncError as error:
        print(error_line(error), file=sys.stderr)
        return 1
    print(server.endpoint, flush=True)
    logger.info(
        "emulator ready endpoint=%s project_id=%d workflow_id=%d slug=%s state=%s",
        server.endpoint,
        server.project_id,
        server.workflow_id,
        server.project_slug,
        settings.state_path,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("emulator stopped")
    return 0

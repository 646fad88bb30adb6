"""Command line of panoptes_sync: ``python -m panoptes_sync <command>``.

Results go to stdout (JSON or CSV), logs to stderr. Exit codes: 0 success, 1 a known failure
(a `PanoptesSyncError`), 2 a usage error. Adding a command is one decorated function::

    @command("sync", "Sync new classifications.", arg("--max-pages", type=int, help="..."))
    def run_sync(args: argparse.Namespace, settings: Settings) -> int: ...

Every setting of `Settings` (except credentials, which come from the environment only) is also a
flag of every command, e.g. ``--database-url``; see `panoptes_sync.config` for the precedence.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from panoptes_sync.aggregate import aggregate_export_files, aggregate_store
from panoptes_sync.backfill import backfill_export, backfill_workflow_versions
from panoptes_sync.client import (
    PanoptesCredentials,
    ResilientPanoptes,
    connect_panoptes,
    credentials_from_env,
)
from panoptes_sync.config import SECRET_SETTINGS, Settings, load_settings
from panoptes_sync.errors import ConfigError, PanoptesSyncError, error_line
from panoptes_sync.push import MODES, execute_push, plan_push, read_ranked_list
from panoptes_sync.retry import RetryPolicy
from panoptes_sync.settings_resolver import allowed_values
from panoptes_sync.store import (
    AggregationState,
    Base,
    SyncState,
    list_pushes,
    redact_url,
    session_scope,
    upgrade_database,
)
from panoptes_sync.sync import sync_classifications
from zoobot import strict_json
from zoobot.logs import configure_logging
from zoobot.schemas import Schema, get_schema

__all__ = ["COMMANDS", "Command", "arg", "command", "main"]

logger = logging.getLogger(__name__)

Runner = Callable[[argparse.Namespace, Settings], int]


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, help, extra arguments and the function that runs it."""

    name: str
    help: str
    arguments: tuple[tuple[tuple[str, ...], dict[str, Any]], ...]
    run: Runner


#: Registered subcommands, in registration order.
COMMANDS: dict[str, Command] = {}


def arg(*flags: str, **kwargs: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    """An argument of a command: the flags and keyword arguments of ``add_argument``."""
    return flags, kwargs


def command(name: str, help_text: str, *arguments: tuple) -> Callable[[Runner], Runner]:
    """Register the decorated function as the subcommand ``name``."""

    def register(run: Runner) -> Runner:
        COMMANDS[name] = Command(name, help_text, tuple(arguments), run)
        return run

    return register


def _settings_parser() -> argparse.ArgumentParser:
    """A parent parser with one flag per setting (default None = not given)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("settings (override config file and ZOO_* variables)")
    group.add_argument("--config", help="TOML config file (also ZOO_CONFIG).")
    group.add_argument("--debug", action="store_true", help="Show tracebacks of failures.")
    hints = typing.get_type_hints(Settings)
    for setting in fields(Settings):
        if setting.name in SECRET_SETTINGS:
            continue
        flag = "--" + setting.name.replace("_", "-")
        base = [t for t in typing.get_args(hints[setting.name]) if t is not type(None)]
        kind = base[0] if base else hints[setting.name]
        allowed = allowed_values(setting.metadata)
        shown = f" Allowed: {allowed}." if allowed else ""
        help_text = f"{setting.metadata['help']}{shown} [env ZOO_{setting.name.upper()}]"
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            group.add_argument(flag, type=kind, metavar=setting.name.upper(), help=help_text)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The full parser: one subparser per registered command, each with every setting flag."""
    parser = argparse.ArgumentParser(
        prog="python -m panoptes_sync",
        description="Sync Galaxy Zoo classifications, aggregate votes, push priorities.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parent = _settings_parser()
    for name, spec in COMMANDS.items():
        sub = subparsers.add_parser(name, help=spec.help, description=spec.help, parents=[parent])
        for flags, kwargs in spec.arguments:
            sub.add_argument(*flags, **kwargs)
    return parser


def _settings_from(args: argparse.Namespace) -> Settings:
    overrides = {
        f.name: getattr(args, f.name, None)
        for f in fields(Settings)
        if f.name not in SECRET_SETTINGS
    }
    return load_settings(args.config or os.environ.get("ZOO_CONFIG"), os.environ, overrides)


def _schema(settings: Settings) -> Schema | None:
    if settings.schema is None:
        return None
    try:
        return get_schema(settings.schema)
    except KeyError as error:
        raise ConfigError(str(error.args[0]) + " (setting schema / --schema)") from None


def _require_workflow(settings: Settings) -> int:
    if settings.workflow_id is None:
        raise ConfigError("no workflow id; pass --workflow-id or set ZOO_WORKFLOW_ID")
    return settings.workflow_id


def _print_json(value: Any) -> None:
    sys.stdout.write(strict_json.dumps(value, indent=2) + "\n")


@command(
    "aggregate",
    "Count votes per subject: from export files (--classifications-csv) or in the store.",
    arg("--classifications-csv", help="Classification export CSV to aggregate (file mode)."),
    arg("--workflows-csv", help="Workflows export CSV with every version of the workflow."),
    arg("--out", help="Write the per-subject CSV here (file mode; default stdout)."),
    arg("--target-major", type=int, help="Major version whose answer indices name the columns."),
    arg("--rebuild", action="store_true", help="Store mode: forget stored counts and recount."),
)
def run_aggregate(args: argparse.Namespace, settings: Settings) -> int:
    """Aggregate export files into a CSV, or the store's new classifications into vote_counts."""
    workflow_id = _require_workflow(settings)
    schema = _schema(settings)
    if args.classifications_csv:
        if not args.workflows_csv:
            raise ConfigError("file mode needs --workflows-csv (the workflows export)")
        table, report = aggregate_export_files(
            args.classifications_csv,
            args.workflows_csv,
            workflow_id,
            schema=schema,
            first_only=settings.first_only,
            target_major=args.target_major,
        )
        if args.out:
            table.to_csv(args.out, index=False)
            _print_json({"out": args.out, "subjects": len(table), **report.to_dict()})
        else:
            table.to_csv(sys.stdout, index=False)
            logger.info("aggregation report %s", strict_json.dumps(report.to_dict()))
        return 0
    engine = upgrade_database(settings.database_url)
    report = aggregate_store(
        engine, workflow_id, schema, first_only=settings.first_only, rebuild=args.rebuild
    )
    _print_json(report.to_dict())
    return 0


@command(
    "backfill",
    "Store an export's classifications (idempotent) and/or a workflows export's versions.",
    arg("--classifications-csv", help="Classification export CSV to store."),
    arg("--workflows-csv", help="Workflows export CSV whose versions to store."),
)
def run_backfill(args: argparse.Namespace, settings: Settings) -> int:
    """Backfill the store from export files."""
    if not args.classifications_csv and not args.workflows_csv:
        raise ConfigError("nothing to backfill; pass --classifications-csv and/or --workflows-csv")
    engine = upgrade_database(settings.database_url)
    result: dict[str, Any] = {}
    if args.workflows_csv:
        result["workflow_versions"] = backfill_workflow_versions(
            engine, args.workflows_csv, settings.workflow_id
        )
    if args.classifications_csv:
        report = backfill_export(
            engine, args.classifications_csv, settings.project_id, settings.export_chunk_size
        )
        result.update(report.to_dict())
    _print_json(result)
    return 0


@command("status", "Show what the store holds: row counts, sync and aggregation state, pushes.")
def run_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print a JSON summary of the store."""
    engine = upgrade_database(settings.database_url)
    with session_scope(engine) as session:
        counts = {
            name: session.scalar(select(func.count()).select_from(table))
            for name, table in sorted(Base.metadata.tables.items())
        }
        sync = {s.key: s.last_id for s in session.scalars(select(SyncState))}
        aggregation = {
            a.schema_name: {"last_classification_id": a.last_classification_id, **(a.options or {})}
            for a in session.scalars(select(AggregationState))
        }
        pushes = list_pushes(session)[-10:]
    _print_json(
        {
            "database": redact_url(settings.database_url),
            "rows": counts,
            "sync_state": sync,
            "aggregation_state": aggregation,
            "recent_pushes": pushes,
        }
    )
    return 0


def _connect(settings: Settings) -> ResilientPanoptes:
    """Log in to Panoptes with the settings' credentials (environment only) and retry policy."""
    from_env = credentials_from_env(os.environ)
    credentials = PanoptesCredentials(
        username=settings.panoptes_username or from_env.username,
        password=settings.panoptes_password or from_env.password,
        client_id=from_env.client_id,
        client_secret=from_env.client_secret,
    )
    policy = RetryPolicy(
        max_attempts=settings.max_retries + 1, timeout_s=settings.request_timeout_s
    )
    return connect_panoptes(settings.endpoint, credentials, policy=policy)


def _require_project(settings: Settings) -> int:
    if settings.project_id is None:
        raise ConfigError("no project id; pass --project-id or set ZOO_PROJECT_ID")
    return settings.project_id


@command(
    "sync",
    "Sync new classifications (and their subjects and workflow versions) from Panoptes.",
    arg("--max-pages", type=int, help="Stop after this many pages (default: max_pages_per_sync)."),
)
def run_sync(args: argparse.Namespace, settings: Settings) -> int:
    """Sync classifications newer than the stored last_id, one transaction per page."""
    project_id = _require_project(settings)
    max_pages = args.max_pages if args.max_pages is not None else settings.max_pages_per_sync
    engine = upgrade_database(settings.database_url)
    report = sync_classifications(
        _connect(settings),
        engine,
        project_id,
        page_size=settings.page_size,
        max_pages=max_pages or None,
    )
    _print_json(dataclasses.asdict(report))
    return 0


@command(
    "push",
    "Push a ranked list as prioritised subjects (new set) or re-prioritise a set's members.",
    arg("--ranked-csv", required=True, help="CSV: priority + subject_id/image_path/image_url."),
    arg("--mode", choices=MODES, default="new_set", help="new_set (default) or reprioritise."),
    arg("--subject-set-id", type=int, help="The set to re-prioritise (mode reprioritise)."),
    arg("--retire", default="", help="Comma-separated subject ids to retire from the workflow."),
    arg("--max-subjects", type=int, help="Cap on subjects per push (default: push_batch_size)."),
    arg("--set-name", help="Display name of the new subject set."),
    arg("--batch-id", help="Push id; default is a hash of the inputs, so a re-run resumes."),
    arg(
        "--image-root",
        action="append",
        default=[],
        help="A folder local images may also lie in (repeatable; the CSV's folder always may).",
    ),
)
def run_push(args: argparse.Namespace, settings: Settings) -> int:
    """Plan a push, then execute it (or with --dry-run only record and print the plan)."""
    project_id = _require_project(settings)
    workflow_id = _require_workflow(settings)
    try:
        retire = [int(value) for value in args.retire.split(",") if value.strip()]
    except ValueError as error:
        raise ConfigError(f"--retire must be comma-separated ids, got {args.retire!r}") from error
    plan = plan_push(
        read_ranked_list(args.ranked_csv),
        project_id,
        workflow_id,
        mode=args.mode,
        subject_set_id=args.subject_set_id,
        retire_subject_ids=retire,
        max_subjects=args.max_subjects or settings.push_batch_size,
        set_name=args.set_name,
        batch_id=args.batch_id,
        image_roots=[Path(args.ranked_csv).parent, *args.image_root],
    )
    engine = upgrade_database(settings.database_url)
    if settings.dry_run:
        execute_push(None, engine, plan, dry_run=True)
        _print_json({"dry_run": True, "plan": plan.to_dict()})
        return 0
    report = execute_push(
        _connect(settings), engine, plan, max_requests=settings.max_requests_per_push
    )
    _print_json({**dataclasses.asdict(report), "requests_per_subject": report.requests_per_subject})
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, resolve the settings, run one command; return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        settings = _settings_from(args)
    except ConfigError as error:
        sys.stderr.write(error_line(error) + "\n")
        return 2
    configure_logging(settings.log_level)
    try:
        return COMMANDS[args.command].run(args, settings)
    except ConfigError as error:
        logger.debug("usage error", exc_info=args.debug)
        sys.stderr.write(error_line(error) + "\n")
        return 2
    except PanoptesSyncError as error:
        if args.debug:
            logger.exception("command failed")
        sys.stderr.write(error_line(error) + "\n")
        return 1

"""The panoptes_sync service settings: one frozen dataclass, resolved once at the entry point.

Precedence, lowest first: defaults < TOML config file < ``ZOO_*`` environment variables < CLI flags.
Credentials (``ZOO_PANOPTES_USERNAME`` / ``ZOO_PANOPTES_PASSWORD``) come from the environment only
and are never shown by ``repr`` or logged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panoptes_sync.errors import ConfigError
from panoptes_sync.settings_resolver import (
    ENV_PREFIX,
    convert_setting,
    describe_dataclass,
    read_config_file,
    resolve_settings,
    setting,
)
from zoobot.logs import LOG_LEVELS

__all__ = [
    "ENV_PREFIX",
    "SECRET_SETTINGS",
    "Settings",
    "convert_setting",
    "describe_dataclass",
    "describe_settings",
    "load_settings",
    "setting_names",
]

#: Settings read from the environment only (never from a file or a flag, never logged).
SECRET_SETTINGS = frozenset({"panoptes_username", "panoptes_password"})


@dataclass(frozen=True)
class Settings:
    """Every setting of the panoptes_sync service (see each field's ``help``)."""

    database_url: str = setting(
        "sqlite:///zoo.sqlite3",
        "SQLAlchemy URL of the store: sqlite:///FILE (embedded) or postgresql+psycopg://USER@HOST/DB.",
    )
    endpoint: str = setting(
        "https://www.zooniverse.org",
        "Panoptes endpoint, without a trailing slash (the local emulator's URL in tests).",
    )
    project_id: int | None = setting(None, "Panoptes project id, e.g. 5733 for GZ DECaLS.", low=1)
    project_slug: str | None = setting(None, "Panoptes project slug (owner/name); informational.")
    workflow_id: int | None = setting(
        None, "Panoptes workflow id whose classifications are aggregated and prioritised.", low=1
    )
    page_size: int = setting(
        100, "Classifications per API page when syncing (Panoptes' limit: 100).", low=1, high=100
    )
    max_pages_per_sync: int = setting(
        0, "Stop a sync run after this many pages (0 = until caught up); resumes next run.", low=0
    )
    push_batch_size: int = setting(
        100, "Most subjects created or re-prioritised in one push batch (a safety cap).", low=0
    )
    max_requests_per_push: int = setting(
        1000, "Most HTTP requests one push batch may send before it stops (a safety cap).", low=0
    )
    dry_run: bool = setting(
        False, "Plan pushes and record them as 'planned' without writing to Zooniverse."
    )
    schema: str | None = setting(
        None,
        "Built-in schema (decals_dr5, gz2, rings) whose label columns votes are counted into; "
        "unset: one column per <task>_<answer index>.",
    )
    first_only: bool = setting(
        False, "Count only each volunteer's first classification of a subject (anonymous: all)."
    )
    export_chunk_size: int = setting(
        50_000, "Rows read per chunk when backfilling or aggregating an export CSV.", low=1
    )
    request_timeout_s: float = setting(
        60.0, "Seconds before an HTTP request to Panoptes times out.", low=0, low_open=True
    )
    max_retries: int = setting(
        5, "Retries of an idempotent Panoptes request on 5xx/429/timeouts.", low=0
    )
    log_level: str = setting(
        "INFO", "Logging level of the command line: DEBUG, INFO, WARNING, ERROR."
    )
    panoptes_username: str | None = setting(
        None, "Panoptes login; from the environment only (ZOO_PANOPTES_USERNAME).", repr=False
    )
    panoptes_password: str | None = setting(
        None, "Panoptes password; from the environment only (ZOO_PANOPTES_PASSWORD).", repr=False
    )


def setting_names() -> list[str]:
    """Names of all settings, in declaration order."""
    return [f.name for f in dataclasses.fields(Settings)]


def describe_settings() -> list[dict[str, Any]]:
    """Name, environment variable, type, default and help text of every setting."""
    return describe_dataclass(Settings, SECRET_SETTINGS)


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve the settings: defaults < config file < ``ZOO_*`` env vars < overrides (CLI flags).

    Args:
        config_file: a TOML file with settings under ``[panoptes_sync]`` (or, in a file without
            tables, at top level).
        env: the environment to read ``ZOO_*`` variables from (``os.environ`` at entry points).
        overrides: values from CLI flags; ``None`` values mean "not given" and are ignored.

    Returns:
        The frozen settings.

    Raises:
        ConfigError: if the file is missing or invalid, a table or key is unknown, a value has the
            wrong type or lies outside its range, or a credential is set anywhere but the
            environment.
    """
    tables = read_config_file(config_file) if config_file is not None else {}
    settings = resolve_settings(
        Settings,
        tables.get("panoptes_sync", {}),
        where=f"{config_file} [panoptes_sync]",
        env=env,
        overrides=overrides,
        secrets=SECRET_SETTINGS,
    )
    _validate(settings)
    return settings


def _validate(settings: Settings) -> None:
    if settings.log_level.upper() not in LOG_LEVELS:
        raise ConfigError(
            f"log_level must be DEBUG, INFO, WARNING or ERROR, got {settings.log_level!r}"
        )
    if settings.endpoint.endswith("/"):
        raise ConfigError(f"endpoint must not end with '/', got {settings.endpoint!r}")

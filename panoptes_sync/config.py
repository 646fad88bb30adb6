"""The panoptes_sync service settings: one frozen dataclass, resolved once at the entry point.

Precedence, lowest first: defaults < TOML config file < ``ZOO_*`` environment variables < CLI flags.
Credentials (``ZOO_PANOPTES_USERNAME`` / ``ZOO_PANOPTES_PASSWORD``) come from the environment only
and are never shown by ``repr`` or logged.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoptes_sync.errors import ConfigError

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

#: Prefix of the environment variables that override settings (``ZOO_DATABASE_URL``...).
ENV_PREFIX = "ZOO_"
#: Settings read from the environment only (never from a file or a flag, never logged).
SECRET_SETTINGS = frozenset({"panoptes_username", "panoptes_password"})


def _setting(default: Any, help_text: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help_text}, **kwargs)


@dataclass(frozen=True)
class Settings:
    """Every setting of the panoptes_sync service (see each field's ``help``)."""

    database_url: str = _setting(
        "sqlite:///zoo.sqlite3",
        "SQLAlchemy URL of the store: sqlite:///FILE (embedded) or postgresql+psycopg://USER@HOST/DB.",
    )
    endpoint: str = _setting(
        "https://www.zooniverse.org",
        "Panoptes endpoint, without a trailing slash (the local emulator's URL in tests).",
    )
    project_id: int | None = _setting(None, "Panoptes project id, e.g. 5733 for GZ DECaLS.")
    project_slug: str | None = _setting(None, "Panoptes project slug (owner/name); informational.")
    workflow_id: int | None = _setting(
        None, "Panoptes workflow id whose classifications are aggregated and prioritised."
    )
    page_size: int = _setting(100, "Classifications per API page when syncing (Panoptes max 100).")
    max_pages_per_sync: int = _setting(
        0, "Stop a sync run after this many pages (0 = until caught up); resumes next run."
    )
    push_batch_size: int = _setting(
        100, "Most subjects created or re-prioritised in one push batch (a safety cap)."
    )
    max_requests_per_push: int = _setting(
        1000, "Most HTTP requests one push batch may send before it stops (a safety cap)."
    )
    dry_run: bool = _setting(
        False, "Plan pushes and record them as 'planned' without writing to Zooniverse."
    )
    schema: str | None = _setting(
        None,
        "Built-in schema (decals_dr5, gz2, rings) whose label columns votes are counted into; "
        "unset: one column per <task>_<answer index>.",
    )
    first_only: bool = _setting(
        False, "Count only each volunteer's first classification of a subject (anonymous: all)."
    )
    export_chunk_size: int = _setting(
        50_000, "Rows read per chunk when backfilling or aggregating an export CSV."
    )
    request_timeout_s: float = _setting(
        60.0, "Seconds before an HTTP request to Panoptes times out."
    )
    max_retries: int = _setting(5, "Retries of an idempotent Panoptes request on 5xx/429/timeouts.")
    log_level: str = _setting(
        "INFO", "Logging level of the command line: DEBUG, INFO, WARNING, ERROR."
    )
    panoptes_username: str | None = _setting(
        None, "Panoptes login; from the environment only (ZOO_PANOPTES_USERNAME).", repr=False
    )
    panoptes_password: str | None = _setting(
        None, "Panoptes password; from the environment only (ZOO_PANOPTES_PASSWORD).", repr=False
    )


def setting_names() -> list[str]:
    """Names of all settings, in declaration order."""
    return [f.name for f in dataclasses.fields(Settings)]


def describe_settings() -> list[dict[str, Any]]:
    """Name, environment variable, type, default and help text of every setting."""
    return describe_dataclass(Settings, SECRET_SETTINGS)


def describe_dataclass(
    settings_class: type, secrets: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """Name, environment variable, type, default and help of a settings dataclass's fields.

    Args:
        settings_class: a dataclass whose fields carry a ``help`` metadata entry.
        secrets: names whose defaults are hidden.

    Returns:
        One dict per field, in declaration order.
    """
    hints = typing.get_type_hints(settings_class)
    return [
        {
            "name": f.name,
            "env": ENV_PREFIX + f.name.upper(),
            "type": _type_name(hints[f.name]),
            "default": None if f.name in secrets else f.default,
            "help": f.metadata.get("help", ""),
            "secret": f.name in secrets,
        }
        for f in dataclasses.fields(settings_class)
    ]


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve the settings: defaults < config file < ``ZOO_*`` env vars < overrides (CLI flags).

    Args:
        config_file: a TOML file with settings at top level or under ``[panoptes_sync]``.
        env: the environment to read ``ZOO_*`` variables from (``os.environ`` at entry points).
        overrides: values from CLI flags; ``None`` values mean "not given" and are ignored.

    Returns:
        The frozen settings.

    Raises:
        ConfigError: if the file is missing or invalid, a key is unknown, a value has the wrong
            type, or a credential is set anywhere but the environment.
    """
    hints = typing.get_type_hints(Settings)
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(_read_config_file(Path(config_file), hints))
    for name in hints:
        raw = (env or {}).get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = convert_setting(name, raw, hints[name], ENV_PREFIX + name.upper())
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in hints:
            raise ConfigError(f"unknown setting {name!r}; known settings: {setting_names()}")
        if name in SECRET_SETTINGS:
            raise ConfigError(f"{name} can only be set by {ENV_PREFIX}{name.upper()} in the env")
        values[name] = convert_setting(name, value, hints[name], "the command line")
    settings = Settings(**values)
    _validate(settings)
    return settings


def _read_config_file(path: Path, hints: Mapping[str, Any]) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"no config file at {path}; fix --config / ZOO_CONFIG or create the file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from error
    # Settings sit under [panoptes_sync], or at top level; other services' tables are theirs.
    table = data.get("panoptes_sync", {k: v for k, v in data.items() if not isinstance(v, dict)})
    values = {}
    for name, value in table.items():
        if name not in hints:
            raise ConfigError(
                f"unknown setting {name!r} in {path}; known settings: {setting_names()}"
            )
        if name in SECRET_SETTINGS:
            raise ConfigError(
                f"{name} found in {path}; credentials come only from {ENV_PREFIX}{name.upper()}"
            )
        values[name] = convert_setting(name, value, hints[name], str(path))
    return values


def _base_type(annotation: Any) -> tuple[type, bool]:
    """(the non-None type, whether None is allowed) of a field annotation."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0], True
    return annotation, False


def _type_name(annotation: Any) -> str:
    base, optional = _base_type(annotation)
    return f"{base.__name__} | None" if optional else base.__name__


def convert_setting(name: str, value: Any, annotation: Any, where: str) -> Any:
    """``value`` as the type ``annotation`` names (``int``, ``bool``, ``str | None``...).

    Raises:
        ConfigError: naming the setting, where the value came from and what was expected.
    """
    base, optional = _base_type(annotation)
    if optional and (value is None or (isinstance(value, str) and value.lower() == "none")):
        return None
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true/false")
        if base is int and isinstance(value, bool | float):
            raise ValueError("expected an integer")
        return base(value)
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"setting {name} from {where} must be {_type_name(annotation)}, got {value!r} ({error})"
        ) from error


def _validate(settings: Settings) -> None:
    if not 1 <= settings.page_size <= 100:
        raise ConfigError(f"page_size must be 1..100 (Panoptes' limit), got {settings.page_size}")
    for name in ("max_pages_per_sync", "push_batch_size", "max_requests_per_push", "max_retries"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"{name} must be >= 0, got {getattr(settings, name)}")
    if settings.export_chunk_size < 1:
        raise ConfigError(f"export_chunk_size must be >= 1, got {settings.export_chunk_size}")
    if settings.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(
            f"log_level must be DEBUG, INFO, WARNING or ERROR, got {settings.log_level!r}"
        )
    if settings.endpoint.endswith("/"):
        raise ConfigError(f"endpoint must not end with '/', got {settings.endpoint!r}")

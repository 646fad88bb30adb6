"""The one settings resolver of both packages: defaults < TOML table < ``ZOO_*`` variables < flags.

A settings class is a frozen dataclass whose fields are declared with `setting` (default, help
text, range or choices). `resolve_settings` fills one from a config table, the environment and
overrides; every value is converted to its field's type and checked, and every error is a
`ConfigError` naming the setting, where its value came from and what is allowed (or, for an
unknown name, the closest valid one). An empty environment variable counts as unset.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import field
from pathlib import Path
from typing import Any, TypeVar

from panoptes_sync.errors import ConfigError

__all__ = [
    "CONFIG_TABLES",
    "ENV_PREFIX",
    "allowed_values",
    "convert_setting",
    "describe_dataclass",
    "read_config_file",
    "resolve_settings",
    "setting",
]

T = TypeVar("T")

#: Prefix of the environment variables that override settings (``ZOO_DATABASE_URL``...).
ENV_PREFIX = "ZOO_"
#: Tables a config file may hold: this package's, and the prioritiser daemon's (it shares the file).
CONFIG_TABLES = ("panoptes_sync", "prioritiser")


def setting(
    default: Any,
    help_text: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple[str, ...] | None = None,
    **kwargs: Any,
) -> Any:
    """A dataclass field with its help text and what values it allows.

    Args:
        default: the default value.
        help_text: one sentence for ``--help`` and `describe_dataclass`.
        low: smallest allowed value (exclusive with ``low_open``).
        high: largest allowed value (exclusive with ``high_open``).
        low_open: ``low`` itself is refused.
        high_open: ``high`` itself is refused.
        choices: the allowed values of a string setting.
        **kwargs: passed to `dataclasses.field` (``repr=False`` for credentials).
    """
    metadata = {
        "help": help_text,
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "choices": choices,
    }
    return field(default=default, metadata=metadata, **kwargs)


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
            "allowed": allowed_values(f.metadata),
            "secret": f.name in secrets,
        }
        for f in dataclasses.fields(settings_class)
    ]


def read_config_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """The tables of a TOML config file, each a dict of raw values.

    Settings outside any table belong to ``[panoptes_sync]`` (a file for this package alone).

    Raises:
        ConfigError: if the file is missing or not TOML, holds a table outside ``CONFIG_TABLES``
            (naming the closest one), or mixes top-level settings with a ``[panoptes_sync]`` table.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no config file at {path}; fix --config / ZOO_CONFIG or create the file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"config file {path} is not valid TOML: {error}") from error
    tables = {name: value for name, value in data.items() if isinstance(value, dict)}
    loose = {name: value for name, value in data.items() if not isinstance(value, dict)}
    for name in tables:
        if name not in CONFIG_TABLES:
            raise ConfigError(
                f"unknown table [{name}] in {path}{_closest(name, CONFIG_TABLES, '[{}]')}; "
                f"tables: {', '.join(f'[{t}]' for t in CONFIG_TABLES)}"
            )
    if loose and "panoptes_sync" in tables:
        raise ConfigError(
            f"settings {sorted(loose)} in {path} sit outside any table; move them under "
            "[panoptes_sync] or [prioritiser]"
        )
    if loose:
        tables["panoptes_sync"] = loose
    return tables


def resolve_settings(
    settings_class: type[T],
    table: Mapping[str, Any],
    where: str,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    secrets: frozenset[str] = frozenset(),
) -> T:
    """One settings dataclass from a config table, ``ZOO_*`` variables and overrides, in that order.

    An empty environment variable counts as unset. Each value is converted to its field's type,
    then checked against the field's ``choices`` or range metadata.

    Args:
        settings_class: a frozen dataclass built with this module's ``setting`` fields.
        table: the config file's values for this dataclass (from `read_config_file`).
        where: names the table in messages (``"zoo.toml [prioritiser]"``).
        env: the environment (``os.environ`` at entry points).
        overrides: command-line values; ``None`` means not given.
        secrets: fields settable only from the environment.

    Returns:
        The dataclass instance.

    Raises:
        ConfigError: naming the setting, where its value came from and what is allowed (or the
            closest valid name for an unknown one).
    """
    fields = {f.name: f for f in dataclasses.fields(settings_class)}
    hints = typing.get_type_hints(settings_class)

    def checked(name: str, value: Any, source: str, from_env: bool = False) -> Any:
        if name not in fields:
            raise ConfigError(
                f"unknown setting {name!r} in {source}{_closest(name, fields)}; "
                f"known settings: {sorted(fields)}"
            )
        if name in secrets and not from_env:
            raise ConfigError(
                f"{name} found in {source}; credentials come only from {ENV_PREFIX}{name.upper()}"
            )
        converted = convert_setting(name, value, hints[name], source)
        _check_allowed(fields[name], converted, source)
        return converted

    values = {name: checked(name, value, where) for name, value in table.items()}
    for name in fields:
        variable = ENV_PREFIX + name.upper()
        raw = (env or {}).get(variable, "")
        if raw != "":
            values[name] = checked(name, raw, variable, from_env=True)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = checked(name, value, "the command line")
    return settings_class(**values)


def _closest(name: str, known: Iterable[str], shape: str = "{!r}") -> str:
    """``"; did you mean X?"`` for the closest known name, or ``""``."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {shape.format(matches[0])}?" if matches else ""


def allowed_values(metadata: Mapping[str, Any]) -> str | None:
    """What a field's metadata allows, in words (``"1..100"``, ``">= 0"``, ``"> 0"``), or None."""
    if metadata.get("choices"):
        return f"one of {tuple(metadata['choices'])}"
    low, high = metadata.get("low"), metadata.get("high")
    low_op = ">" if metadata.get("low_open") else ">="
    if low is not None and high is not None:
        if metadata.get("low_open") or metadata.get("high_open"):
            left = "(" if metadata.get("low_open") else "["
            right = ")" if metadata.get("high_open") else "]"
            return f"in {left}{low}, {high}{right}"
        return f"in {low}..{high}"
    if low is not None:
        return f"{low_op} {low}"
    if high is not None:
        return f"{'<' if metadata.get('high_open') else '<='} {high}"
    return None


def _check_allowed(field_: dataclasses.Field, value: Any, where: str) -> None:
    meta = field_.metadata
    if value is None:
        return
    choices, low, high = meta.get("choices"), meta.get("low"), meta.get("high")
    ok = value in choices if choices else True
    if low is not None:
        ok = ok and (value > low if meta.get("low_open") else value >= low)
    if high is not None:
        ok = ok and (value < high if meta.get("high_open") else value <= high)
    if not ok:
        raise ConfigError(
            f"setting {field_.name} must be {allowed_values(meta)}, got {value!r} (from {where})"
        )


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

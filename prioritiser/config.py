"""Settings of the prioritisation daemon, declared once with type, default and help text.

A daemon config file is TOML with two tables: ``[panoptes_sync]`` (the Zooniverse link: database,
endpoint, project, workflow, push caps; see ``panoptes_sync.config``) and ``[prioritiser]``
(below). Precedence: defaults < file < ``ZOO_*`` environment variables < command-line flags.
"""

from __future__ import annotations

import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from panoptes_sync.config import ENV_PREFIX, convert_setting, describe_dataclass
from panoptes_sync.config import Settings as SyncSettings
from panoptes_sync.config import load_settings as load_sync_settings
from panoptes_sync.errors import ConfigError as SyncConfigError
from prioritiser.errors import ConfigError

__all__ = [
    "DaemonConfig",
    "PrioritiserSettings",
    "check_scoring",
    "describe_settings",
    "load_config",
]

PRECISIONS = ("32", "bf16-mixed", "16-mixed")
"""Scoring precisions ``zoobot.predict.iter_posterior`` accepts."""

SCORING_ACQUISITIONS = ("bald", "entropy", "variation_ratio", "random")
"""Acquisitions that rank a streamed catalogue (``epig`` runs only in the active-learning loop)."""

QUESTION_WEIGHTINGS = ("asked", "uniform")
"""How ``bald`` sums the questions' mutual information: each times P(asked), or each once."""


def check_scoring(acquisition: str, question_weighting: str) -> None:
    """Refuse what cannot rank a streamed catalogue, before any model or image is loaded.

    Args:
        acquisition: a registered acquisition name.
        question_weighting: how ``bald`` combines the questions (``QUESTION_WEIGHTINGS``).

    Raises:
        ConfigError: for an acquisition outside ``SCORING_ACQUISITIONS`` (``epig`` among them,
            with the reason) or a ``question_weighting`` outside ``QUESTION_WEIGHTINGS``.
    """
    if acquisition not in SCORING_ACQUISITIONS:
        reason = (
            ": EPIG needs each posterior sample to be one parameter draw shared by all galaxies "
            "and one target set for the whole catalogue, but predictions stream in chunks with "
            "dropout drawn per galaxy"
            if acquisition == "epig"
            else ""
        )
        raise ConfigError(
            f"cannot rank a catalogue by {acquisition!r}{reason}; choose one of "
            f"{SCORING_ACQUISITIONS}"
        )
    if question_weighting not in QUESTION_WEIGHTINGS:
        raise ConfigError(
            f"question_weighting must be one of {QUESTION_WEIGHTINGS}, got {question_weighting!r}"
        )


def _setting(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class PrioritiserSettings:
    """Model, scoring and schedule settings (see each field's ``help``)."""

    workdir: str = _setting(
        "zoo-work", "Folder for image caches, checkpoints, predictions and reports."
    )
    schema: str = _setting("decals_dr5", "Built-in decision tree the ensemble predicts.")
    encoder: str = _setting(
        "zoobot-sim-pico",
        "Encoder for a fresh ensemble: shipped name, timm architecture or hf_hub: name.",
    )
    image_size: int = _setting(64, "Image side in pixels for training and prediction.")
    n_models: int = _setting(2, "Ensemble members (M).")
    n_samples: int = _setting(5, "MC-dropout passes per member when scoring (T).")
    n_blocks: int = _setting(1, "Encoder blocks finetuned (0: head only, -1: all).")
    learning_rate: float = _setting(1e-3, "Head learning rate.")
    max_epochs: int = _setting(8, "Epoch limit per retrain.")
    batch_size: int = _setting(32, "Images per batch.")
    total_votes: int = _setting(40, "Volunteers a shown galaxy would get (N in the MI).")
    acquisition: str = _setting("bald", "Ranking: bald, entropy, variation_ratio or random.")
    question_weighting: str = _setting(
        "asked",
        "How bald sums the questions' mutual information: asked (each x P(asked), Walmsley's "
        "weighting) or uniform (each once: N_q already counts P(asked); fewer labels in the "
        "simulated benchmark).",
    )
    precision: str = _setting(
        "32",
        "Encoder arithmetic when scoring: 32, or bf16-mixed on a GPU or a CPU with bf16 units "
        "(AMX: about 2x faster, vote fractions within ~1e-3).",
    )
    labelled_min_votes: int = _setting(
        5, "A subject is labelled (trains the model) once this many volunteers classified it."
    )
    validation_fraction: float = _setting(0.2, "Share of labelled subjects held out for the gate.")
    gate_tolerance: float = _setting(
        0.0, "Deploy a new ensemble if its validation loss <= deployed x (1 + tolerance)."
    )
    push_size: int = _setting(20, "Prioritised subjects pushed per cycle.")
    random_control_fraction: float = _setting(
        0.1, "Share of each push drawn at random from the pool, flagged random_selection."
    )
    sync_interval_s: float = _setting(300.0, "Seconds between sync jobs.")
    retrain_interval_s: float = _setting(86_400.0, "Seconds between scheduled retrains.")
    retrain_min_new_labelled: int = _setting(
        50,
        "Retrain early once this many subjects became labelled since the last retrain (0: never).",
    )
    misfire_grace_s: float = _setting(
        600.0, "A job late by less than this still runs after downtime."
    )
    seed: int = _setting(0, "Seed of training, control selection and the validation split.")


@dataclass(frozen=True)
class DaemonConfig:
    """The daemon's whole configuration: the Zooniverse link and the prioritiser."""

    sync: SyncSettings
    prioritiser: PrioritiserSettings


def describe_settings() -> list[dict[str, Any]]:
    """Name, environment variable, type, default and help of every prioritiser setting."""
    return describe_dataclass(PrioritiserSettings)


def _convert(name: str, value: Any, kind: type, where: str) -> Any:
    try:
        return convert_setting(name, value, kind, where)
    except SyncConfigError as error:
        raise ConfigError(str(error)) from error


def load_config(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    sync_overrides: Mapping[str, Any] | None = None,
) -> DaemonConfig:
    """Resolve both tables: defaults < file < ``ZOO_*`` env < overrides.

    Raises:
        ConfigError: for a missing or invalid file, an unknown key or a value of the wrong type.
    """
    table: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"no config file at {path}; pass --config with a TOML file")
        try:
            table = tomllib.loads(path.read_text()).get("prioritiser", {})
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from error
    hints = typing.get_type_hints(PrioritiserSettings)
    unknown = set(table) - set(hints)
    if unknown:
        raise ConfigError(
            f"unknown [prioritiser] settings {sorted(unknown)}; known: {sorted(hints)}"
        )
    values = {k: _convert(k, v, hints[k], str(config_file)) for k, v in table.items()}
    for name, kind in hints.items():
        raw = (env or {}).get(ENV_PREFIX + name.upper())
        if raw:
            values[name] = _convert(name, raw, kind, ENV_PREFIX + name.upper())
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _convert(name, value, hints[name], "the command line")
    choices = {
        "acquisition": SCORING_ACQUISITIONS,
        "precision": PRECISIONS,
        "question_weighting": QUESTION_WEIGHTINGS,
    }
    for name, allowed in choices.items():
        if name in values and values[name] not in allowed:
            raise ConfigError(f"setting {name} must be one of {allowed}, got {values[name]!r}")
    sync = load_sync_settings(config_file, env=env, overrides=sync_overrides)
    return DaemonConfig(sync=sync, prioritiser=PrioritiserSettings(**values))

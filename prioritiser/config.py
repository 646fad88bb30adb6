"""Settings of the prioritisation daemon, declared once with type, default and help text.

A daemon config file is TOML with two tables: ``[panoptes_sync]`` (the Zooniverse link: database,
endpoint, project, workflow, push caps; see ``panoptes_sync.config``) and ``[prioritiser]``
(below). Precedence: defaults < file < ``ZOO_*`` environment variables < command-line flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from panoptes_sync.config import Settings as SyncSettings
from panoptes_sync.config import load_settings as load_sync_settings
from panoptes_sync.settings_resolver import (
    describe_dataclass,
    read_config_file,
    resolve_settings,
    setting,
)
from prioritiser.errors import ConfigError
from zoobot.precision import PRECISIONS

__all__ = [
    "DaemonConfig",
    "PrioritiserSettings",
    "check_scoring",
    "describe_settings",
    "load_config",
]

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


@dataclass(frozen=True)
class PrioritiserSettings:
    """Model, scoring and schedule settings (see each field's ``help``)."""

    workdir: str = setting(
        "zoo-work", "Folder for image caches, checkpoints, predictions and reports."
    )
    schema: str = setting("decals_dr5", "Built-in decision tree the ensemble predicts.")
    encoder: str = setting(
        "zoobot-sim-pico",
        "Encoder for a fresh ensemble: shipped name, timm architecture or hf_hub: name.",
    )
    image_size: int = setting(64, "Image side in pixels for training and prediction.", low=1)
    n_models: int = setting(2, "Ensemble members (M).", low=1)
    n_samples: int = setting(5, "MC-dropout passes per member when scoring (T).", low=1)
    n_blocks: int = setting(1, "Encoder blocks finetuned (0: head only, -1: all).", low=-1)
    learning_rate: float = setting(1e-3, "Head learning rate.", low=0, low_open=True)
    max_epochs: int = setting(8, "Epoch limit per retrain.", low=1)
    batch_size: int = setting(32, "Images per batch.", low=1)
    total_votes: int = setting(40, "Volunteers a shown galaxy would get (N in the MI).", low=1)
    acquisition: str = setting(
        "bald", "Ranking: bald, entropy, variation_ratio or random.", choices=SCORING_ACQUISITIONS
    )
    question_weighting: str = setting(
        "asked",
        "How bald sums the questions' mutual information: asked (each x P(asked), Walmsley's "
        "weighting) or uniform (each once: N_q already counts P(asked); fewer labels in the "
        "simulated benchmark).",
        choices=QUESTION_WEIGHTINGS,
    )
    precision: str = setting(
        "auto",
        "Encoder arithmetic when scoring: auto (bf16-mixed where the hardware has bf16 units: "
        "CUDA with bf16, CPUs with AMX or AVX512-BF16; else 32), 32, bf16-mixed or 16-mixed.",
        choices=PRECISIONS,
    )
    labelled_min_votes: int = setting(
        5,
        "A subject is labelled (trains the model) once this many volunteers classified it.",
        low=1,
    )
    validation_fraction: float = setting(
        0.2,
        "Share of labelled subjects held out for the gate.",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
    )
    gate_tolerance: float = setting(
        0.0, "Deploy a new ensemble if its validation loss <= deployed x (1 + tolerance).", low=0
    )
    push_size: int = setting(20, "Prioritised subjects pushed per cycle.", low=1)
    random_control_fraction: float = setting(
        0.1,
        "Share of each push drawn at random from the pool, flagged random_selection.",
        low=0,
        high=1,
    )
    sync_interval_s: float = setting(300.0, "Seconds between sync jobs.", low=0, low_open=True)
    retrain_interval_s: float = setting(
        86_400.0, "Seconds between scheduled retrains.", low=0, low_open=True
    )
    retrain_min_new_labelled: int = setting(
        50,
        "Retrain early once this many subjects became labelled since the last retrain (0: never).",
        low=0,
    )
    misfire_grace_s: float = setting(
        600.0, "A job late by less than this still runs after downtime.", low=0
    )
    seed: int = setting(0, "Seed of training, control selection and the validation split.", low=0)


@dataclass(frozen=True)
class DaemonConfig:
    """The daemon's whole configuration: the Zooniverse link and the prioritiser."""

    sync: SyncSettings
    prioritiser: PrioritiserSettings


def describe_settings() -> list[dict[str, Any]]:
    """Name, environment variable, type, default and help of every prioritiser setting."""
    return describe_dataclass(PrioritiserSettings)


def load_config(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    sync_overrides: Mapping[str, Any] | None = None,
) -> DaemonConfig:
    """Resolve both tables: defaults < file < ``ZOO_*`` env (empty: unset) < overrides.

    Raises:
        ConfigError: for a missing or invalid file, an unknown table or key (naming the closest
            valid one), a value of the wrong type, or one outside its range or choices.
    """
    tables = read_config_file(config_file) if config_file is not None else {}
    prioritiser = resolve_settings(
        PrioritiserSettings,
        tables.get("prioritiser", {}),
        where=f"{config_file} [prioritiser]",
        env=env,
        overrides=overrides,
    )
    sync = load_sync_settings(config_file, env=env, overrides=sync_overrides)
    return DaemonConfig(sync=sync, prioritiser=prioritiser)

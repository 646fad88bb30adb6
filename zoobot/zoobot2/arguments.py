"""Zoobot 2.x's argument names and checkpoints, translated to the project's.

A 2.9 ``FinetuneableZoobot*`` takes ``name``/``encoder``/``zoobot_checkpoint_loc``,
``training_mode``, ``head_dropout_prob``, ``timm_kwargs``, ``greyscale``, ``scheduler_kwargs`` and
``seed``; its pretraining ``ZoobotTree`` takes ``output_dim``, ``question_answer_pairs``,
``dependencies``, ``architecture_name`` and ``dropout_rate``. :func:`translate_kwargs` maps them
onto :class:`zoobot.finetune.FinetuneableZoobotAbstract`'s arguments (the project's own names pass
through unchanged) and refuses, by name, what has no equivalent here.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from torch import nn

from zoobot.checkpoints import PickledZoobot2Schema, load_checkpoint, plain_schema_description
from zoobot.errors import EncoderNotFoundError
from zoobot.schemas.base import Schema
from zoobot.schemas.builtin import plain_schema
from zoobot.schemas.zoobot2 import schema_from_zoobot2

__all__ = ["hub_architecture", "load_pretrained_zoobot", "translate_kwargs", "upgrade_checkpoint"]

logger = logging.getLogger(__name__)

HUB_PREFIX = "hf_hub:"
ZOOBOT_ENCODER_PREFIX = "zoobot-encoder-"
_TRAINING_MODES = {"full": -1, "head_only": 0}
_LOSSES = {
    "mse": "mse",
    "mean_squared_error": "mse",
    "mae": "mae",
    "mean_absolute_error": "mae",
    "l1": "mae",
    "l1_loss": "mae",
}
_RENAMES = {"head_dropout_prob": "dropout_prob", "dropout_rate": "dropout_prob"}
#: 2.x arguments that only steer its logging or were stored unused; dropped.
_DROPPED = ("prog_bar", "visualize_images", "seed", "hparams_name")
#: 2.x arguments accepted only at their default (the feature does not exist here).
_DEFAULT_ONLY = {
    "scheduler_kwargs": None,
    "scheduler_params": {},
    "run_linear_sanity_check": False,
    "test_time_dropout": False,
    "compile_encoder": False,
    "betas": (0.9, 0.999),
}
#: Keys whose presence marks Zoobot 2.x hyper-parameters.
ZOOBOT2_MARKERS = (
    "training_mode",
    "head_dropout_prob",
    "zoobot_checkpoint_loc",
    "timm_kwargs",
    "architecture_name",
    "question_answer_pairs",
)


def translate_kwargs(kwargs: dict[str, Any], loading: bool = False) -> dict[str, Any]:
    """Zoobot 2.x arguments (and the project's own) -> the project's arguments.

    Args:
        kwargs: the arguments as a 2.x script or checkpoint gives them.
        loading: the arguments come from a checkpoint whose state dict holds the encoder, so a
            ``zoobot_checkpoint_loc`` is read (when it still exists) only for its architecture.

    Returns:
        Arguments for the project's finetuning classes.

    Raises:
        ValueError: an argument has no equivalent here (named, with what to do instead).
    """
    out = dict(kwargs)
    for key in _DROPPED:
        out.pop(key, None)
    for key, default in _DEFAULT_ONLY.items():
        value = out.pop(key, default)
        value = tuple(value) if isinstance(value, list) else value
        if value != default and not (default in (None, {}) and not value):
            raise ValueError(
                f"Zoobot 2.x argument {key}={value!r} has no equivalent here; "
                "see docs/zoobot_compat.md (scheduler: use scheduler_patience)"
            )
    for old, new in _RENAMES.items():
        if old in out:
            out[new] = out.pop(old)
    if "architecture_name" in out:
        out["name"] = out.pop("architecture_name")
    mode = out.pop("training_mode", None)
    if mode is not None:
        if mode not in _TRAINING_MODES:
            raise ValueError(
                f"training_mode must be one of {sorted(_TRAINING_MODES)}, got {mode!r}"
            )
        out["n_blocks"] = _TRAINING_MODES[mode]
    _translate_channels(out)
    if "loss" in out:
        if out["loss"] not in _LOSSES:
            raise ValueError(f"loss must be one of {sorted(_LOSSES)}, got {out['loss']!r}")
        out["loss"] = _LOSSES[out["loss"]]
    _translate_schema(out)
    checkpoint_loc = out.pop("zoobot_checkpoint_loc", None)
    if checkpoint_loc is not None and out.get("encoder") is None and out.get("name") is None:
        if loading:  # the encoder's weights are in this checkpoint; only its architecture is
            if Path(checkpoint_loc).is_file():
                out["name"] = _checkpoint_architecture(checkpoint_loc)
        else:
            out["encoder"] = load_pretrained_zoobot(checkpoint_loc)
    return out


def _translate_channels(out: dict[str, Any]) -> None:
    timm_kwargs = dict(out.pop("timm_kwargs", None) or {})
    in_chans = timm_kwargs.pop("in_chans", None)
    if timm_kwargs:
        raise ValueError(
            f"timm_kwargs {sorted(timm_kwargs)} are not supported here (only in_chans); "
            "build the encoder with timm yourself and pass it as encoder="
        )
    if out.pop("greyscale", False) or in_chans == 1:
        out["channels"] = 1
    elif in_chans is not None:
        out["channels"] = in_chans


def _translate_schema(out: dict[str, Any]) -> None:
    schema = out.get("schema")
    if isinstance(schema, PickledZoobot2Schema):
        description = plain_schema_description(schema)
        out["schema"] = schema_from_zoobot2(**description)
    pairs = out.pop("question_answer_pairs", None)
    dependencies = out.pop("dependencies", None)
    output_dim = out.pop("output_dim", None)
    if pairs is not None:
        out["schema"] = schema_from_zoobot2(pairs, dependencies or {})
    schema = out.get("schema")
    if isinstance(schema, Schema):
        if output_dim is not None and len(schema.label_cols) != output_dim:
            raise ValueError(
                f"output_dim={output_dim} but the schema has {len(schema.label_cols)} answers"
            )
        out["schema"] = plain_schema(schema)  # plain data in hyper-parameters, for every logger


def hub_architecture(name: str | None) -> str | None:
    """The timm architecture of an ``hf_hub:`` encoder, found offline (or None).

    From the cached ``config.json`` when the hub cache has it, else from Zoobot's repository
    naming, ``zoobot-encoder-<timm architecture>``.

    Args:
        name: e.g. ``hf_hub:mwalmsley/zoobot-encoder-convnext_nano``.

    Returns:
        The architecture, or None when neither source gives one.
    """
    if not name or not name.startswith(HUB_PREFIX):
        return None
    import timm
    from huggingface_hub import try_to_load_from_cache

    repo_id = name.removeprefix(HUB_PREFIX)
    path = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(path, str):
        return json.loads(Path(path).read_text()).get("architecture")
    suffix = repo_id.rsplit("/", 1)[-1].removeprefix(ZOOBOT_ENCODER_PREFIX)
    named = repo_id.rsplit("/", 1)[-1].startswith(ZOOBOT_ENCODER_PREFIX)
    return suffix if named and suffix in timm.list_models() else None


def _checkpoint_architecture(path: str | Path) -> str:
    """The encoder architecture recorded in a Zoobot 2.x or project checkpoint."""
    hparams = load_checkpoint(path).get("hyper_parameters", {})
    name = hparams.get("architecture") or hparams.get("architecture_name") or hparams.get("name")
    architecture = hub_architecture(name) or name
    if not architecture:
        raise EncoderNotFoundError(
            f"{path} records no encoder architecture; pass name= or encoder="
        )
    return architecture


def load_pretrained_zoobot(checkpoint_loc: str | Path) -> nn.Module:
    """The encoder inside a Zoobot 2.x ``ZoobotTree``/``FinetuneableZoobot*`` or project checkpoint.

    Built bare from the recorded architecture and filled from the checkpoint's ``encoder.*``
    weights, through the safe loader.
    """
    from zoobot.models import create_encoder

    hparams = load_checkpoint(checkpoint_loc).get("hyper_parameters", {})
    channels = hparams.get("channels", 3)
    if hparams.get("greyscale") or (hparams.get("timm_kwargs") or {}).get("in_chans") == 1:
        channels = 1
    return create_encoder(
        _checkpoint_architecture(checkpoint_loc), channels=channels, weights=checkpoint_loc
    )


def upgrade_checkpoint(
    checkpoint: dict[str, Any], cls: type, overrides: dict[str, Any]
) -> dict[str, Any]:
    """A checkpoint in the project's format, ready for Lightning to rebuild ``cls`` from.

    Zoobot 2.x hyper-parameters are translated (:func:`translate_kwargs`) and its Dirichlet head's
    keys (``head.1.0.*``) renamed to the project's (``head.linear.*``). For every checkpoint the
    encoder is rebuilt bare from its recorded architecture (no hub, no weights file), since the
    state dict holds its weights, unless the caller passes ``name`` or ``encoder``.

    Raises:
        EncoderNotFoundError: the checkpoint records no architecture and none is passed.
    """
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    if any(key in hparams for key in ZOOBOT2_MARKERS):
        hparams = translate_kwargs(hparams, loading=True)
        state = checkpoint.get("state_dict", {})
        checkpoint["state_dict"] = {
            key.replace("head.1.0.", "head.linear.", 1): value for key, value in state.items()
        }
        logger.info("translated a Zoobot 2.x checkpoint for %s", cls.__name__)
    if "encoder" not in overrides and "name" not in overrides:
        name = hparams.get("name")
        architecture = hparams.get("architecture") or hub_architecture(name)
        if architecture:
            hparams["name"], hparams["weights"] = architecture, None
        elif name is None:
            raise EncoderNotFoundError(
                f"this {cls.__name__} checkpoint was made with an in-memory encoder and records "
                "no architecture; pass encoder= (as Zoobot 2.x needs) or name=<timm architecture>"
            )
    checkpoint["hyper_parameters"] = hparams
    return checkpoint

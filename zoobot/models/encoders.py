"""Encoders: timm backbones without classifier, from an architecture, the hub or a checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import timm
from safetensors.torch import load_file
from timm.models import group_modules
from torch import nn

from zoobot.checkpoints import load_checkpoint
from zoobot.errors import CheckpointNotFoundError, EncoderNotFoundError, HubUnavailableError
from zoobot.models.pretrained import get_pretrained_weights

__all__ = ["create_encoder", "get_encoder_blocks", "load_encoder_state"]

logger = logging.getLogger(__name__)

HUB_PREFIX = "hf_hub:"


def create_encoder(name: str, channels: int = 3, weights: str | Path | None = None) -> nn.Module:
    """Build an encoder (a timm model whose forward returns pooled features).

    Args:
        name: a timm architecture (``convnext_nano``: random initialisation), a hub model
            (``hf_hub:mwalmsley/zoobot-encoder-convnext_nano``: needs the internet), or the name of
            weights shipped with zoobot (see :func:`zoobot.models.list_pretrained`).
        channels: input channels (1 for greyscale).
        weights: optional local weights for the architecture: a Lightning ``.ckpt`` saved by zoobot
            or a ``.safetensors`` file of the encoder's state dict.

    Returns:
        The encoder, with ``num_features`` telling its output width.

    Raises:
        HubUnavailableError: a hub model was asked for and the hub cannot be reached.
        EncoderNotFoundError: the name is not a timm architecture nor shipped weights.
        CheckpointNotFoundError: ``weights`` does not exist.
    """
    if name.startswith(HUB_PREFIX):
        return _create_from_hub(name, channels)
    shipped = get_pretrained_weights(name)
    if shipped is not None:
        name, weights = shipped
    if name not in timm.list_models():
        raise EncoderNotFoundError(
            f"no timm architecture or shipped encoder named {name!r}; "
            "see timm.list_models() and zoobot.models.list_pretrained()"
        )
    encoder = timm.create_model(name, pretrained=False, num_classes=0, in_chans=channels)
    if weights is not None:
        load_encoder_state(encoder, weights)
    return encoder


def _create_from_hub(name: str, channels: int) -> nn.Module:
    try:
        return timm.create_model(name, pretrained=True, num_classes=0, in_chans=channels)
    except (OSError, ValueError, RuntimeError) as error:
        repo = name.removeprefix(HUB_PREFIX)
        raise HubUnavailableError(
            f"could not fetch {name!r} from the Hugging Face hub "
            f"({type(error).__name__}: {error}). "
            f"Offline? On a connected machine run `huggingface-cli download {repo} "
            "model.safetensors`, copy the file here and pass it as weights= with the timm "
            "architecture name, or use a shipped encoder (zoobot.models.list_pretrained())"
        ) from error


def load_encoder_state(encoder: nn.Module, path: str | Path) -> None:
    """Load encoder weights from a ``.safetensors`` file or a zoobot Lightning ``.ckpt``.

    Args:
        encoder: the encoder to fill in place.
        path: the weights file.

    Raises:
        CheckpointNotFoundError: the file does not exist.
        UnsafeCheckpointError: a ``.ckpt`` holds objects outside the allow-list.
        EncoderNotFoundError: the file's keys do not fit the encoder.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"no encoder weights at {path}; check the path")
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        checkpoint = load_checkpoint(path)
        state = checkpoint.get("state_dict", checkpoint)
        prefixed = {
            k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")
        }
        state = prefixed or state
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise EncoderNotFoundError(
            f"weights at {path} do not fit {type(encoder).__name__}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}); is it the same architecture?"
        )
    logger.info("encoder weights loaded path=%s tensors=%d", path, len(state))


def get_encoder_blocks(encoder: nn.Module) -> list[nn.ModuleList]:
    """The encoder's blocks from input to output (stem first), for partial unfreezing.

    Uses timm's coarse ``group_matcher`` where the architecture has one, else the top-level
    children in order.

    Args:
        encoder: a timm model.

    Returns:
        One ``ModuleList`` per block.
    """
    matcher = getattr(encoder, "group_matcher", None)
    if matcher is None:
        return [nn.ModuleList([child]) for child in encoder.children()]
    groups = group_modules(encoder, matcher(coarse=True))
    return [
        nn.ModuleList([encoder.get_submodule(name) for name in groups[key]])
        for key in sorted(groups)
        if key != float("inf") or groups[key]
    ]

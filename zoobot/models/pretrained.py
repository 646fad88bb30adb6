"""Encoder weights shipped inside zoobot, loadable by name with no internet."""

from __future__ import annotations

from pathlib import Path

__all__ = ["get_pretrained_weights", "list_pretrained"]

_DIRECTORY = Path(__file__).resolve().parent.parent / "pretrained"

#: shipped name -> (timm architecture, file in zoobot/pretrained/)
_SHIPPED: dict[str, tuple[str, str]] = {
    "zoobot-sim-atto": ("convnext_atto", "zoobot-sim-atto.safetensors"),
}


def list_pretrained() -> list[str]:
    """Names of the encoders shipped with zoobot whose weights are present."""
    return sorted(name for name, (_, file) in _SHIPPED.items() if (_DIRECTORY / file).is_file())


def get_pretrained_weights(name: str) -> tuple[str, Path] | None:
    """(architecture, weights path) of a shipped encoder, or None if ``name`` is not one."""
    if name not in _SHIPPED:
        return None
    architecture, file = _SHIPPED[name]
    return architecture, _DIRECTORY / file

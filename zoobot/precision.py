"""Arithmetic precision of prediction: the names, and ``auto`` resolved for the hardware.

Torch-free at import (``prioritiser.config`` validates its settings with `PRECISIONS`); the
hardware checks import torch when called.

bf16 pays only on hardware with bf16 units: on a CPU without them (an AMD EPYC with AVX2) the
encoder ran 9.5x slower in bf16 than in full precision, so ``auto`` picks bf16 only where the
units exist and an explicit ``bf16-mixed`` elsewhere logs a warning.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

__all__ = [
    "PRECISIONS",
    "canonical_precision",
    "cpu_has_bf16_units",
    "has_bf16_units",
    "resolve_precision",
]

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "32", "bf16-mixed", "16-mixed")
"""Prediction precisions: ``auto`` (bf16-mixed where the hardware has bf16 units, else 32), full
precision (``32``), or the encoder under autocast in bfloat16 or float16."""

_ALIASES = {None: "32", "32-true": "32"}
"""Other names `resolve_precision` accepts: None (full precision) and Lightning's ``32-true``."""

_CPU_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})
"""``/proc/cpuinfo`` flags of x86 bf16 matrix or vector units."""


def cpu_has_bf16_units(cpuinfo: str | None = None) -> bool:
    """Whether this CPU has bf16 units (AMX or AVX512-BF16).

    Args:
        cpuinfo: the text of ``/proc/cpuinfo``; default, read it (where there is none, torch's
            ``get_cpu_capability()`` decides).

    Returns:
        True when a ``flags`` line names ``amx_bf16`` or ``avx512_bf16``.
    """
    if cpuinfo is None:
        return _this_cpu_has_bf16_units()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in {"flags", "Features"} and _CPU_BF16_FLAGS & set(value.split()):
            return True
    return False


@functools.cache
def _this_cpu_has_bf16_units() -> bool:
    path = Path("/proc/cpuinfo")
    if path.is_file():
        return cpu_has_bf16_units(path.read_text(encoding="utf-8", errors="replace"))
    import torch

    capability = torch.backends.cpu.get_cpu_capability().upper()
    return "AMX" in capability or "BF16" in capability


def has_bf16_units(device: Any) -> bool:
    """Whether ``device`` (a torch device or its name) computes bf16 in hardware.

    CUDA: a GPU with native bf16 (Ampere or later; emulation does not count). CPU: AMX or
    AVX512-BF16. Other devices: False.
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return cpu_has_bf16_units()
    return False


def canonical_precision(precision: str | None) -> str | None:
    """A precision under its one name: None and ``32-true`` are ``32``; other names unchanged."""
    return _ALIASES.get(precision, precision)


def resolve_precision(precision: str | None, device: Any, bf16_units: bool | None = None) -> str:
    """The precision to run on ``device``: ``auto`` resolved, aliases named, names checked.

    Args:
        precision: one of `PRECISIONS`, None or ``32-true`` (both full precision).
        device: the torch device (or its name) the encoder runs on.
        bf16_units: whether the device has bf16 units; default, `has_bf16_units` decides.

    Returns:
        ``"32"``, ``"bf16-mixed"`` or ``"16-mixed"``.

    Raises:
        ValueError: for an unknown precision name.
    """
    name = canonical_precision(precision)
    if name not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS} (or None, '32-true')")
    if name not in {"auto", "bf16-mixed"}:
        return name
    if bf16_units is None:
        bf16_units = has_bf16_units(device)
    if name == "auto":
        resolved = "bf16-mixed" if bf16_units else "32"
        logger.debug("precision auto resolved to %s on %s", resolved, device)
        return resolved
    if not bf16_units:
        logger.warning(
            "precision bf16-mixed on %s without bf16 units (CUDA bf16, AMX or AVX512-BF16) is "
            "slower than full precision (9.5x slower measured on an AVX2 CPU); use auto or 32",
            device,
        )
    return name

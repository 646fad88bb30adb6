"""Strict JSON for every file and printout the project writes: NaN and infinities become null.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which strict parsers (JavaScript's
``JSON.parse``, ``jq``, PostgreSQL) reject. `dumps` turns them into ``null`` first, also inside
numpy scalars and arrays, and refuses any that remain (``allow_nan=False``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["dumps", "finite_or_none"]


def finite_or_none(value: Any) -> Any:
    """``value`` with every non-finite float (also numpy's, nested) replaced by None.

    Mappings become dicts and sequences lists; numpy scalars and arrays become Python values.
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return finite_or_none(value.tolist())
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of `finite_or_none` (value), strict; unknown types are written as ``str``.

    Args:
        value: what to write.
        **kwargs: passed to ``json.dumps`` (``indent``, ``separators``...).

    Returns:
        The JSON text.
    """
    kwargs.setdefault("default", str)
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)

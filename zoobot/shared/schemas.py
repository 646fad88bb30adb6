"""Zoobot 2.x's ``zoobot.shared.schemas`` (compatibility): every 2.9 schema, 2.9's column names.

``Schema(question_answer_pairs, dependencies)`` builds the project's :class:`~zoobot.schemas.Schema`
(which also offers 2.9's ``label_cols``, ``question_answer_pairs`` and ``question_index_groups``);
``decals_dr5_ortho_schema``, ``desi_schema``, ... are :func:`zoobot.schemas.zoobot2.zoobot2_schema`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from zoobot.schemas.base import Schema as _ProjectSchema
from zoobot.schemas.zoobot2 import list_zoobot2_schemas, schema_from_zoobot2, zoobot2_schema

__all__ = ["Schema", *(f"{name}_schema" for name in list_zoobot2_schemas())]


def Schema(  # noqa: N802 (2.9's class name; it builds the project's Schema)
    question_answer_pairs: Mapping[str, Sequence[str]], dependencies: Mapping[str, str | None]
) -> _ProjectSchema:
    """2.9's ``Schema(question_answer_pairs, dependencies)``, as the project's schema."""
    return schema_from_zoobot2(question_answer_pairs, dependencies)


def __getattr__(name: str) -> Any:
    if name.endswith("_schema") and name.removesuffix("_schema") in list_zoobot2_schemas():
        return zoobot2_schema(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

"""Every decision tree Zoobot 2.9 ships, with Zoobot's own column names.

``zoobot2_schemas.json`` beside this module is the one source of these trees: it was written from
real zoobot 2.9.0 (``zoobot/shared/schemas.py``, whose pairs come from galaxy-datasets 0.0.25's
``label_metadata``). Zoobot writes answers as suffixes (``"_smooth"``) and gives questions a
campaign suffix in its ``*_ortho`` trees (``smooth-or-featured-dr5``); this project's own trees
drop that suffix (``decals_dr5`` is ``decals_dr5_ortho`` without ``-dr5``).
:func:`project_column_names` maps one to the other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from zoobot.errors import SchemaError
from zoobot.schemas.base import Schema

__all__ = [
    "list_zoobot2_schemas",
    "project_column_names",
    "schema_from_zoobot2",
    "zoobot2_schema",
]

_SOURCE = Path(__file__).with_name("zoobot2_schemas.json")


@cache
def _descriptions() -> dict[str, dict[str, Any]]:
    return json.loads(_SOURCE.read_text())["schemas"]


def list_zoobot2_schemas() -> list[str]:
    """Names of Zoobot 2.9's schemas without the ``_schema`` suffix, e.g. ``decals_dr5_ortho``."""
    return sorted(_descriptions())


def schema_from_zoobot2(
    question_answer_pairs: Mapping[str, Sequence[str]],
    dependencies: Mapping[str, str | None],
    name: str | None = None,
) -> Schema:
    """Build a :class:`Schema` from Zoobot 2.x's ``(question_answer_pairs, dependencies)``.

    Zoobot's dependency maps may list questions the tree does not have (its ``*_ortho`` trees
    share one map); those entries are dropped. Without a ``name``, a tree equal to one Zoobot
    ships takes that schema's name (so checkpoints store just the name), else ``zoobot2_custom``.

    Raises:
        SchemaError: an answer is not written as a ``_suffix``, or the tree is inconsistent.
    """
    pairs = {}
    for question, answers in question_answer_pairs.items():
        bad = [answer for answer in answers if not answer.startswith("_")]
        if bad:
            raise SchemaError(f"Zoobot 2.x answers are '_suffix'es; {question!r} has {bad}")
        pairs[question] = [answer[1:] for answer in answers]
    used = {question: dependencies.get(question) for question in pairs}
    if name is None:
        name = _shipped_name(question_answer_pairs, used)
    return Schema.from_pairs(name, pairs, used)


def _shipped_name(
    question_answer_pairs: Mapping[str, Sequence[str]], dependencies: Mapping[str, str | None]
) -> str:
    plain = {question: list(answers) for question, answers in question_answer_pairs.items()}
    for name, description in _descriptions().items():
        if description["question_answer_pairs"] == plain and all(
            description["dependencies"].get(question) == parent
            for question, parent in dependencies.items()
        ):
            return name
    return "zoobot2_custom"


def zoobot2_schema(name: str) -> Schema:
    """One of Zoobot 2.9's schemas by name (``decals_dr5_ortho``, ``desi``, ``gz_rings``, ...).

    Raises:
        KeyError: naming the schemas that exist.
    """
    name = name.removesuffix("_schema")
    if name not in _descriptions():
        raise KeyError(f"no Zoobot 2.9 schema {name!r}; choose one of {list_zoobot2_schemas()}")
    return _built(name)


@cache
def _built(name: str) -> Schema:
    description = _descriptions()[name]
    return schema_from_zoobot2(
        description["question_answer_pairs"], description["dependencies"], name=name
    )


def project_column_names(schema: Schema, suffix: str) -> dict[str, str]:
    """Map a Zoobot ``*_ortho`` tree's columns to the project's: drop the campaign ``suffix``.

    Args:
        schema: e.g. ``zoobot2_schema("decals_dr5_ortho")``.
        suffix: the campaign suffix of its questions, e.g. ``-dr5``.

    Returns:
        Zoobot column -> project column, e.g. ``smooth-or-featured-dr5_smooth`` ->
        ``smooth-or-featured_smooth``; also ``<question>_total-votes`` columns.

    Raises:
        SchemaError: a question of the tree lacks the suffix.
    """
    mapping = {}
    for question in schema.questions:
        if not question.name.endswith(suffix):
            raise SchemaError(f"question {question.name!r} does not end with {suffix!r}")
        short = question.name.removesuffix(suffix)
        mapping[question.total_votes_col] = f"{short}_total-votes"
        for answer in question.answers:
            mapping[answer.name] = f"{short}_{answer.text}"
    return mapping

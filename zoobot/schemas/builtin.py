"""The decision trees Galaxy Zoo has used: GZ DECaLS DR5, GZ2 and a binary rings tree.

DR5 is derived from Zoobot 2.9's ``decals_dr5_ortho`` (``zoobot2_schemas.json``), so the tree is
written down once.

Answer orders follow ``galaxy_datasets.shared.label_metadata`` so that catalogues and checkpoints
made with the public Zoobot line up column for column.
"""

from __future__ import annotations

from typing import Any

from zoobot.schemas.base import Schema
from zoobot.schemas.panoptes import DECALS_DR5_ANSWER_NAMES, DECALS_DR5_QUESTION_NAMES
from zoobot.schemas.zoobot2 import list_zoobot2_schemas, zoobot2_schema

__all__ = [
    "decals_dr5_schema",
    "get_schema",
    "gz2_schema",
    "list_schemas",
    "plain_schema",
    "rings_schema",
]

#: DR5 as Zoobot 2.9 ships it (``decals_dr5_ortho``, the one source), without the ``-dr5`` suffix.
_DR5_ORTHO = zoobot2_schema("decals_dr5_ortho")
_DR5_PAIRS = {
    q.name.removesuffix("-dr5"): [answer.text for answer in q.answers] for q in _DR5_ORTHO.questions
}
_DR5_DEPENDENCIES = {
    question.removesuffix("-dr5"): parent and parent.replace("-dr5_", "_")
    for question, parent in _DR5_ORTHO.dependencies.items()
}

_GZ2_PAIRS = {
    "smooth-or-featured": ["smooth", "featured-or-disk", "artifact"],
    "disk-edge-on": ["yes", "no"],
    "has-spiral-arms": ["yes", "no"],
    "bar": ["yes", "no"],
    "bulge-size": ["dominant", "obvious", "just-noticeable", "no"],
    "something-odd": ["yes", "no"],
    "how-rounded": ["round", "in-between", "cigar"],
    "bulge-shape": ["round", "boxy", "no-bulge"],
    "spiral-winding": ["tight", "medium", "loose"],
    "spiral-arm-count": ["1", "2", "3", "4", "more-than-4", "cant-tell"],
}
_GZ2_DEPENDENCIES = {
    "smooth-or-featured": None,
    "disk-edge-on": "smooth-or-featured_featured-or-disk",
    "has-spiral-arms": "disk-edge-on_no",
    "bar": "disk-edge-on_no",
    "bulge-size": "disk-edge-on_no",
    "something-odd": None,
    "how-rounded": "smooth-or-featured_smooth",
    "bulge-shape": "disk-edge-on_yes",
    "spiral-winding": "has-spiral-arms_yes",
    "spiral-arm-count": "has-spiral-arms_yes",
}

_DR5_PANOPTES_MAPPING = {
    (task, index): f"{DECALS_DR5_QUESTION_NAMES[task]}_{answer}"
    for task, answers in DECALS_DR5_ANSWER_NAMES.items()
    for index, answer in enumerate(answers)
}

decals_dr5_schema = Schema.from_pairs(
    "decals_dr5", _DR5_PAIRS, _DR5_DEPENDENCIES, panoptes_mapping=_DR5_PANOPTES_MAPPING
)
gz2_schema = Schema.from_pairs("gz2", _GZ2_PAIRS, _GZ2_DEPENDENCIES)
rings_schema = Schema.from_pairs("rings", {"ring": ["yes", "no"]}, {"ring": None})

_SCHEMAS = {schema.name: schema for schema in (decals_dr5_schema, gz2_schema, rings_schema)}


def list_schemas() -> list[str]:
    """Names of the built-in schemas."""
    return sorted(_SCHEMAS)


def get_schema(name: str) -> Schema:
    """A built-in schema by name, the project's or one of Zoobot 2.9's.

    The project's are ``decals_dr5``, ``gz2`` and ``rings``; Zoobot 2.9's keep its column names
    (``decals_dr5_ortho``, ``desi``, ...; see :func:`zoobot.schemas.zoobot2.list_zoobot2_schemas`).

    Raises:
        KeyError: naming the schemas that exist.
    """
    if name in _SCHEMAS:
        return _SCHEMAS[name]
    if name.removesuffix("_schema") in list_zoobot2_schemas():
        return zoobot2_schema(name)
    raise KeyError(
        f"no built-in schema {name!r}; choose one of {list_schemas()} "
        f"or Zoobot 2.9's {list_zoobot2_schemas()}"
    )


def plain_schema(schema: Schema) -> str | dict[str, Any]:
    """How a schema is stored in hyper-parameters: a built-in's name, else its plain dict."""
    try:
        if get_schema(schema.name) == schema:
            return schema.name
    except KeyError:
        pass
    return schema.to_dict()

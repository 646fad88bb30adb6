"""The decision trees Galaxy Zoo has used: GZ DECaLS DR5, GZ2 and a binary rings tree.

Answer orders follow ``galaxy_datasets.shared.label_metadata`` so that catalogues and checkpoints
made with the public Zoobot line up column for column.
"""

from __future__ import annotations

from zoobot.schemas.base import Schema
from zoobot.schemas.panoptes import DECALS_DR5_ANSWER_NAMES, DECALS_DR5_QUESTION_NAMES

__all__ = ["decals_dr5_schema", "get_schema", "gz2_schema", "list_schemas", "rings_schema"]

_DR5_PAIRS = {
    "smooth-or-featured": ["smooth", "featured-or-disk", "artifact"],
    "disk-edge-on": ["yes", "no"],
    "has-spiral-arms": ["yes", "no"],
    "bar": ["strong", "weak", "no"],
    "bulge-size": ["dominant", "large", "moderate", "small", "none"],
    "how-rounded": ["round", "in-between", "cigar-shaped"],
    "edge-on-bulge": ["boxy", "none", "rounded"],
    "spiral-winding": ["tight", "medium", "loose"],
    "spiral-arm-count": ["1", "2", "3", "4", "more-than-4", "cant-tell"],
    "merging": ["none", "minor-disturbance", "major-disturbance", "merger"],
}
_DR5_DEPENDENCIES = {
    "smooth-or-featured": None,
    "disk-edge-on": "smooth-or-featured_featured-or-disk",
    "has-spiral-arms": "disk-edge-on_no",
    "bar": "disk-edge-on_no",
    "bulge-size": "disk-edge-on_no",
    "how-rounded": "smooth-or-featured_smooth",
    "edge-on-bulge": "disk-edge-on_yes",
    "spiral-winding": "has-spiral-arms_yes",
    "spiral-arm-count": "has-spiral-arms_yes",
    "merging": None,
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
    """A built-in schema by name (``decals_dr5``, ``gz2``, ``rings``).

    Raises:
        KeyError: naming the schemas that exist.
    """
    try:
        return _SCHEMAS[name]
    except KeyError:
        raise KeyError(f"no built-in schema {name!r}; choose one of {list_schemas()}") from None

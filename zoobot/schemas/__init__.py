"""Galaxy Zoo decision trees (torch-free)."""

from zoobot.schemas.base import Answer, Question, Schema, fractions_within_questions
from zoobot.schemas.builtin import (
    decals_dr5_schema,
    get_schema,
    gz2_schema,
    list_schemas,
    rings_schema,
)
from zoobot.schemas.panoptes import (
    DECALS_DR5_ANSWER_NAMES,
    DECALS_DR5_QUESTION_NAMES,
    decals_dr5_workflow,
    schema_from_panoptes_workflow,
    slugify,
)

__all__ = [
    "DECALS_DR5_ANSWER_NAMES",
    "DECALS_DR5_QUESTION_NAMES",
    "Answer",
    "Question",
    "Schema",
    "decals_dr5_schema",
    "decals_dr5_workflow",
    "fractions_within_questions",
    "get_schema",
    "gz2_schema",
    "list_schemas",
    "rings_schema",
    "schema_from_panoptes_workflow",
    "slugify",
]

"""Simulated galaxies (truths, images) and Galaxy Zoo volunteers (vote counts); torch-free."""

from zoobot.datasets.simulated.answers import answer_probabilities, list_supported_questions
from zoobot.datasets.simulated.catalog import CATALOG_VERSION, load_catalog, make_catalog
from zoobot.datasets.simulated.crowd import Crowd, crowd_classify, make_crowd
from zoobot.datasets.simulated.images import (
    BANDS,
    bands_to_rgb,
    render_bands,
    render_rgb,
    resize_rgb,
    save_fits,
    save_image,
)
from zoobot.datasets.simulated.truth import (
    ARTIFACT_KINDS,
    DECALS_PIXEL_SCALE,
    MORPHOLOGIES,
    add_visibility,
    draw_truths,
)
from zoobot.datasets.simulated.volunteers import (
    ask_volunteers,
    classify,
    perturb_probabilities,
    walk_order,
)

__all__ = [
    "ARTIFACT_KINDS",
    "BANDS",
    "Crowd",
    "CATALOG_VERSION",
    "DECALS_PIXEL_SCALE",
    "MORPHOLOGIES",
    "add_visibility",
    "answer_probabilities",
    "ask_volunteers",
    "bands_to_rgb",
    "classify",
    "crowd_classify",
    "draw_truths",
    "list_supported_questions",
    "load_catalog",
    "make_catalog",
    "make_crowd",
    "perturb_probabilities",
    "render_bands",
    "render_rgb",
    "resize_rgb",
    "save_fits",
    "save_image",
    "walk_order",
]

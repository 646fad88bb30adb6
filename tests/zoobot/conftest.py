"""Fixtures for zoobot tests: tiny seeded images and the real ring galaxies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.zoobot.zoobot2_fixtures import hub_cache, zoobot29_outputs  # noqa: F401 (fixtures)
from zoobot.schemas import Schema

TINY_ENCODER = "test_resnet"
IMAGE_SIZE = 64

#: A small tree over the three real vote fractions that the ring catalogue carries.
RINGS_VOTES_SCHEMA = Schema.from_pairs(
    "rings_votes",
    {
        "smooth-or-featured": ["featured-or-disk", "other"],
        "disk-edge-on": ["no", "yes"],
        "has-spiral-arms": ["no", "yes"],
    },
    {
        "smooth-or-featured": None,
        "disk-edge-on": "smooth-or-featured_featured-or-disk",
        "has-spiral-arms": "disk-edge-on_no",
    },
)


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Twelve seeded 32x32 PNG images with a class label and DR5-style vote counts."""
    root = tmp_path_factory.mktemp("tiny_images")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        path = root / f"galaxy_{i}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        rows.append({"id_str": f"g{i}", "file_loc": str(path), "label": i % 2})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def rings_catalog(shared_data: Path) -> pd.DataFrame:
    """The 350 real ring galaxies, with absolute paths and vote counts out of 40 per question."""
    folder = shared_data / "gz_decals_rings"
    catalog = pd.read_csv(folder / "catalog.csv")
    catalog["file_loc"] = [str(folder / loc) for loc in catalog["file_loc"]]
    featured = catalog["smooth-or-featured_featured-or-disk_fraction"]
    not_edge_on = catalog["disk-edge-on_no_fraction"]
    no_spiral = catalog["has-spiral-arms_no_fraction"]
    n_featured = np.round(40 * featured)
    n_face_on = np.round(n_featured * not_edge_on)
    n_no_spiral = np.round(n_face_on * no_spiral)
    catalog["smooth-or-featured_featured-or-disk"] = n_featured
    catalog["smooth-or-featured_other"] = 40 - n_featured
    catalog["disk-edge-on_no"] = n_face_on
    catalog["disk-edge-on_yes"] = n_featured - n_face_on
    catalog["has-spiral-arms_no"] = n_no_spiral
    catalog["has-spiral-arms_yes"] = n_face_on - n_no_spiral
    return catalog


def write_tiny_images(folder: Path, n: int, seed: int = 0) -> list[str]:
    """n seeded 32x32 PNGs in folder."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"img_{i}.png"
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths

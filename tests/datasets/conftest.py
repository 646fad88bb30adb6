"""Fixtures for the simulator tests: seeded truths, and helpers to tweak them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from zoobot.datasets.simulated import add_visibility, draw_truths


@pytest.fixture(scope="session")
def truths() -> pd.DataFrame:
    """400 galaxies from seed 0 (read-only: copy before changing)."""
    return draw_truths(400, 0)


def with_values(truths: pd.DataFrame, **values: float | str) -> pd.DataFrame:
    """A copy of ``truths`` with columns set to fixed values and visibility recomputed."""
    out = truths.copy()
    for column, value in values.items():
        out[column] = value
    return add_visibility(out)


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) along the last axis."""
    p = np.clip(p, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1)

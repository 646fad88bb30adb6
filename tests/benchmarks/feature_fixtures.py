"""Shared pieces of the frozen-feature head tests: one torch thread, and simulated features."""

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from zoobot.datasets.simulated import answer_probabilities, ask_volunteers, draw_truths
from zoobot.schemas import decals_dr5_schema


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors: extra intra-op threads only add overhead on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def simulated_features(n: int, truth_seed: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features that carry the true answer probabilities (noisy projection) and 40-vote counts."""
    rng = np.random.default_rng(seed)
    probabilities = answer_probabilities(draw_truths(n, truth_seed), decals_dr5_schema)
    projection = rng.normal(size=(len(decals_dr5_schema.label_cols), 8))
    features = probabilities @ projection + 0.1 * rng.normal(size=(n, 8))
    features = (features - features.mean(axis=0)) / features.std(axis=0)
    return features, ask_volunteers(probabilities, 40, rng)

"""How good an ensemble is: its mean Dirichlet-multinomial loss on held-out vote counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from zoobot.finetune import FinetuneableZoobotTree
from zoobot.losses import tree_nll
from zoobot.predict import predict_posterior

__all__ = ["validation_loss"]


def validation_loss(
    models: Sequence[FinetuneableZoobotTree], catalog: pd.DataFrame, batch_size: int = 64
) -> float:
    """Mean over members and galaxies of the summed per-question loss, dropout off.

    Args:
        models: the ensemble.
        catalog: galaxies with vote counts in the schema's label columns.
        batch_size: images per batch.

    Returns:
        The loss (lower is better); NaN for an empty catalogue.
    """
    if len(catalog) == 0:
        return float("nan")
    schema = models[0].schema
    concentrations = predict_posterior(
        models, catalog, n_samples=1, batch_size=batch_size, progress=False
    )
    counts = torch.as_tensor(catalog[schema.label_cols].to_numpy(dtype=np.float64))
    losses = [
        tree_nll(
            counts, torch.as_tensor(concentrations[:, m].astype(np.float64)), schema.question_slices
        ).sum(dim=1)
        for m in range(concentrations.shape[1])
    ]
    return float(torch.stack(losses).mean())

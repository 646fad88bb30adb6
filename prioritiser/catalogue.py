"""The catalogue of every galaxy: combined-posterior answer fractions, votes and retirement.

One row per galaxy, voted or not: for each answer column of the schema its posterior-mean
fraction (``<answer>_fraction``) and posterior standard deviation (``<answer>_std``, from the
moment-matched Dirichlet), then ``votes`` (classifications received), ``retired``,
``retirement_reason`` (``prioritiser.retirement.REASONS``; empty while active) and
``is_control`` (the random control share kept on the fixed rule, for debiasing). Frames in,
frames out: the daemon or a CLI writes it (``to_parquet``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from prioritiser.posterior import CombinedPosterior
from prioritiser.retirement import REASONS

if TYPE_CHECKING:
    from zoobot import Schema

__all__ = ["catalogue_frame"]


def catalogue_frame(
    ids: np.ndarray,
    posterior: CombinedPosterior,
    votes: np.ndarray,
    reasons: np.ndarray,
    is_control: np.ndarray,
    schema: Schema,
) -> pd.DataFrame:
    """The catalogue rows.

    Args:
        ids: [n] galaxy ids.
        posterior: their combined posterior (``prioritiser.posterior.combine``).
        votes: [n] classifications received.
        reasons: [n] retirement codes into ``REASONS`` (0: active).
        is_control: [n] bool, in the control share.
        schema: the decision tree.

    Returns:
        One row per galaxy, in input order.

    Raises:
        ValueError: if the arrays' lengths differ or a reason code is unknown.
    """
    n = len(ids)
    arrays = {"votes": votes, "reasons": reasons, "is_control": is_control}
    bad = {k: np.shape(v) for k, v in arrays.items() if np.shape(v) != (n,)}
    if bad or posterior.mean.shape[0] != n:
        raise ValueError(f"every array needs one entry per id ({n}); got shapes {bad}")
    reasons = np.asarray(reasons, dtype=np.int64)
    if ((reasons < 0) | (reasons >= len(REASONS))).any():
        raise ValueError(f"retirement codes must index {REASONS}")
    mean = posterior.mean
    total = posterior.total[:, schema.question_index]
    std = np.sqrt(mean * (1 - mean) / (total + 1))
    columns: dict[str, object] = {"id_str": np.asarray(ids).astype(str)}
    for i, name in enumerate(schema.label_cols):
        columns[f"{name}_fraction"] = mean[:, i]
        columns[f"{name}_std"] = std[:, i]
    columns["votes"] = np.asarray(votes, dtype=np.int64)
    columns["retired"] = reasons > 0
    columns["retirement_reason"] = np.where(reasons > 0, np.array(REASONS)[reasons], "")
    columns["is_control"] = np.asarray(is_control, dtype=bool)
    return pd.DataFrame(columns)

"""Finetuning for regression of one continuous label (e.g. a vote fraction)."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from zoobot.finetune.base import FinetuneableZoobotAbstract
from zoobot.finetune.heads import LinearHead

__all__ = ["FinetuneableZoobotRegressor"]


class FinetuneableZoobotRegressor(FinetuneableZoobotAbstract):
    """Predict one number per galaxy.

    Args:
        loss: ``mse`` or ``mae``.
        unit_interval: squash predictions into (0, 1) with a sigmoid (for fractions).
        label_col: the batch key of the labels when a batch has no ``label`` entry.
        **kwargs: see :class:`FinetuneableZoobotAbstract`.
    """

    def __init__(
        self,
        loss: Literal["mse", "mae"] = "mse",
        unit_interval: bool = False,
        label_col: str = "label",
        **kwargs: Any,
    ) -> None:
        if loss not in ("mse", "mae"):
            raise ValueError(f"loss must be 'mse' or 'mae', got {loss!r}")
        super().__init__(**kwargs)

    def create_head(self, in_features: int, dropout_prob: float) -> nn.Module:
        return LinearHead(in_features, 1, dropout_prob)

    def predictions(self, outputs: torch.Tensor) -> torch.Tensor:
        """The predicted value, [batch, 1]."""
        return torch.sigmoid(outputs) if self.hparams.unit_interval else outputs

    def loss_per_galaxy(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        predicted = self.predictions(outputs).reshape(-1)
        target = labels.reshape(-1).to(predicted.dtype)
        if self.hparams.loss == "mae":
            return F.l1_loss(predicted, target, reduction="none")
        return F.mse_loss(predicted, target, reduction="none")

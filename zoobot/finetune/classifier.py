"""Finetuning for classification of one label column into ``num_classes`` classes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoobot.finetune.base import FinetuneableZoobotAbstract
from zoobot.finetune.heads import LinearHead

__all__ = ["FinetuneableZoobotClassifier"]


class FinetuneableZoobotClassifier(FinetuneableZoobotAbstract):
    """Classify galaxies; labels are integer class indices.

    Args:
        num_classes: number of classes.
        label_smoothing: cross-entropy label smoothing.
        class_weights: optional per-class loss weights.
        label_col: the batch key of the labels when a batch has no ``label`` entry
            (galaxy-datasets batches carry the catalogue's label column by name).
        **kwargs: see :class:`FinetuneableZoobotAbstract`.
    """

    def __init__(
        self,
        num_classes: int = 2,
        label_smoothing: float = 0.0,
        class_weights: Sequence[float] | None = None,
        label_col: str = "label",
        **kwargs: Any,
    ) -> None:
        self.num_classes = num_classes
        super().__init__(**kwargs)
        weights = (
            None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        )
        self.register_buffer("class_weights", weights)

    def create_head(self, in_features: int, dropout_prob: float) -> nn.Module:
        return LinearHead(in_features, self.num_classes, dropout_prob)

    def loss_per_galaxy(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            outputs,
            labels.reshape(-1).long(),
            weight=self.class_weights,
            label_smoothing=self.hparams.label_smoothing,
            reduction="none",
        )

    def log_metrics(self, outputs: torch.Tensor, labels: torch.Tensor, stage: str) -> None:
        accuracy = (outputs.argmax(dim=1) == labels.reshape(-1).long()).float().mean()
        self.log(f"{stage}/accuracy", accuracy, batch_size=len(outputs), sync_dist=stage != "train")

    def predictions(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities."""
        return outputs.softmax(dim=-1)

"""Heads that sit on an encoder's pooled features. Dropout lives only here, never in the encoder."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DirichletHead", "LinearHead"]

MAX_CONCENTRATION_ABOVE_ONE = 100.0


class LinearHead(nn.Module):
    """Dropout then a linear layer."""

    def __init__(self, in_features: int, out_features: int, dropout_prob: float = 0.5) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout_prob)
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.dropout(features))


class DirichletHead(LinearHead):
    """Dirichlet concentrations ``1 + 100 * sigmoid(z)``, each in (1, 101)."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return 1.0 + MAX_CONCENTRATION_ABOVE_ONE * torch.sigmoid(super().forward(features))

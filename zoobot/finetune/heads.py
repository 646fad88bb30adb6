"""Heads that sit on an encoder's pooled features. Dropout lives only here, never in the encoder."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DirichletHead", "LinearHead"]

MAX_CONCENTRATION_ABOVE_ONE = 100.0


class LinearHead(nn.Module):
    """Optionally [input dropout, hidden layer, GELU], then dropout and a linear layer.

    With ``hidden=0`` (the default) the head is dropout then a linear layer, and its state dict
    holds only ``linear.weight`` and ``linear.bias``.

    Args:
        in_features: width of the encoder's pooled features.
        out_features: outputs of the head.
        dropout_prob: dropout probability before the last linear layer, in [0, 1).
        hidden: units of a hidden layer with GELU before the output; 0 for none.
        input_dropout_prob: dropout probability on the features before the hidden layer, in
            [0, 1); unused without a hidden layer.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        dropout_prob: float = 0.5,
        hidden: int = 0,
        input_dropout_prob: float = 0.0,
    ) -> None:
        super().__init__()
        self.body: nn.Module = (
            nn.Sequential(nn.Dropout(input_dropout_prob), nn.Linear(in_features, hidden), nn.GELU())
            if hidden
            else nn.Identity()
        )
        self.dropout = nn.Dropout(dropout_prob)
        self.linear = nn.Linear(hidden or in_features, out_features)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """[batch, in_features] -> [batch, out_features]; dropout follows the module's mode."""
        return self.output(self.linear(self.dropout(self.body(features))))

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        """The head's output from the last linear layer's: unchanged here."""
        return logits

    def sample(self, features: torch.Tensor) -> torch.Tensor:
        """One MC-dropout pass whose masks every row shares: one draw of the head's function.

        Each row's output has the distribution of a ``train()``-mode :meth:`forward`; sharing the
        masks also keeps the draw's correlation between galaxies, which joint acquisitions (EPIG)
        need. Masks come from torch's global generator, whatever the module's mode.

        Args:
            features: [batch, in_features].

        Returns:
            [batch, out_features], as :meth:`forward` gives.
        """
        hidden = features
        if isinstance(self.body, nn.Sequential):
            input_dropout, linear, activation = self.body
            hidden = activation(linear(hidden * _shared_mask(hidden, input_dropout.p)))
        hidden = hidden * _shared_mask(hidden, self.dropout.p)
        return self.output(self.linear(hidden))


class DirichletHead(LinearHead):
    """Dirichlet concentrations ``1 + 100 * sigmoid(z)``, each in (1, 101)."""

    def output(self, logits: torch.Tensor) -> torch.Tensor:
        """Concentrations in (1, 101) from the linear layer's logits."""
        return 1.0 + MAX_CONCENTRATION_ABOVE_ONE * torch.sigmoid(logits)


def _shared_mask(rows: torch.Tensor, probability: float) -> torch.Tensor:
    """[1, width] inverted-dropout mask for [batch, width] rows: 0 or 1 / (1 - probability)."""
    uniform = torch.rand(1, rows.shape[1], device=rows.device)
    return (uniform >= probability).float() / (1.0 - probability)

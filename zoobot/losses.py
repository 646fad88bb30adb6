"""The Dirichlet-multinomial negative log-likelihood of Galaxy Zoo vote counts over a decision tree.

References:
    Walmsley et al. 2022, "Galaxy Zoo DECaLS", MNRAS 509 3966, Sec. 4.2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pyro.distributions import DirichletMultinomial

__all__ = ["dirichlet_multinomial_nll", "tree_nll"]


def dirichlet_multinomial_nll(counts: torch.Tensor, concentrations: torch.Tensor) -> torch.Tensor:
    """-log p(counts | total, concentrations) for one question, exactly 0 where no votes were cast.

    Args:
        counts: [batch, n_answers] vote counts (float or int).
        concentrations: [batch, n_answers] Dirichlet concentrations, all > 0.

    Returns:
        [batch] negative log-likelihoods. A row with 0 total votes gives exactly 0 loss and
        exactly 0 gradient.
    """
    counts = counts.to(concentrations.dtype)
    total = counts.sum(dim=-1)
    asked = total > 0
    distribution = DirichletMultinomial(concentrations, total_count=total, validate_args=False)
    log_prob = distribution.log_prob(counts)
    return torch.where(asked, -log_prob, torch.zeros_like(log_prob))


def tree_nll(
    counts: torch.Tensor, concentrations: torch.Tensor, question_slices: Sequence[slice]
) -> torch.Tensor:
    """Per-question Dirichlet-multinomial losses over a decision tree.

    The losses are not averaged over questions: summing them (as pretraining does) gives the
    joint likelihood of the whole tree, and a galaxy's unasked questions add nothing.

    Args:
        counts: [batch, n_answers] vote counts in schema label order.
        concentrations: [batch, n_answers] Dirichlet concentrations in the same order.
        question_slices: one slice of the answer axis per question (``Schema.question_slices``).

    Returns:
        [batch, n_questions] negative log-likelihoods.
    """
    losses = [
        dirichlet_multinomial_nll(counts[:, answers], concentrations[:, answers])
        for answers in question_slices
    ]
    return torch.stack(losses, dim=1)

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
    counts: torch.Tensor,
    concentrations: torch.Tensor,
    question_slices: Sequence[slice],
    reduction: str = "none",
) -> torch.Tensor:
    """Dirichlet-multinomial losses over a decision tree, per question or summed over questions.

    The losses are not averaged over questions: summing them (as pretraining does) gives the
    joint likelihood of the whole tree, and a galaxy's unasked questions add nothing.

    ``reduction="sum"`` computes the sum over questions for all questions at once, with the
    answer-to-question indicator as a matrix: ``-log p = sum_q [lgamma(A_q + N_q) - lgamma(A_q)
    - lgamma(N_q + 1) + sum_{a in q} (lgamma(n_a + 1) + lgamma(alpha_a) - lgamma(n_a + alpha_a))]``.
    It equals the per-question losses summed (to rounding) and is several times faster for small
    batches; a question with no votes still contributes exactly 0.

    Args:
        counts: [batch, n_answers] vote counts in schema label order.
        concentrations: [batch, n_answers] Dirichlet concentrations in the same order.
        question_slices: one slice of the answer axis per question (``Schema.question_slices``).
        reduction: ``"none"`` for one loss per question, ``"sum"`` for their sum.

    Returns:
        [batch, n_questions] negative log-likelihoods, or [batch] with ``reduction="sum"``.

    Raises:
        ValueError: if ``reduction`` is neither ``"none"`` nor ``"sum"``.
    """
    if reduction == "sum":
        return _tree_nll_sum(counts, concentrations, question_slices)
    if reduction != "none":
        raise ValueError(f"tree_nll reduction must be 'none' or 'sum', got {reduction!r}")
    losses = [
        dirichlet_multinomial_nll(counts[:, answers], concentrations[:, answers])
        for answers in question_slices
    ]
    return torch.stack(losses, dim=1)


def _tree_nll_sum(
    counts: torch.Tensor, concentrations: torch.Tensor, question_slices: Sequence[slice]
) -> torch.Tensor:
    """[batch] tree NLL summed over questions, all questions at once (see :func:`tree_nll`)."""
    counts = counts.to(concentrations.dtype)
    matrix = torch.zeros(
        counts.shape[1],
        len(question_slices),
        dtype=concentrations.dtype,
        device=concentrations.device,
    )  # [n_answers, n_questions] answer-to-question indicator
    for q, answers in enumerate(question_slices):
        matrix[answers, q] = 1.0
    per_answer = (
        torch.lgamma(counts + 1.0)
        + torch.lgamma(concentrations)
        - torch.lgamma(counts + concentrations)
    )
    votes = counts @ matrix
    total = concentrations @ matrix
    per_question = (
        torch.lgamma(total + votes) - torch.lgamma(total) - torch.lgamma(votes + 1.0)
    ) + per_answer @ matrix
    return per_question.sum(dim=1)

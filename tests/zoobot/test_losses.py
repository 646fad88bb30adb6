import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import dirichlet_multinomial

from zoobot.losses import dirichlet_multinomial_nll, tree_nll
from zoobot.schemas import decals_dr5_schema


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_answers=st.integers(2, 6),
    total=st.integers(1, 60),
)
def test_loss_equals_scipy_dirichlet_multinomial(seed, n_answers, total):
    rng = np.random.default_rng(seed)
    alpha = rng.uniform(1, 101, size=n_answers)
    counts = rng.multinomial(total, rng.dirichlet(np.ones(n_answers)))
    expected = -dirichlet_multinomial.logpmf(counts, alpha, total)
    loss = dirichlet_multinomial_nll(
        torch.tensor(counts[None], dtype=torch.float64), torch.tensor(alpha[None])
    )
    assert loss.item() == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_question_with_no_votes_gives_exactly_zero_loss_and_gradient():
    counts = torch.zeros(4, 3)
    counts[0] = torch.tensor([3.0, 1.0, 0.0])
    alpha = torch.rand(4, 3, dtype=torch.float32) * 100 + 1
    alpha.requires_grad_(True)
    loss = dirichlet_multinomial_nll(counts, alpha)
    assert torch.all(loss[1:] == 0)
    loss.sum().backward()
    assert torch.all(alpha.grad[1:] == 0)
    assert torch.any(alpha.grad[0] != 0)


def test_tree_loss_is_the_sum_of_question_losses_without_averaging():
    schema = decals_dr5_schema
    rng = np.random.default_rng(1)
    counts = torch.tensor(rng.integers(0, 10, (5, 34)), dtype=torch.float64)
    alpha = torch.tensor(rng.uniform(1, 101, (5, 34)))
    per_question = tree_nll(counts, alpha, schema.question_slices)
    assert per_question.shape == (5, 10)
    for q, answers in enumerate(schema.question_slices):
        expected = [
            -dirichlet_multinomial.logpmf(c, a, c.sum()) if c.sum() else 0.0
            for c, a in zip(counts[:, answers].numpy(), alpha[:, answers].numpy())
        ]
        np.testing.assert_allclose(per_question[:, q].numpy(), expected, rtol=1e-9)


def test_summed_tree_loss_equals_the_question_losses_summed():
    schema = decals_dr5_schema
    rng = np.random.default_rng(2)
    counts = torch.tensor(rng.integers(0, 10, (6, 34)) * (rng.random((6, 34)) < 0.5))
    counts[:, schema.question_slices[3]] = 0  # a question nobody was asked
    alpha = torch.tensor(rng.uniform(1, 101, (6, 34)))
    summed = tree_nll(counts, alpha, schema.question_slices, reduction="sum")
    assert summed.shape == (6,)
    expected = tree_nll(counts, alpha, schema.question_slices).sum(dim=1)
    torch.testing.assert_close(summed, expected)


def test_summed_tree_loss_of_unasked_questions_is_zero_with_zero_gradient():
    schema = decals_dr5_schema
    counts = torch.zeros(1, 34, dtype=torch.float64)
    alpha = torch.full((1, 34), 3.0, dtype=torch.float64, requires_grad=True)
    loss = tree_nll(counts, alpha, schema.question_slices, reduction="sum")
    loss.sum().backward()
    assert loss.item() == 0.0 and alpha.grad.abs().max().item() == 0.0


def test_unknown_tree_loss_reduction_is_refused():
    counts = torch.ones(1, 34)
    with pytest.raises(ValueError, match="reduction must be 'none' or 'sum', got 'mean'"):
        tree_nll(counts, counts + 1, decals_dr5_schema.question_slices, reduction="mean")

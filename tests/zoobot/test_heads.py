"""Tests for zoobot.finetune.heads: linear and Dirichlet heads, with and without a hidden layer."""

import pytest
import torch

from zoobot.finetune.heads import DirichletHead, LinearHead


def test_a_head_without_hidden_layer_keeps_zoobots_state_dict_keys():
    assert set(DirichletHead(8, 3).state_dict()) == {"linear.weight", "linear.bias"}
    assert set(LinearHead(8, 1).state_dict()) == {"linear.weight", "linear.bias"}


def test_a_hidden_layer_adds_input_dropout_linear_and_gelu():
    head = DirichletHead(8, 3, dropout_prob=0.5, hidden=16, input_dropout_prob=0.2)
    assert set(head.state_dict()) == {
        "body.1.weight",
        "body.1.bias",
        "linear.weight",
        "linear.bias",
    }
    assert head.body[0].p == 0.2 and head.linear.in_features == 16
    output = head.eval()(torch.randn(5, 8))
    assert output.shape == (5, 3) and (output > 1).all() and (output < 101).all()


@pytest.mark.parametrize("hidden", [0, 16])
def test_a_sample_shares_its_masks_across_rows_and_passes_differ(hidden):
    torch.manual_seed(0)
    head = DirichletHead(8, 3, dropout_prob=0.5, hidden=hidden, input_dropout_prob=0.2).eval()
    twins = torch.randn(1, 8).repeat(4, 1)
    with torch.no_grad():
        first, second = head.sample(twins), head.sample(twins)
        head.train()
        independent = head(twins)
    torch.testing.assert_close(first, first[:1].expand(4, 3))
    assert not torch.equal(first, second)
    assert not torch.allclose(independent, independent[:1].expand(4, 3))
    assert (first > 1).all() and (first < 101).all()


def test_a_sample_without_dropout_equals_the_eval_forward():
    head = DirichletHead(8, 3, dropout_prob=0.0, hidden=16).eval()
    features = torch.randn(5, 8)
    with torch.no_grad():
        torch.testing.assert_close(head.sample(features), head(features))

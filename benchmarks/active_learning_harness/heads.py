"""Ensembles of Dirichlet heads on frozen encoder features, for simulated active learning.

A head is zoobot's :class:`~zoobot.finetune.heads.DirichletHead` on cached encoder features:
optionally input dropout, a hidden layer and GELU, then dropout and a linear layer, so that MC
dropout samples only the head (as in Zoobot). An ensemble is M heads with their own
initialisation and dropout masks.

Training is full batch with AdamW and early stopping on a held-out share of the labelled galaxies.
The training loss is :func:`zoobot.losses.tree_nll` summed over questions (``reduction="sum"``,
all questions at once, several times faster for the small batches used here).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from prioritiser.errors import ConfigError
from zoobot.finetune.heads import DirichletHead
from zoobot.losses import tree_nll
from zoobot.schemas import Schema

__all__ = [
    "HeadSettings",
    "create_head",
    "ensemble_loss",
    "posterior_samples",
    "question_losses",
    "train_heads",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadSettings:
    """How the ensemble of heads is built, trained and sampled.

    Attributes:
        n_members: heads in the ensemble (M), each with its own initialisation and dropout.
        n_passes: MC-dropout passes per head (T); the pool gets ``M x T`` posterior samples.
        hidden: units of the hidden layer (GELU); 0 for a linear head.
        dropout: dropout probability before the last linear layer, in [0, 1).
        input_dropout: dropout probability on the features before the hidden layer, in [0, 1);
            unused by a linear head.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        max_steps: full-batch optimiser steps at most.
        eval_every: steps between validation checks.
        patience: validation checks without improvement before a stop.
        val_fraction: share of the labelled galaxies held out for early stopping, in (0, 1).
    """

    n_members: int = 3
    n_passes: int = 5
    hidden: int = 0
    dropout: float = 0.5
    input_dropout: float = 0.0
    learning_rate: float = 0.1
    weight_decay: float = 1e-2
    max_steps: int = 300
    eval_every: int = 10
    patience: int = 5
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        counts = (self.n_members, self.n_passes, self.max_steps, self.eval_every, self.patience)
        if min(counts) < 1 or self.hidden < 0:
            raise ConfigError(
                "HeadSettings n_members, n_passes, max_steps, eval_every and patience must be "
                f">= 1 and hidden >= 0, got {counts} and hidden={self.hidden}"
            )
        dropouts_valid = all(0.0 <= p < 1.0 for p in (self.dropout, self.input_dropout))
        if not dropouts_valid or not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(
                f"HeadSettings needs dropout and input_dropout in [0, 1) and val_fraction in "
                f"(0, 1), got dropout={self.dropout}, input_dropout={self.input_dropout}, "
                f"val_fraction={self.val_fraction}"
            )


def create_head(in_features: int, n_answers: int, settings: HeadSettings) -> DirichletHead:
    """One untrained head of the ensemble, drawing its initialisation from torch's generator."""
    return DirichletHead(
        in_features,
        n_answers,
        dropout_prob=settings.dropout,
        hidden=settings.hidden,
        input_dropout_prob=settings.input_dropout,
    )


def _member_losses(
    heads: list[DirichletHead], features: torch.Tensor, counts: torch.Tensor, schema: Schema
) -> torch.Tensor:
    """[n_members] mean over galaxies of the tree NLL, each head in its current mode."""
    concentrations = torch.cat([head(features) for head in heads])  # [M * n, n_answers]
    per_galaxy = tree_nll(
        counts.repeat(len(heads), 1), concentrations, schema.question_slices, reduction="sum"
    )
    return per_galaxy.view(len(heads), -1).mean(dim=1)


def train_heads(
    features: np.ndarray,
    counts: np.ndarray,
    schema: Schema,
    settings: HeadSettings,
    seed: int,
) -> list[DirichletHead]:
    """Train M heads on features and vote counts; each keeps its best validation state.

    The heads train together (their summed loss has independent gradients) on one random split of
    the galaxies, and each restores the weights of its own lowest validation loss.

    Args:
        features: [n_galaxies, n_features] encoder features (n_galaxies >= 2).
        counts: [n_galaxies, n_answers] vote counts in ``schema.label_cols`` order.
        schema: the decision tree.
        settings: ensemble and optimiser settings.
        seed: seeds the split, the initialisation and the dropout masks.

    Returns:
        The heads, in eval mode.

    Raises:
        ConfigError: if the arrays disagree in length or with the schema, or hold < 2 galaxies.
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(counts), dtype=torch.float32)
    if x.ndim != 2 or y.shape != (x.shape[0], len(schema.label_cols)) or x.shape[0] < 2:
        raise ConfigError(
            f"train_heads needs features [n >= 2, n_features] and counts [n, "
            f"{len(schema.label_cols)}]; got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    order = np.random.default_rng(seed).permutation(x.shape[0])
    n_val = min(max(1, round(x.shape[0] * settings.val_fraction)), x.shape[0] - 1)
    val, train = torch.as_tensor(order[:n_val]), torch.as_tensor(order[n_val:])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        heads = [
            create_head(x.shape[1], len(schema.label_cols), settings)
            for _ in range(settings.n_members)
        ]
        optimiser = torch.optim.AdamW(
            [p for head in heads for p in head.parameters()],
            lr=settings.learning_rate,
            weight_decay=settings.weight_decay,
        )
        best = [math.inf] * len(heads)
        states = [copy.deepcopy(head.state_dict()) for head in heads]
        stale = 0
        for step in range(1, settings.max_steps + 1):
            for head in heads:
                head.train()
            optimiser.zero_grad()
            _member_losses(heads, x[train], y[train], schema).sum().backward()
            optimiser.step()
            if step % settings.eval_every and step != settings.max_steps:
                continue
            for head in heads:
                head.eval()
            with torch.no_grad():
                val_losses = _member_losses(heads, x[val], y[val], schema).tolist()
            improved = [loss < previous for loss, previous in zip(val_losses, best, strict=True)]
            for m in np.flatnonzero(improved):
                best[m], states[m] = val_losses[m], copy.deepcopy(heads[m].state_dict())
            stale = 0 if any(improved) else stale + 1
            if stale >= settings.patience:
                break
    for head, state in zip(heads, states, strict=True):
        head.load_state_dict(state)
        head.eval()
    logger.debug("heads trained n_galaxies=%d steps=%d best_val_loss=%s", len(x), step, best)
    return heads


def posterior_samples(
    heads: list[DirichletHead],
    features: np.ndarray,
    n_passes: int,
    seed: int,
    shared_masks: bool = False,
) -> np.ndarray:
    """MC-dropout posterior samples of every head: ``n_passes`` dropout passes per head.

    By default each galaxy draws its own masks, as ``zoobot.predict`` does. With
    ``shared_masks`` every galaxy of a pass shares them (``DirichletHead.sample``), so sample j
    is one function drawn from the posterior for all galaxies, as EPIG needs; each galaxy's
    samples have the same distribution either way.

    Args:
        heads: the ensemble.
        features: [n_galaxies, n_features].
        n_passes: dropout passes per head (T).
        seed: seeds the dropout masks.
        shared_masks: one set of masks per pass for all galaxies.

    Returns:
        [n_galaxies, n_members x n_passes, n_answers] Dirichlet concentrations, member-major.
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    samples = []
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for head in heads:
            head.train(not shared_masks)
            samples.extend(head.sample(x) if shared_masks else head(x) for _ in range(n_passes))
            head.eval()
    return torch.stack(samples, dim=1).double().numpy()


def question_losses(
    heads: list[DirichletHead], features: np.ndarray, counts: np.ndarray, schema: Schema
) -> np.ndarray:
    """Test loss per question: mean over heads and galaxies of each question's NLL, dropout off.

    Args:
        heads: the ensemble.
        features: [n_galaxies, n_features].
        counts: [n_galaxies, n_answers] vote counts.
        schema: the decision tree.

    Returns:
        [n_questions] nats per galaxy, questions in schema order; they sum to
        :func:`ensemble_loss`.
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(counts), dtype=torch.float32)
    with torch.no_grad():
        per_head = [
            tree_nll(y, head.eval()(x).double(), schema.question_slices).mean(dim=0)
            for head in heads
        ]
    return torch.stack(per_head).mean(dim=0).numpy()


def ensemble_loss(
    heads: list[DirichletHead], features: np.ndarray, counts: np.ndarray, schema: Schema
) -> float:
    """Test loss: mean over heads of the per-galaxy tree NLL summed over questions, dropout off.

    Args:
        heads: the ensemble.
        features: [n_galaxies, n_features].
        counts: [n_galaxies, n_answers] vote counts.
        schema: the decision tree.

    Returns:
        The loss in nats per galaxy (lower is better).
    """
    return float(question_losses(heads, features, counts, schema).sum())

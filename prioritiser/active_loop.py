"""Pool-based active learning on frozen encoder features: train heads, acquire, label, repeat.

Each iteration trains an ensemble of M :class:`~zoobot.finetune.heads.DirichletHead` heads on the
labelled galaxies' features (full batch AdamW, early stopping on a held-out share of the labelled
set), scores the unlabelled pool from ``M x T`` MC-dropout posterior samples with a registered
acquisition function, picks a batch (top-k or power sampling), and asks an oracle (volunteers,
real or simulated) for the batch's vote counts. Training heads on cached features instead of
finetuning the encoder makes one iteration take seconds, so acquisition functions can be compared
over many seeds.

References:
    Walmsley et al. 2020, MNRAS 491, 1554, "Galaxy Zoo: probabilistic morphology through Bayesian
    CNNs and active learning", Sec. 5 (the protocol this loop scales down).
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from prioritiser.acquisition import DEFAULT_TOTAL_VOTES, get_acquisition
from prioritiser.errors import ConfigError, SelectionError
from prioritiser.selection import SELECTION_METHODS, select_power, select_top_k
from zoobot.finetune.heads import DirichletHead
from zoobot.losses import tree_nll
from zoobot.schemas import Schema

__all__ = [
    "HeadSettings",
    "LoopResult",
    "LoopSettings",
    "acquire",
    "ensemble_loss",
    "labels_to_reach",
    "posterior_samples",
    "run_active_loop",
    "train_heads",
]

logger = logging.getLogger(__name__)

Oracle = Callable[[np.ndarray], np.ndarray]
"""Pool indices [k] -> vote counts [k, n_answers]: the volunteers who label an acquired batch."""


@dataclass(frozen=True)
class HeadSettings:
    """How the ensemble of heads is trained and sampled.

    The defaults suit a few dozen standardised features (a linear head trained full batch).

    Attributes:
        n_members: heads in the ensemble (M), each with its own initialisation and dropout.
        n_passes: MC-dropout passes per head (T); the pool gets ``M x T`` posterior samples.
        dropout: dropout probability on the features, in [0, 1).
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        max_steps: full-batch optimiser steps at most.
        eval_every: steps between validation checks.
        patience: validation checks without improvement before a stop.
        val_fraction: share of the labelled galaxies held out for early stopping, in (0, 1).
    """

    n_members: int = 3
    n_passes: int = 5
    dropout: float = 0.5
    learning_rate: float = 0.1
    weight_decay: float = 1e-2
    max_steps: int = 300
    eval_every: int = 10
    patience: int = 5
    val_fraction: float = 0.2

    def __post_init__(self) -> None:
        counts = (self.n_members, self.n_passes, self.max_steps, self.eval_every, self.patience)
        if min(counts) < 1:
            raise ConfigError(
                "HeadSettings n_members, n_passes, max_steps, eval_every and patience must be "
                f">= 1, got {counts}"
            )
        if not 0.0 <= self.dropout < 1.0 or not 0.0 < self.val_fraction < 1.0:
            raise ConfigError(
                f"HeadSettings needs dropout in [0, 1) and val_fraction in (0, 1), got "
                f"dropout={self.dropout}, val_fraction={self.val_fraction}"
            )


@dataclass(frozen=True)
class LoopSettings:
    """The active-learning protocol.

    Attributes:
        acquisition: a registered acquisition name (``bald``, ``entropy``, ``random``, ...).
        selection: ``top_k`` or ``power`` (stochastic power sampling of the scores).
        beta: the power for ``selection="power"``.
        initial_size: galaxies labelled before the first iteration (drawn at random).
        batch_size: galaxies acquired per iteration.
        n_iterations: acquisitions.
        total_votes: volunteers per galaxy that the acquisition function assumes.
    """

    acquisition: str = "bald"
    selection: str = "top_k"
    beta: float = 1.0
    initial_size: int = 64
    batch_size: int = 64
    n_iterations: int = 12
    total_votes: int = DEFAULT_TOTAL_VOTES

    def __post_init__(self) -> None:
        get_acquisition(self.acquisition)
        if self.selection not in SELECTION_METHODS:
            raise ConfigError(
                f"unknown selection {self.selection!r}; choose one of {list(SELECTION_METHODS)}"
            )
        if min(self.initial_size, self.batch_size) < 2 or self.n_iterations < 0:
            raise ConfigError(
                "LoopSettings needs initial_size >= 2, batch_size >= 2 and n_iterations >= 0, got "
                f"{self.initial_size}, {self.batch_size}, {self.n_iterations}"
            )


@dataclass
class LoopResult:
    """What one run of the loop measured.

    Attributes:
        n_labelled: labelled galaxies when each test loss was measured (initial, then per batch).
        test_loss: the ensemble's test loss (:func:`ensemble_loss`) after training on them.
        acquired: pool indices labelled at each step (the initial set first).
    """

    n_labelled: list[int] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    acquired: list[np.ndarray] = field(default_factory=list)


def _member_losses(
    heads: list[DirichletHead], features: torch.Tensor, counts: torch.Tensor, schema: Schema
) -> torch.Tensor:
    """[n_members] mean over galaxies of the summed tree NLL, each head in its current mode."""
    concentrations = torch.cat([head(features) for head in heads])  # [M * n, n_answers]
    per_galaxy = tree_nll(counts.repeat(len(heads), 1), concentrations, schema.question_slices)
    return per_galaxy.sum(dim=1).view(len(heads), -1).mean(dim=1)


def train_heads(
    features: np.ndarray,
    counts: np.ndarray,
    schema: Schema,
    settings: HeadSettings,
    seed: int,
) -> list[DirichletHead]:
    """Train M Dirichlet heads on features and vote counts; each keeps its best validation state.

    The loss of a head is the mean over galaxies of the tree NLL summed over questions. The heads
    train together (their summed loss has independent gradients) on one random split of the
    galaxies, and each restores the weights of its own lowest validation loss.

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
            DirichletHead(x.shape[1], len(schema.label_cols), settings.dropout)
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
    heads: list[DirichletHead], features: np.ndarray, n_passes: int, seed: int
) -> np.ndarray:
    """MC-dropout posterior samples of every head: ``n_passes`` dropout masks per head.

    Args:
        heads: the ensemble.
        features: [n_galaxies, n_features].
        n_passes: dropout passes per head (T).
        seed: seeds the dropout masks.

    Returns:
        [n_galaxies, n_members x n_passes, n_answers] Dirichlet concentrations, member-major.
    """
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    samples = []
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for head in heads:
            head.train()
            samples.extend(head(x) for _ in range(n_passes))
            head.eval()
    return torch.stack(samples, dim=1).double().numpy()


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
    x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(counts), dtype=torch.float32)
    for head in heads:
        head.eval()
    with torch.no_grad():
        return float(_member_losses(heads, x, y, schema).mean())


def acquire(
    heads: list[DirichletHead],
    features: np.ndarray,
    schema: Schema,
    loop: LoopSettings,
    n_passes: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Pick ``loop.batch_size`` galaxies to label from unlabelled features.

    Args:
        heads: the current ensemble.
        features: [n_unlabelled, n_features].
        schema: the decision tree.
        loop: acquisition function and selection method.
        n_passes: MC-dropout passes per head.
        rng: draws the dropout seed, random scores and power sampling.

    Returns:
        [min(batch_size, n_unlabelled)] distinct indices into ``features``.

    Raises:
        SelectionError: if power sampling meets negative scores.
    """
    samples = posterior_samples(heads, features, n_passes, int(rng.integers(2**31)))
    torch_threads = torch.get_num_threads()
    scores = get_acquisition(loop.acquisition)(
        samples, schema, rng=rng, total_votes=loop.total_votes
    )
    # numba's OpenMP threading layer resets the OpenMP thread count that torch also uses
    torch.set_num_threads(torch_threads)
    if loop.selection == "power":
        if (scores < -1e-9).any():
            raise SelectionError(
                f"power selection needs non-negative scores; {loop.acquisition!r} gave "
                f"{scores.min():.3g}; use selection='top_k'"
            )
        return select_power(np.clip(scores, 0.0, None), loop.batch_size, rng, beta=loop.beta)
    return select_top_k(scores, loop.batch_size)


def run_active_loop(
    pool_features: np.ndarray,
    oracle: Oracle,
    eval_features: np.ndarray,
    eval_counts: np.ndarray,
    schema: Schema,
    loop: LoopSettings,
    head_settings: HeadSettings,
    seed: int,
) -> LoopResult:
    """Run the loop: label an initial random set, then train, measure, acquire and label, repeat.

    The oracle is asked only about the galaxies acquired, once each. With the same seed, two
    loops that differ only in ``loop.acquisition`` start from the same initial set and train
    identically initialised heads, so their first test losses are equal.

    Args:
        pool_features: [n_pool, n_features] features of the unlabelled pool.
        oracle: labels a batch of pool indices with vote counts.
        eval_features: [n_eval, n_features] features of the fixed evaluation set.
        eval_counts: [n_eval, n_answers] its vote counts.
        schema: the decision tree.
        loop: the protocol.
        head_settings: the ensemble settings.
        seed: seeds the initial set, the heads and the acquisition.

    Returns:
        The test loss after each training and the indices acquired.

    Raises:
        ConfigError: if the pool is smaller than the initial set.
    """
    n_pool = len(pool_features)
    if n_pool < loop.initial_size:
        raise ConfigError(f"pool of {n_pool} galaxies < initial_size {loop.initial_size}")
    labelled = np.random.default_rng([seed, 0]).choice(n_pool, loop.initial_size, replace=False)
    counts = np.asarray(oracle(labelled))
    rng = np.random.default_rng([seed, 1])
    result = LoopResult(acquired=[labelled])
    for iteration in range(loop.n_iterations + 1):
        started = time.perf_counter()
        ensemble = train_heads(
            pool_features[labelled], counts, schema, head_settings, 1000 * seed + iteration
        )
        result.n_labelled.append(len(labelled))
        result.test_loss.append(ensemble_loss(ensemble, eval_features, eval_counts, schema))
        unlabelled = np.setdiff1d(np.arange(n_pool), labelled)
        if iteration == loop.n_iterations or unlabelled.size == 0:
            break
        picked = unlabelled[
            acquire(ensemble, pool_features[unlabelled], schema, loop, head_settings.n_passes, rng)
        ]
        labelled = np.concatenate([labelled, picked])
        counts = np.concatenate([counts, np.asarray(oracle(picked))])
        result.acquired.append(picked)
        logger.info(
            "active learning iteration acquisition=%s selection=%s seed=%d iteration=%d "
            "n_labelled=%d test_loss=%.4f duration_s=%.2f",
            loop.acquisition,
            loop.selection,
            seed,
            iteration,
            result.n_labelled[-1],
            result.test_loss[-1],
            time.perf_counter() - started,
        )
    return result


def labels_to_reach(n_labelled: np.ndarray, losses: np.ndarray, target: float) -> float:
    """Labels at which a loss curve first reaches ``target``, linearly interpolated.

    Args:
        n_labelled: [n_points] increasing label counts.
        losses: [n_points] test losses at those counts.
        target: the loss to reach.

    Returns:
        The interpolated label count; ``n_labelled[0]`` if the first loss is already at or below
        the target; NaN if the curve never reaches it.
    """
    x = np.asarray(n_labelled, dtype=np.float64)
    y = np.asarray(losses, dtype=np.float64)
    reached = np.flatnonzero(y <= target)
    if reached.size == 0:
        return math.nan
    i = int(reached[0])
    if i == 0:
        return float(x[0])
    fraction = (y[i - 1] - target) / (y[i - 1] - y[i])
    return float(x[i - 1] + fraction * (x[i] - x[i - 1]))

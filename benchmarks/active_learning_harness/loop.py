"""Pool-based active learning on frozen encoder features: train heads, acquire, label, repeat.

Each iteration trains an ensemble of M :class:`~zoobot.finetune.heads.DirichletHead` heads on
the labelled galaxies' features (full batch AdamW, early stopping on a held-out share of the
labelled set), measures the whole-tree and per-question test loss, scores the unlabelled pool
from ``M x T`` MC-dropout posterior samples with a registered acquisition function (or the
questions' mutual information under fixed weights), picks a batch (top-k or power sampling, with
an optional random control share), and asks an oracle (volunteers, real or simulated) for the
batch's vote counts. Training heads on cached features instead of finetuning the encoder makes
one iteration take seconds, so acquisition functions can be compared over many seeds.

References:
    Walmsley et al. 2020, MNRAS 491, 1554, "Galaxy Zoo: probabilistic morphology through Bayesian
    CNNs and active learning", Sec. 5 (the protocol this loop scales down).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from active_learning_harness.heads import (
    HeadSettings,
    posterior_samples,
    question_losses,
    train_heads,
)
from prioritiser.acquisition import (
    DEFAULT_TOTAL_VOTES,
    combined_score,
    get_acquisition,
    mutual_information,
)
from prioritiser.diversity import select_diverse
from prioritiser.errors import ConfigError, SelectionError
from prioritiser.selection import SELECTION_METHODS, select_batch
from zoobot.finetune.heads import DirichletHead
from zoobot.schemas import Schema

__all__ = [
    "LoopResult",
    "LoopSettings",
    "PoolScorer",
    "acquire",
    "labels_to_reach",
    "run_active_loop",
    "score_samples",
    "select",
]

logger = logging.getLogger(__name__)

SHARED_MASK_ACQUISITIONS = ("epig",)
"""Acquisitions that compare galaxies under one posterior draw: their passes share dropout masks."""

LOOP_SELECTIONS = (*SELECTION_METHODS, "diverse")
"""Batch selections of the loop: the daemon's, and diverse (clusters of the pool's features)."""

Oracle = Callable[[np.ndarray], np.ndarray]
"""Pool indices [k] -> vote counts [k, n_answers]: the volunteers who label an acquired batch."""

PoolScorer = Callable[[list[DirichletHead], np.ndarray], np.ndarray]
"""(ensemble, unlabelled pool indices [n]) -> scores [n]: scores the pool in place of the
acquisition function, e.g. a simulation's reference that knows each galaxy's true answers."""


@dataclass(frozen=True)
class LoopSettings:
    """The active-learning protocol.

    Attributes:
        acquisition: a registered acquisition name (``bald``, ``entropy``, ``random``, ...).
        selection: ``top_k``, ``power`` (stochastic power sampling of the scores) or
            ``diverse`` (:func:`~prioritiser.diversity.select_diverse` on the pool's features).
        beta: the power for ``selection="power"``.
        initial_size: galaxies labelled before the first iteration (drawn at random).
        batch_size: galaxies acquired per iteration.
        n_iterations: acquisitions.
        total_votes: volunteers per galaxy that the acquisition function assumes.
        weights: score by the per-question mutual information combined with these fixed
            weights (question name -> weight, unnamed questions weigh 0) instead of the registered
            function's P(asked) weighting; only with ``acquisition="bald"``. ``{"bar": 1.0}``
            scores one question alone (as Walmsley et al. 2020 did for smooth-or-featured and
            bar); weight 1 for every question sums the mutual information, whose N_q already
            counts P(asked) once. ``None`` uses the registered function.
        random_fraction: share of each batch drawn uniformly at random from the galaxies the
            scored picks left (the daemon's random control sample), in [0, 1].
    """

    acquisition: str = "bald"
    selection: str = "top_k"
    beta: float = 1.0
    initial_size: int = 64
    batch_size: int = 64
    n_iterations: int = 12
    total_votes: int = DEFAULT_TOTAL_VOTES
    weights: Mapping[str, float] | None = None
    random_fraction: float = 0.0

    def __post_init__(self) -> None:
        get_acquisition(self.acquisition)
        if self.weights is not None and self.acquisition != "bald":
            raise ConfigError(
                f"LoopSettings weights={dict(self.weights)!r} weight the questions' mutual "
                f"information: they need acquisition='bald', got {self.acquisition!r}"
            )
        if self.selection not in LOOP_SELECTIONS:
            raise ConfigError(
                f"unknown selection {self.selection!r}; choose one of {list(LOOP_SELECTIONS)}"
            )
        if self.selection == "diverse" and self.random_fraction:
            raise ConfigError("LoopSettings selection='diverse' takes no random_fraction")
        if not 0.0 <= self.random_fraction <= 1.0:
            raise ConfigError(
                f"LoopSettings random_fraction must be in [0, 1], got {self.random_fraction}"
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
        test_loss: the ensemble's whole-tree test loss after training on them: mean over heads
            and evaluation galaxies of the NLL summed over questions, dropout off (nats/galaxy).
        question_loss: the same per question, [n_questions] per step, summing to ``test_loss``.
        acquired: pool indices labelled at each step (the initial set first).
    """

    n_labelled: list[int] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    question_loss: list[np.ndarray] = field(default_factory=list)
    acquired: list[np.ndarray] = field(default_factory=list)


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
        rng: draws the dropout seed, random scores and EPIG targets, power sampling and the
            diverse selection's clustering.

    Returns:
        [min(batch_size, n_unlabelled)] distinct indices into ``features``.

    Raises:
        SelectionError: if power sampling or diverse selection meets negative scores.
        ConfigError: if ``loop.weights`` names a question the schema lacks.
    """
    samples = posterior_samples(
        heads,
        features,
        n_passes,
        int(rng.integers(2**31)),
        shared_masks=loop.acquisition in SHARED_MASK_ACQUISITIONS,
    )
    return select(score_samples(samples, schema, loop, rng), features, loop, rng)


def score_samples(
    samples: np.ndarray, schema: Schema, loop: LoopSettings, rng: np.random.Generator
) -> np.ndarray:
    """Score galaxies from posterior samples with the loop's acquisition or question weights.

    Args:
        samples: [n_galaxies, n_samples, n_answers] Dirichlet concentrations.
        schema: the decision tree.
        loop: the acquisition function, or fixed question weights of the mutual information.
        rng: draws random scores and EPIG targets.

    Returns:
        [n_galaxies] scores, higher meaning "label sooner".

    Raises:
        ConfigError: if ``loop.weights`` names a question the schema lacks.
    """
    torch_threads = torch.get_num_threads()
    if loop.weights is None:
        scores = get_acquisition(loop.acquisition)(
            samples, schema, rng=rng, total_votes=loop.total_votes
        )
    else:
        unknown = sorted(set(loop.weights) - set(schema.question_names))
        if unknown:
            raise ConfigError(
                f"LoopSettings weights name questions {unknown} that are not in schema "
                f"{schema.name!r}: {schema.question_names}"
            )
        information = mutual_information(samples, schema, loop.total_votes)
        scores = combined_score(information, schema, weights=loop.weights)
    # numba's OpenMP threading layer resets the OpenMP thread count that torch also uses
    torch.set_num_threads(torch_threads)
    return scores


def select(
    scores: np.ndarray, features: np.ndarray, loop: LoopSettings, rng: np.random.Generator
) -> np.ndarray:
    """Pick ``loop.batch_size`` galaxies from their scores with the loop's selection method.

    Args:
        scores: [n_unlabelled] acquisition scores (higher: more wanted).
        features: [n_unlabelled, n_features], clustered by ``selection="diverse"``.
        loop: selection method, batch size and random control share.
        rng: draws power sampling, the control share and the clustering.

    Returns:
        [min(batch_size, n_unlabelled)] distinct indices into ``scores``.

    Raises:
        SelectionError: if power sampling or diverse selection meets negative scores.
    """
    if loop.selection in ("power", "diverse"):
        if (scores < -1e-9).any():
            raise SelectionError(
                f"{loop.selection} selection needs non-negative scores, got "
                f"{scores.min():.3g}; use selection='top_k'"
            )
        scores = np.clip(scores, 0.0, None)
    if loop.selection == "diverse":
        return select_diverse(scores, features, loop.batch_size, rng)
    batch = select_batch(
        scores, loop.batch_size, rng, loop.selection, loop.random_fraction, beta=loop.beta
    )
    return batch["index"].to_numpy()


def run_active_loop(
    pool_features: np.ndarray,
    oracle: Oracle,
    eval_features: np.ndarray,
    eval_counts: np.ndarray,
    schema: Schema,
    loop: LoopSettings,
    head_settings: HeadSettings,
    seed: int,
    pool_scorer: PoolScorer | None = None,
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
        pool_scorer: scores the unlabelled pool instead of ``loop.acquisition`` (whose
            ``acquisition`` and ``weights`` are then unused); the batch is still picked by
            ``loop.selection``.

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
        per_question = question_losses(ensemble, eval_features, eval_counts, schema)
        result.question_loss.append(per_question)
        result.test_loss.append(float(per_question.sum()))
        unlabelled = np.setdiff1d(np.arange(n_pool), labelled)
        if iteration == loop.n_iterations or unlabelled.size == 0:
            break
        features = pool_features[unlabelled]
        chosen = (
            acquire(ensemble, features, schema, loop, head_settings.n_passes, rng)
            if pool_scorer is None
            else select(pool_scorer(ensemble, unlabelled), features, loop, rng)
        )
        picked = unlabelled[chosen]
        labelled = np.concatenate([labelled, picked])
        counts = np.concatenate([counts, np.asarray(oracle(picked))])
        result.acquired.append(picked)
        logger.info(
            "active learning iteration acquisition=%s selection=%s seed=%d iteration=%d "
            "n_labelled=%d test_loss=%.4f duration_s=%.2f",
            loop.acquisition if pool_scorer is None else "pool_scorer",
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

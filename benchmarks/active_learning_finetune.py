"""Active learning with the encoder finetuned inside the loop: does BALD save more labels then?

``benchmarks/active_learning.py`` trains heads on frozen features. Here the last
``--trainable-stages`` stages of a ConvNeXt encoder (zoobot-sim-atto by default) are finetuned at
every iteration, from the pretrained weights, together with the encoder's head norm and a
dropout + linear Dirichlet head, as Zoobot finetunes. The frozen stages' output is computed once
for every image and cached, so one CPU core can run the last stage (half of the encoder's weights)
in the loop; the whole encoder (``--trainable-stages 4``) needs a GPU (``--device cuda``).
``--reinitialise`` starts the finetuned stages from random weights instead (the frozen stages
stay pretrained), nearer W20's networks trained from scratch.

Protocol as ``active_learning.py`` (same simulated galaxies, volunteers, seeds, initial sets and
evaluation set): label ``--initial`` random pool galaxies, then ``--iterations`` times finetune one
model (minibatch AdamW, early stopping on a held-out fifth of the labelled set), measure the test
loss, score the rest of the pool from ``--passes`` MC-dropout passes of the head (W20's posterior:
one network, T = 15) and label the ``--batch`` galaxies picked (top-k). Arms: ``random``,
``bald`` (P(asked) weights), ``bald_uniform`` (every question weighs 1); the default runs random
and ``bald_uniform``.

Example (session 4: 45 minutes for three arms on 2 CPU cores, the stage cache 1 minute more;
results in BENCHMARKS.md)::

    python benchmarks/active_learning_finetune.py --arms random bald bald_uniform

Prints markdown tables to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from active_learning import (
    N_VOLUNTEERS,
    REPORTED_QUESTIONS,
    SIMULATION_SEED,
    UNIFORM,
    _log_to_stderr,
    add_protocol_arguments,
    encode,
    simulated_catalog,
    summarise,
)
from active_learning_harness.loop import LoopSettings, score_samples
from torch import nn

from prioritiser.selection import select_top_k
from zoobot import strict_json
from zoobot.datasets.simulated import (
    answer_probabilities,
    ask_volunteers,
    draw_truths,
)
from zoobot.finetune.heads import DirichletHead
from zoobot.losses import tree_nll
from zoobot.models import create_encoder, get_pretrained_weights
from zoobot.schemas import decals_dr5_schema

logger = logging.getLogger("benchmarks.active_learning_finetune")

SCHEMA = decals_dr5_schema
ARMS = ("random", "bald", "bald_uniform")
VAL_FRACTION = 0.2
MINIBATCH = 64


class StageModel(nn.Module):
    """The encoder's last stages (pretrained), its head norm and zoobot's Dirichlet head."""

    def __init__(self, encoder: nn.Module, n_trainable: int, n_answers: int, dropout: float):
        super().__init__()
        self.stages = copy.deepcopy(encoder.stages[len(encoder.stages) - n_trainable :])
        self.norm = copy.deepcopy(encoder.head.norm)
        self.head = DirichletHead(encoder.num_features, n_answers, dropout)

    def embed(self, trunk: torch.Tensor) -> torch.Tensor:
        """[batch, C, H, W] frozen-stage output -> [batch, num_features] pooled features."""
        pooled = self.stages(trunk).mean(dim=(2, 3), keepdim=True)
        return self.norm(pooled).flatten(1)

    def concentrations(self, embedded: torch.Tensor) -> torch.Tensor:
        """Pooled features -> Dirichlet concentrations in (1, 101), dropout in train mode."""
        return self.head(embedded)


def frozen_stage_output(args: argparse.Namespace) -> np.ndarray:
    """The output of the frozen stem and stages for every simulated image (cached as .npy)."""
    sims, catalog = simulated_catalog(args)
    path = sims / f"frozen_{args.encoder}_train{args.trainable_stages}.npy"
    if path.is_file():
        return np.load(path)
    encoder = create_encoder(args.encoder).eval()
    if not hasattr(encoder, "stages") or args.trainable_stages > len(encoder.stages):
        raise SystemExit(
            f"--encoder {args.encoder!r} is not a ConvNeXt with {args.trainable_stages} stages"
        )
    n_frozen = len(encoder.stages) - args.trainable_stages
    frozen = nn.Sequential(encoder.stem, *encoder.stages[:n_frozen])
    trunk = encode(list(catalog["file_loc"]), frozen, args.size)
    np.save(path, trunk)
    return trunk


def finetune(
    encoder: nn.Module,
    trunk: np.ndarray,
    counts: np.ndarray,
    args: argparse.Namespace,
    seed: int,
) -> StageModel:
    """Finetune a fresh copy of the last stages on the labelled galaxies; best validation state."""
    device = torch.device(args.device)
    torch.manual_seed(seed)
    model = StageModel(encoder, args.trainable_stages, counts.shape[1], args.dropout).to(device)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(trunk))
    n_val = max(1, round(VAL_FRACTION * len(trunk)))
    val, train = order[:n_val], order[n_val:]
    x_val = torch.from_numpy(trunk[val]).to(device)
    y_val = torch.from_numpy(counts[val]).to(device)
    head_parameters = [*model.norm.parameters(), *model.head.parameters()]
    optimiser = torch.optim.AdamW(
        [
            {"params": model.stages.parameters(), "lr": args.encoder_lr},
            {"params": head_parameters, "lr": args.head_lr},
        ],
        weight_decay=0.05,
    )
    best, state, stale = math.inf, copy.deepcopy(model.state_dict()), 0
    for _ in range(args.epochs):
        model.train()
        shuffled = rng.permutation(train)
        for start in range(0, len(shuffled), MINIBATCH):
            batch = shuffled[start : start + MINIBATCH]
            optimiser.zero_grad()
            predicted = model.concentrations(model.embed(torch.from_numpy(trunk[batch]).to(device)))
            y = torch.from_numpy(counts[batch]).to(device)
            tree_nll(y, predicted, SCHEMA.question_slices, reduction="sum").mean().backward()
            optimiser.step()
        model.eval()
        with torch.no_grad():
            predicted = model.concentrations(model.embed(x_val))
            loss = tree_nll(y_val, predicted, SCHEMA.question_slices, reduction="sum").mean()
        if loss.item() < best:
            best, state, stale = loss.item(), copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= args.patience:
                break
    model.load_state_dict(state)
    return model.eval()


def embed_pool(model: StageModel, trunk: np.ndarray, device: str) -> torch.Tensor:
    """Pooled features of many galaxies, in chunks, no gradients."""
    with torch.no_grad():
        return torch.cat(
            [
                model.embed(torch.from_numpy(trunk[s : s + 512]).to(device))
                for s in range(0, len(trunk), 512)
            ]
        )


def bald_scores(
    model: StageModel, embedded: torch.Tensor, arm: str, passes: int, seed: int
) -> np.ndarray:
    """Whole-tree BALD from ``passes`` MC-dropout passes of the head."""
    model.train()
    torch.manual_seed(seed)
    with torch.no_grad():
        samples = torch.stack([model.concentrations(embedded) for _ in range(passes)], dim=1)
    model.eval()
    weights = UNIFORM if arm == "bald_uniform" else None
    loop = LoopSettings(acquisition="bald", weights=weights)
    return score_samples(samples.double().cpu().numpy(), SCHEMA, loop, np.random.default_rng(seed))


def trainable_source(args: argparse.Namespace, seed: int) -> nn.Module:
    """The encoder whose last stages and head norm each iteration copies and finetunes.

    The pretrained encoder, or with ``--reinitialise`` its architecture with timm's random
    initialisation (seeded), so that the finetuned stages learn from the labels alone.
    """
    if not args.reinitialise:
        return create_encoder(args.encoder)
    shipped = get_pretrained_weights(args.encoder)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return create_encoder(shipped[0] if shipped else args.encoder)


def run_one(job: tuple[str, int, argparse.Namespace]) -> tuple[str, int, list[np.ndarray]]:
    """One arm and seed: per-question test losses after each finetuning."""
    arm, seed, args = job
    torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
    trunk = frozen_stage_output(args)
    _, catalog = simulated_catalog(args)
    n_pool = args.n - args.n_eval
    truth = answer_probabilities(draw_truths(args.n, SIMULATION_SEED), SCHEMA)[:n_pool]
    votes = ask_volunteers(truth, N_VOLUNTEERS, np.random.default_rng([SIMULATION_SEED, seed]))
    votes = votes.astype(np.float32)
    eval_counts = torch.tensor(
        catalog[SCHEMA.label_cols].to_numpy(dtype=np.float32)[n_pool:], device=args.device
    )
    encoder = trainable_source(args, seed)
    labelled = np.random.default_rng([seed, 0]).choice(n_pool, args.initial, replace=False)
    rng = np.random.default_rng([seed, 1])
    losses = []
    for iteration in range(args.iterations + 1):
        started = time.perf_counter()
        model = finetune(encoder, trunk[labelled], votes[labelled], args, 1000 * seed + iteration)
        with torch.no_grad():
            predicted = model.concentrations(embed_pool(model, trunk[n_pool:], args.device))
            per_question = tree_nll(eval_counts, predicted.double(), SCHEMA.question_slices)
        losses.append(per_question.mean(dim=0).cpu().numpy())
        logger.info(
            "arm=%s seed=%d labelled=%d test_loss=%.3f duration_s=%.0f",
            arm,
            seed,
            len(labelled),
            losses[-1].sum(),
            time.perf_counter() - started,
        )
        if iteration == args.iterations:
            break
        unlabelled = np.setdiff1d(np.arange(n_pool), labelled)
        if arm == "random":
            picked = rng.choice(unlabelled, args.batch, replace=False)
        else:
            embedded = embed_pool(model, trunk[unlabelled], args.device)
            scores = bald_scores(model, embedded, arm, args.passes, int(rng.integers(2**31)))
            picked = unlabelled[select_top_k(scores, args.batch)]
        labelled = np.concatenate([labelled, picked])
    return arm, seed, losses


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default="zoobot-sim-atto", help="shipped or timm ConvNeXt")
    parser.add_argument("--trainable-stages", type=int, default=1, help="last stages finetuned")
    add_protocol_arguments(parser)
    parser.add_argument("--passes", type=int, default=15, help="MC-dropout passes (T)")
    parser.add_argument(
        "--reinitialise",
        action="store_true",
        help="start the finetuned stages from random weights, not the pretrained ones",
    )
    parser.add_argument("--dropout", type=float, default=0.5, help="dropout before the output")
    parser.add_argument("--encoder-lr", type=float, default=2e-4, help="AdamW, finetuned stages")
    parser.add_argument("--head-lr", type=float, default=3e-3, help="AdamW, norm and head")
    parser.add_argument("--epochs", type=int, default=40, help="epochs at most")
    parser.add_argument("--patience", type=int, default=4, help="epochs without improvement")
    parser.add_argument("--arms", nargs="+", default=["random", "bald_uniform"], choices=ARMS)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", type=Path, help="write the raw curves here")
    args = parser.parse_args(argv)
    if "random" not in args.arms:
        parser.error("--arms must include random (the baseline)")
    if args.trainable_stages < 1:
        parser.error(f"--trainable-stages must be >= 1, got {args.trainable_stages}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _log_to_stderr()
    started = time.perf_counter()
    frozen_stage_output(args)
    jobs = [(arm, seed, args) for seed in range(args.seeds) for arm in args.arms]
    with ProcessPoolExecutor(
        args.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_log_to_stderr
    ) as pool:
        results = sorted(pool.map(run_one, jobs), key=lambda r: r[1])
    names = SCHEMA.question_names
    tree: dict[str, list[list[float]]] = {arm: [] for arm in args.arms}
    questions = {q: {arm: [] for arm in args.arms} for q in REPORTED_QUESTIONS}
    for arm, _, losses in results:
        tree[arm].append([float(step.sum()) for step in losses])
        for q in REPORTED_QUESTIONS:
            questions[q][arm].append([float(step[names.index(q)]) for step in losses])
    labels = args.initial + args.batch * np.arange(args.iterations + 1)
    print(
        f"Active learning, encoder finetuned in the loop: {args.encoder}, last "
        f"{args.trainable_stages} stage(s) trainable"
        f"{' from random weights' if args.reinitialise else ''}, pool {args.n - args.n_eval}, eval "
        f"{args.n_eval}, {args.initial} + {args.batch} x {args.iterations}, one model x "
        f"T={args.passes} passes, {args.seeds} seeds, {time.perf_counter() - started:.0f} s.\n"
    )
    print(summarise(labels, tree, "Whole tree (test loss summed over questions)"))
    for q in REPORTED_QUESTIONS:
        print()
        print(summarise(labels, questions[q], f"Question {q} alone"))
    if args.json:
        raw = {"labels": labels.tolist(), "tree": tree, "questions": questions}
        args.json.write_text(strict_json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Active learning on simulated galaxies: how many labels BALD saves against random and entropy.

A scaled-down Walmsley et al. (2020, "W20") protocol, entirely on simulated galaxies:

1. simulate and render ``--n`` galaxies once (cached under ``--work-dir``); the last ``--n-eval``
   form a fixed evaluation set labelled by 40 simulated volunteers each, the rest the pool
   (10,000 by default: W20 drew from thousands, and a pool only a few times the final labelled
   set leaves an acquisition function little to choose from);
2. compute frozen-encoder features once for all of them (cached);
3. per arm and seed (:func:`active_learning_harness.loop.run_active_loop`), ``--jobs`` processes
   at a time: label ``--initial`` random pool galaxies, then ``--iterations`` times train an
   ensemble of M heads (:mod:`active_learning_harness.heads`) on the labelled features, measure
   the test loss, score the rest of the pool from M x T MC-dropout samples, and have 40
   simulated volunteers label the ``--batch`` galaxies picked.

Each seed draws one set of volunteer votes for the whole pool (``ask_volunteers`` on the true
answer probabilities) and reveals a galaxy's votes only when an arm acquires it, so arms face the
same volunteers and start from the same initial set and heads.

Features: the encoder's pooled features, standardised, reduced to ``--pca`` whitened principal
components (computed on all images, no labels). Head: a hidden layer of ``--hidden`` GELU units
with dropout before it and before the output (``--hidden 0``: the linear head of earlier runs,
whose test loss stops improving after about a thousand labels, so no acquisition can save much).

Arms: random, predictive entropy, BALD over the whole tree (top-k and power sampling), and, as in
W20, power-sampled BALD of one question alone (smooth-or-featured, bar). Whole-tree BALD comes with
two weightings of the per-question mutual information: the registered function's default P(asked)
(``bald``, ``power_bald``), and weight 1 per question (``*_uniform``): each question's mutual
information already assumes N_q = 40 x P(asked) votes, so the default counts P(asked) twice and
favours galaxies deep in the tree. ``bald_uniform_control`` draws a quarter of each batch at
random, as the daemon's control sample does. ``*_diverse`` arms spread each batch over feature
space (score-weighted k-means on the 10 x batch best-scored galaxies, Zhdanov 2019) instead of
taking the top k. ``epig`` scores the expected information a vote per question gives about votes
on 512 random pool galaxies (prediction-oriented, Bickford Smith et al. 2023); it costs about
10 s per iteration on a pool of 10,000. ``true_error`` is a reference no real acquisition can be:
it knows each pool galaxy's true answer probabilities and labels the galaxies the ensemble gets
most wrong (:func:`true_error_scorer`), which tells whether knowing the model's errors, rather
than estimating its uncertainty, would save more labels.

W20's own protocol (start 256, +128 x 25 iterations, evaluation set 2,500)::

    python benchmarks/active_learning.py --n 12500 --n-eval 2500 --initial 256 --iterations 25 \
        --arms random entropy bald bald_uniform

Test loss: mean over the M heads (dropout off) of the mean over evaluation galaxies of the tree
Dirichlet-multinomial NLL summed over questions, in nats per galaxy; the same is reported for
smooth-or-featured and bar alone (W20 reported these per question). "Labels to reach" is the
labelled-set size at which an arm's seed-mean curve first falls to random's final seed-mean test
loss, linearly interpolated; per-seed values use that seed's random arm as the target. The table
also gives the labels needed to reach random's loss at mid-run (the middle label count).

Example (about 10 minutes on 2 shared CPU cores, the first run 1.5 more to render and encode)::

    python benchmarks/active_learning.py --png docs/active_learning.png

Prints markdown tables to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import logging
import math
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.special
import torch
from active_learning_harness.heads import HeadSettings
from active_learning_harness.loop import LoopSettings, PoolScorer, labels_to_reach, run_active_loop

from zoobot import strict_json
from zoobot.data import evaluation_transform, load_image
from zoobot.datasets.simulated import (
    answer_probabilities,
    ask_volunteers,
    draw_truths,
    make_catalog,
)
from zoobot.finetune.heads import DirichletHead
from zoobot.models import create_encoder
from zoobot.schemas import Schema, decals_dr5_schema

logger = logging.getLogger("benchmarks.active_learning")

#: every question weighs 1: the mutual information's N_q = 40 x P(asked) counts P(asked) once
UNIFORM = {name: 1.0 for name in decals_dr5_schema.question_names}
#: arm name -> its LoopSettings fields (acquisition, selection, fixed question weights instead of
#: the default P(asked), random control share of each batch)
ARMS: dict[str, dict[str, Any]] = {
    "random": {"acquisition": "random"},
    "entropy": {"acquisition": "entropy"},
    "bald": {"acquisition": "bald"},
    "power_bald": {"acquisition": "bald", "selection": "power"},
    "bald_uniform": {"acquisition": "bald", "weights": UNIFORM},
    "power_bald_uniform": {"acquisition": "bald", "selection": "power", "weights": UNIFORM},
    "bald_uniform_control": {"acquisition": "bald", "weights": UNIFORM, "random_fraction": 0.25},
    "bald_uniform_diverse": {"acquisition": "bald", "weights": UNIFORM, "selection": "diverse"},
    "epig": {"acquisition": "epig"},
    "epig_diverse": {"acquisition": "epig", "selection": "diverse"},
    "power_bald_smooth": {
        "acquisition": "bald",
        "selection": "power",
        "weights": {"smooth-or-featured": 1.0},
    },
    "power_bald_bar": {"acquisition": "bald", "selection": "power", "weights": {"bar": 1.0}},
    "true_error": {},
}
#: reference arms that score the pool with the simulation's truth (:func:`true_error_scorer`)
TRUTH_ARMS = ("true_error",)
#: questions whose test loss is reported alone (W20 reported these two)
REPORTED_QUESTIONS = ("smooth-or-featured", "bar")
N_VOLUNTEERS = 40
SIMULATION_SEED = 2020  # pretraining of zoobot-sim-atto used seed 100: these galaxies are unseen


@dataclass(frozen=True)
class Data:
    """Features and labels shared by every arm."""

    pool_features: np.ndarray  # [n_pool, n_features]
    pool_probabilities: np.ndarray  # [n_pool, n_answers] true answer probabilities
    eval_features: np.ndarray  # [n_eval, n_features]
    eval_counts: np.ndarray  # [n_eval, n_answers] 40 volunteers each


def simulated_catalog(args: argparse.Namespace) -> tuple[Path, pd.DataFrame]:
    """The benchmark's simulated galaxies (rendered once, cached): their folder and catalogue."""
    sims = Path(args.work_dir) / f"sims_seed{SIMULATION_SEED}_n{args.n}_{args.size}px"
    return sims, make_catalog(args.n, args.size, SIMULATION_SEED, sims, workers=args.workers)


def encode(
    paths: list[str], network: torch.nn.Module, size: int, batch_size: int = 128
) -> np.ndarray:
    """A frozen network's output for every image, evaluation transform applied, in eval mode."""
    network.eval()
    transform = evaluation_transform(size)
    outputs = []
    with torch.no_grad():
        for start in range(0, len(paths), batch_size):
            batch = torch.stack(
                [
                    transform(torch.from_numpy(load_image(p)))
                    for p in paths[start : start + batch_size]
                ]
            )
            outputs.append(network(batch).numpy())
            logger.info("encoded %d/%d", min(start + batch_size, len(paths)), len(paths))
    return np.concatenate(outputs)


def whiten(features: np.ndarray, n_components: int) -> np.ndarray:
    """Standardise, then keep the top principal components, each scaled to unit variance.

    Uses every image's features and no labels. A linear head on a few whitened components trains
    in a few hundred full-batch steps, where 320 raw features need thousands.
    """
    features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-6)
    if n_components <= 0 or n_components >= features.shape[1]:
        return features
    _, _, components = np.linalg.svd(features, full_matrices=False)
    projected = features @ components[:n_components].T
    return projected / projected.std(axis=0)


def load_data(args: argparse.Namespace) -> Data:
    """Simulate, render and encode (each cached), then split into pool and evaluation set."""
    sims, catalog = simulated_catalog(args)
    features_path = sims / f"features_{args.encoder}.npy"
    if features_path.is_file():
        features = np.load(features_path)
    else:
        started = time.perf_counter()
        features = encode(list(catalog["file_loc"]), create_encoder(args.encoder), args.size)
        np.save(features_path, features)
        logger.info("features computed duration_s=%.1f", time.perf_counter() - started)
    features = whiten(features, args.pca)
    probabilities = answer_probabilities(draw_truths(args.n, SIMULATION_SEED), decals_dr5_schema)
    counts = catalog[decals_dr5_schema.label_cols].to_numpy(dtype=np.int64)
    n_pool = args.n - args.n_eval
    return Data(features[:n_pool], probabilities[:n_pool], features[n_pool:], counts[n_pool:])


@dataclass(frozen=True)
class Curves:
    """Test-loss curves, one list per seed (in seed order) for each arm."""

    tree: dict[str, list[list[float]]]  # arm -> seeds -> whole-tree loss per step
    questions: dict[str, dict[str, list[list[float]]]]  # question -> arm -> seeds -> loss


def _log_to_stderr() -> None:
    """Progress logging, in the main process and in each worker."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")


def true_error_scorer(
    pool_features: np.ndarray, true_probabilities: np.ndarray, schema: Schema
) -> PoolScorer:
    """A reference no real acquisition can use: how wrong the ensemble is on each pool galaxy.

    Scores sum over questions ``N_q x KL(true answer probabilities || ensemble-mean expected vote
    fractions)`` with ``N_q = 40 x`` the true P(asked): the expected excess log-loss of the 40
    volunteers' votes. Top-k on it labels the galaxies the model gets most wrong, which estimates
    what knowing the model's errors (rather than estimating its uncertainty) is worth.
    """
    asked = schema.question_asked_probability(true_probabilities)
    expected_votes = N_VOLUNTEERS * asked[:, schema.question_index]  # [n_pool, n_answers]

    def score(heads: list[DirichletHead], indices: np.ndarray) -> np.ndarray:
        features = torch.as_tensor(pool_features[indices], dtype=torch.float32)
        with torch.no_grad():
            predicted = np.mean(
                [schema.vote_fractions(head.eval()(features).double().numpy()) for head in heads],
                axis=0,
            )
        truth = true_probabilities[indices]
        excess = expected_votes[indices] * scipy.special.rel_entr(truth, predicted)
        return excess.sum(axis=1)

    return score


def _run_one(
    job: tuple[str, int, Data, argparse.Namespace],
) -> tuple[str, int, list[float], dict[str, list[float]]]:
    """One arm and seed: the whole-tree and reported per-question test-loss curves."""
    arm, seed, data, args = job
    torch.set_num_threads(1)  # tiny tensors: more threads only add overhead on a shared machine
    head_settings = HeadSettings(
        n_members=args.members,
        n_passes=args.passes,
        hidden=args.hidden,
        dropout=args.dropout,
        input_dropout=args.input_dropout,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
    )
    loop = LoopSettings(
        initial_size=args.initial,
        batch_size=args.batch,
        n_iterations=args.iterations,
        **ARMS[arm],
    )
    votes = ask_volunteers(
        data.pool_probabilities, N_VOLUNTEERS, np.random.default_rng([SIMULATION_SEED, seed])
    )
    scorer = (
        true_error_scorer(data.pool_features, data.pool_probabilities, decals_dr5_schema)
        if arm in TRUTH_ARMS
        else None
    )
    started = time.perf_counter()
    result = run_active_loop(
        data.pool_features,
        lambda indices: votes[indices],
        data.eval_features,
        data.eval_counts,
        decals_dr5_schema,
        loop,
        head_settings,
        seed,
        pool_scorer=scorer,
    )
    logger.info(
        "arm done arm=%s seed=%d final_test_loss=%.4f duration_s=%.1f",
        arm,
        seed,
        result.test_loss[-1],
        time.perf_counter() - started,
    )
    names = decals_dr5_schema.question_names
    per_question = {
        q: [float(step[names.index(q)]) for step in result.question_loss]
        for q in REPORTED_QUESTIONS
    }
    return arm, seed, result.test_loss, per_question


def run_arms(args: argparse.Namespace, data: Data) -> Curves:
    """Every arm and seed, ``--jobs`` at a time in separate processes.

    Each seed draws one set of volunteer votes for the whole pool, so every arm of a seed meets
    the same volunteers.
    """
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(arm, seed, data, args) for seed in seeds for arm in args.arms]
    with ProcessPoolExecutor(
        args.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_log_to_stderr
    ) as pool:
        results = sorted(pool.map(_run_one, jobs), key=lambda r: r[1])
    curves = Curves(
        tree={arm: [] for arm in args.arms},
        questions={q: {arm: [] for arm in args.arms} for q in REPORTED_QUESTIONS},
    )
    for arm, _, tree, per_question in results:
        curves.tree[arm].append(tree)
        for q, losses in per_question.items():
            curves.questions[q][arm].append(losses)
    return curves


def _needed(labels: np.ndarray, curve: np.ndarray, target: float, baseline: float) -> str:
    """'labels (saving vs baseline %)' to reach ``target``, or 'not reached'."""
    needed = labels_to_reach(labels, curve, target)
    if math.isnan(needed):
        return f"not reached (> {labels[-1]})"
    return f"{needed:.0f} ({100 * (1 - needed / baseline):+.0f} %)"


def summarise(labels: np.ndarray, curves: dict[str, list[list[float]]], what: str) -> str:
    """A markdown table: final loss, labels to reach random's final (and mid-run) loss."""
    random_curves = np.array(curves["random"])
    random_mean = random_curves.mean(axis=0)
    target = float(random_mean[-1])
    baseline = labels_to_reach(labels, random_mean, target)
    middle = len(labels) // 2
    mid_target = float(random_mean[middle])
    mid_baseline = labels_to_reach(labels, random_mean, mid_target)
    rows = [
        f"{what}: random's final test loss {target:.3f} nats/galaxy at {labels[-1]} labels; "
        f"mid-run target: random's {mid_target:.3f} at {labels[middle]} labels "
        f"({len(random_curves)} seeds). Savings are 1 - labels / random's labels.",
        "",
        "| arm | final test loss (mean ± std) | labels to reach random's final loss (saving) "
        "| per seed: mean ± std (reached/seeds) | labels to reach the mid-run target (saving) |",
        "|---|---|---|---|---|",
    ]
    for arm, arm_curves in curves.items():
        losses = np.array(arm_curves)
        per_seed = np.array(
            [
                labels_to_reach(labels, losses[s], random_curves[s, -1])
                for s in range(min(len(losses), len(random_curves)))
            ]
        )
        reached = per_seed[~np.isnan(per_seed)]
        seed_text = (
            f"{reached.mean():.0f} ± {reached.std():.0f} ({reached.size}/{per_seed.size})"
            if reached.size
            else f"— (0/{per_seed.size})"
        )
        rows.append(
            f"| {arm} | {losses[:, -1].mean():.3f} ± {losses[:, -1].std():.3f} "
            f"| {_needed(labels, losses.mean(axis=0), target, baseline)} | {seed_text} "
            f"| {_needed(labels, losses.mean(axis=0), mid_target, mid_baseline)} |"
        )
    return "\n".join(rows)


def plot(labels: np.ndarray, curves: Curves, path: Path, title: str) -> None:
    """Test loss against labels, seed mean with a ±1 std band per arm: tree, then each question.

    The first two points (where every arm is far above the rest of the curve) are left out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels_data = [("whole tree (summed over questions)", curves.tree)] + [
        (q, curves.questions[q]) for q in REPORTED_QUESTIONS
    ]
    figure, panels = plt.subplots(1, len(panels_data), figsize=(5 * len(panels_data), 4.2), dpi=90)
    shown = labels >= labels[min(2, len(labels) - 1)]
    for axes, (name, by_arm) in zip(panels, panels_data, strict=True):
        colours = plt.get_cmap("tab20" if len(by_arm) > 10 else "tab10").colors
        for (arm, arm_curves), colour in zip(by_arm.items(), colours, strict=False):
            losses = np.array(arm_curves)[:, shown]
            mean, std = losses.mean(axis=0), losses.std(axis=0)
            (line,) = axes.plot(
                labels[shown], mean, marker="o", markersize=3, label=arm, color=colour
            )
            axes.fill_between(
                labels[shown], mean - std, mean + std, color=line.get_color(), alpha=0.2
            )
        target = np.array(by_arm["random"]).mean(axis=0)[-1]
        axes.axhline(target, color="grey", ls=":", lw=1, label="random's final loss")
        axes.set_title(name, fontsize=9)
        axes.set_xlabel("labelled galaxies (40 simulated volunteers each)")
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("test loss (nats/galaxy)")
    panels[0].legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """The simulated galaxies, the protocol's sizes, seeds, parallelism and cache, as flags."""
    parser.add_argument("--n", type=int, default=10500, help="simulated galaxies")
    parser.add_argument("--n-eval", type=int, default=500, help="fixed evaluation galaxies")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--initial", type=int, default=128, help="initial labelled galaxies")
    parser.add_argument("--batch", type=int, default=128, help="galaxies acquired per iteration")
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="arms and seeds run in parallel")
    parser.add_argument("--work-dir", default="/tmp/zoobot_active_learning", help="cache")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default="zoobot-sim-atto", help="shipped or timm encoder")
    add_protocol_arguments(parser)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds run: first-seed .. first-seed + seeds - 1"
    )
    parser.add_argument("--members", type=int, default=3, help="heads in the ensemble (M)")
    parser.add_argument("--passes", type=int, default=5, help="MC-dropout passes per head (T)")
    parser.add_argument("--hidden", type=int, default=128, help="hidden units (0: linear head)")
    parser.add_argument("--dropout", type=float, default=0.5, help="MC dropout before the output")
    parser.add_argument(
        "--input-dropout", type=float, default=0.2, help="dropout on the features (MLP head)"
    )
    parser.add_argument(
        "--pca", type=int, default=64, help="whitened principal components kept (0: all features)"
    )
    parser.add_argument("--learning-rate", type=float, default=0.01, help="AdamW, full batch")
    parser.add_argument("--max-steps", type=int, default=2000, help="optimiser steps at most")
    parser.add_argument(
        "--arms",
        nargs="+",
        default=[arm for arm in ARMS if arm not in TRUTH_ARMS],
        choices=list(ARMS),
        help="arms to run (default: all but the true_error reference)",
    )
    parser.add_argument("--png", type=Path, help="write the curves here")
    parser.add_argument("--json", type=Path, help="write the raw curves here")
    args = parser.parse_args(argv)
    if "random" not in args.arms:
        parser.error("--arms must include random (the baseline)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _log_to_stderr()
    torch.set_num_threads(1)  # tiny tensors: more threads only add overhead on a shared machine
    started = time.perf_counter()
    data = load_data(args)
    curves = run_arms(args, data)
    labels = args.initial + args.batch * np.arange(args.iterations + 1)
    head = f"MLP head ({args.hidden} hidden units)" if args.hidden else "linear head"
    print(
        f"Active learning on simulated galaxies: encoder {args.encoder}, pool "
        f"{len(data.pool_features)}, eval {len(data.eval_features)}, features: {args.pca} "
        f"whitened principal components, {head}, {args.initial} + "
        f"{args.batch} x {args.iterations}, M={args.members} heads "
        f"x T={args.passes} "
        f"passes, {args.seeds} seeds, {time.perf_counter() - started:.0f} s.\n"
    )
    print(summarise(labels, curves.tree, "Whole tree (test loss summed over questions)"))
    for question in REPORTED_QUESTIONS:
        print()
        print(summarise(labels, curves.questions[question], f"Question {question} alone"))
    if args.png:
        title = (
            f"Active learning on simulated galaxies: {args.encoder} features, {head}, "
            f"pool {len(data.pool_features)}, {args.seeds} seeds (mean ± std)"
        )
        plot(labels, curves, args.png, title)
    if args.json:
        raw = {"labels": labels.tolist(), "tree": curves.tree, "questions": curves.questions}
        args.json.write_text(strict_json.dumps(raw, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

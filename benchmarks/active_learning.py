"""Active learning on simulated galaxies: how many labels BALD saves against random and entropy.

A scaled-down Walmsley et al. (2020) protocol, entirely on simulated galaxies:

1. simulate and render ``--n`` galaxies once (cached under ``--work-dir``); the last ``--n-eval``
   form a fixed evaluation set labelled by 40 simulated volunteers each, the rest the pool;
2. compute frozen-encoder features once for all of them (cached);
3. per arm and seed (:func:`prioritiser.active_loop.run_active_loop`): label ``--initial`` random
   pool galaxies, then ``--iterations`` times train an ensemble of M Dirichlet heads on the
   labelled features, measure the test loss, score the rest of the pool from M x T MC-dropout
   samples, and have 40 simulated volunteers label the ``--batch`` galaxies picked.

Each seed draws one set of volunteer votes for the whole pool (``ask_volunteers`` on the true
answer probabilities) and reveals a galaxy's votes only when an arm acquires it, so arms face the
same volunteers and start from the same initial set and heads.

Features: the encoder's pooled features, standardised, reduced to ``--pca`` whitened principal
components (computed on all images, no labels), so that a linear head trains in a few hundred
full-batch steps.

Test loss: mean over the M heads (dropout off) of the mean over evaluation galaxies of the tree
Dirichlet-multinomial NLL summed over questions, in nats per galaxy. "Labels to reach" is the
labelled-set size at which an arm's seed-mean curve first falls to random's final seed-mean test
loss, linearly interpolated; per-seed values use that seed's random arm as the target. Random's
curve flattens near the end, so the table also gives the labels needed to reach random's loss at
mid-run (the middle label count).

Example (about 11 minutes on 2 shared CPU cores, the first run 2 more to render and encode)::

    python benchmarks/active_learning.py --png docs/active_learning.png

Prints a markdown table to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from prioritiser.active_loop import HeadSettings, LoopSettings, labels_to_reach, run_active_loop
from zoobot.data import evaluation_transform, load_image
from zoobot.datasets.simulated import (
    answer_probabilities,
    ask_volunteers,
    draw_truths,
    make_catalog,
)
from zoobot.models import create_encoder
from zoobot.schemas import decals_dr5_schema

logger = logging.getLogger("benchmarks.active_learning")

#: arm name -> (acquisition, selection)
ARMS: dict[str, tuple[str, str]] = {
    "random": ("random", "top_k"),
    "entropy": ("entropy", "top_k"),
    "bald": ("bald", "top_k"),
    "power_bald": ("bald", "power"),
}
N_VOLUNTEERS = 40
SIMULATION_SEED = 2020  # pretraining of zoobot-sim-atto used seed 100: these galaxies are unseen


@dataclass(frozen=True)
class Data:
    """Features and labels shared by every arm."""

    pool_features: np.ndarray  # [n_pool, n_features]
    pool_probabilities: np.ndarray  # [n_pool, n_answers] true answer probabilities
    eval_features: np.ndarray  # [n_eval, n_features]
    eval_counts: np.ndarray  # [n_eval, n_answers] 40 volunteers each


def encode(paths: list[str], encoder_name: str, size: int, batch_size: int = 128) -> np.ndarray:
    """Pooled features of every image from a frozen encoder, evaluation transform applied."""
    encoder = create_encoder(encoder_name).eval()
    transform = evaluation_transform(size)
    features = []
    with torch.no_grad():
        for start in range(0, len(paths), batch_size):
            batch = torch.stack(
                [
                    transform(torch.from_numpy(load_image(p)))
                    for p in paths[start : start + batch_size]
                ]
            )
            features.append(encoder(batch).numpy())
            logger.info("encoded %d/%d", min(start + batch_size, len(paths)), len(paths))
    return np.concatenate(features)


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
    work_dir = Path(args.work_dir)
    sims = work_dir / f"sims_seed{SIMULATION_SEED}_n{args.n}_{args.size}px"
    catalog = make_catalog(args.n, args.size, SIMULATION_SEED, sims, workers=args.workers)
    features_path = sims / f"features_{args.encoder}.npy"
    if features_path.is_file():
        features = np.load(features_path)
    else:
        started = time.perf_counter()
        features = encode(list(catalog["file_loc"]), args.encoder, args.size)
        np.save(features_path, features)
        logger.info("features computed duration_s=%.1f", time.perf_counter() - started)
    features = whiten(features, args.pca)
    probabilities = answer_probabilities(draw_truths(args.n, SIMULATION_SEED), decals_dr5_schema)
    counts = catalog[decals_dr5_schema.label_cols].to_numpy(dtype=np.int64)
    n_pool = args.n - args.n_eval
    return Data(features[:n_pool], probabilities[:n_pool], features[n_pool:], counts[n_pool:])


def run_arms(args: argparse.Namespace, data: Data) -> dict[str, list[list[float]]]:
    """Test-loss curves: arm -> one list per seed. Also returns the label counts via the log."""
    head_settings = HeadSettings(
        n_members=args.members,
        n_passes=args.passes,
        learning_rate=args.learning_rate,
        max_steps=args.max_steps,
    )
    curves: dict[str, list[list[float]]] = {arm: [] for arm in args.arms}
    for seed in range(args.seeds):
        votes = ask_volunteers(
            data.pool_probabilities, N_VOLUNTEERS, np.random.default_rng([SIMULATION_SEED, seed])
        )
        for arm in args.arms:
            acquisition, selection = ARMS[arm]
            loop = LoopSettings(
                acquisition=acquisition,
                selection=selection,
                initial_size=args.initial,
                batch_size=args.batch,
                n_iterations=args.iterations,
            )
            started = time.perf_counter()
            result = run_active_loop(
                data.pool_features,
                lambda indices, votes=votes: votes[indices],
                data.eval_features,
                data.eval_counts,
                decals_dr5_schema,
                loop,
                head_settings,
                seed,
            )
            curves[arm].append(result.test_loss)
            logger.info(
                "arm done arm=%s seed=%d final_test_loss=%.4f duration_s=%.1f",
                arm,
                seed,
                result.test_loss[-1],
                time.perf_counter() - started,
            )
    return curves


def _needed(labels: np.ndarray, curve: np.ndarray, target: float, baseline: float) -> str:
    """'labels (saving vs baseline %)' to reach ``target``, or 'not reached'."""
    needed = labels_to_reach(labels, curve, target)
    if math.isnan(needed):
        return f"not reached (> {labels[-1]})"
    return f"{needed:.0f} ({100 * (1 - needed / baseline):+.0f} %)"


def summarise(labels: np.ndarray, curves: dict[str, list[list[float]]]) -> str:
    """The markdown table: final loss, labels to reach random's final (and mid-run) loss."""
    random_curves = np.array(curves["random"])
    random_mean = random_curves.mean(axis=0)
    target = float(random_mean[-1])
    baseline = labels_to_reach(labels, random_mean, target)
    middle = len(labels) // 2
    mid_target = float(random_mean[middle])
    mid_baseline = labels_to_reach(labels, random_mean, mid_target)
    rows = [
        f"Target: random's final test loss {target:.3f} nats/galaxy at {labels[-1]} labels; "
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


def plot(labels: np.ndarray, curves: dict[str, list[list[float]]], path: Path, title: str) -> None:
    """Test loss against labels, seed mean with a ±1 std band per arm; right panel zoomed in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(1, 2, figsize=(10, 4.2), dpi=100)
    target = np.array(curves["random"]).mean(axis=0)[-1]
    zoom = labels >= labels[min(2, len(labels) - 1)]
    for axes, shown in zip(panels, (np.ones_like(zoom), zoom), strict=True):
        for arm, arm_curves in curves.items():
            losses = np.array(arm_curves)[:, shown]
            mean, std = losses.mean(axis=0), losses.std(axis=0)
            (line,) = axes.plot(labels[shown], mean, marker="o", markersize=3, label=arm)
            axes.fill_between(
                labels[shown], mean - std, mean + std, color=line.get_color(), alpha=0.2
            )
        axes.axhline(target, color="grey", ls=":", lw=1, label="random's final loss")
        axes.set_xlabel("labelled galaxies (40 simulated volunteers each)")
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("test loss (summed tree NLL, nats/galaxy)")
    panels[1].set_title("zoom", fontsize=9)
    panels[0].legend()
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default="zoobot-sim-atto", help="shipped or timm encoder")
    parser.add_argument("--n", type=int, default=2500, help="simulated galaxies")
    parser.add_argument("--n-eval", type=int, default=500, help="fixed evaluation galaxies")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--initial", type=int, default=64, help="initial labelled galaxies")
    parser.add_argument("--batch", type=int, default=64, help="galaxies acquired per iteration")
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--members", type=int, default=3, help="heads in the ensemble (M)")
    parser.add_argument("--passes", type=int, default=5, help="MC-dropout passes per head (T)")
    parser.add_argument(
        "--pca", type=int, default=32, help="whitened principal components kept (0: all features)"
    )
    parser.add_argument("--learning-rate", type=float, default=0.1, help="AdamW, full batch")
    parser.add_argument("--max-steps", type=int, default=300, help="optimiser steps at most")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    parser.add_argument("--work-dir", default="/tmp/zoobot_active_learning", help="cache")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    parser.add_argument("--png", type=Path, help="write the curves here")
    parser.add_argument("--json", type=Path, help="write the raw curves here")
    args = parser.parse_args(argv)
    if "random" not in args.arms:
        parser.error("--arms must include random (the baseline)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)  # tiny tensors: more threads only add overhead on a shared machine
    started = time.perf_counter()
    data = load_data(args)
    curves = run_arms(args, data)
    labels = args.initial + args.batch * np.arange(args.iterations + 1)
    print(
        f"Active learning on simulated galaxies: encoder {args.encoder}, pool "
        f"{len(data.pool_features)}, eval {len(data.eval_features)}, features: {args.pca} "
        f"whitened principal components, {args.initial} + "
        f"{args.batch} x {args.iterations}, M={args.members} heads x T={args.passes} passes, "
        f"{args.seeds} seeds, {time.perf_counter() - started:.0f} s.\n"
    )
    print(summarise(labels, curves))
    if args.png:
        title = (
            f"Active learning on simulated galaxies: {args.encoder} features, "
            f"{args.seeds} seeds (mean ± std)"
        )
        plot(labels, curves, args.png, title)
    if args.json:
        args.json.write_text(json.dumps({"labels": labels.tolist(), "curves": curves}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

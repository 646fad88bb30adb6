"""Posterior prediction speed: encoder once + head T times, against T full re-runs.

Usage: python benchmarks/predict.py [--n 64] [--architecture convnext_nano] [--size 224]

Uses CUDA with bf16 autocast when a GPU is present, so one command measures a lent GPU too.
Prints a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import DataLoader

from zoobot.data import GalaxyDataset, evaluation_transform
from zoobot.finetune import FinetuneableZoobotTree
from zoobot.predict import predict_posterior

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gz_decals_rings"


def full_reruns(model, catalog, n_samples, size, batch_size, device, precision):
    """The Zoobot 2.x way: every MC sample re-runs encoder and head, dropout on."""
    loader = DataLoader(
        GalaxyDataset(catalog, transform=evaluation_transform(size)), batch_size=batch_size
    )
    model.to(device).eval()
    model.head.train()
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if precision
        else torch.autocast("cpu", enabled=False)
    )
    outputs = []
    with torch.inference_mode(), autocast:
        for batch in loader:
            images = batch["image"].to(device)
            outputs.append(
                torch.stack([model(images) for _ in range(n_samples)], dim=1).float().cpu()
            )
    return torch.cat(outputs)


def timed(function, repeats: int = 2):
    """Best wall time of ``repeats`` runs (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return result, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64, help="galaxies to predict")
    parser.add_argument("--architecture", default="convnext_nano")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"needs the real ring images at {SHARED}")
    catalog = pd.read_csv(SHARED / "catalog.csv")
    catalog["file_loc"] = [str(SHARED / p) for p in catalog["file_loc"]]
    repeats = -(-args.n // len(catalog))
    catalog = pd.concat([catalog] * repeats, ignore_index=True).iloc[: args.n]
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    precision = "bf16-mixed" if cuda else None
    model = FinetuneableZoobotTree(name=args.architecture, schema="decals_dr5")
    common = {
        "resize_size": args.size,
        "batch_size": args.batch_size,
        "device": device,
        "progress": False,
    }
    predict_posterior(
        model, catalog.iloc[: args.batch_size], n_samples=1, precision=precision, **common
    )
    hardware = (
        torch.cuda.get_device_name()
        if cuda
        else f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    )
    print(
        f"posterior prediction, {args.architecture}, {args.size} px, "
        f"{args.n} real ring galaxies, {hardware}\n"
    )
    print("| T | encoder once (galaxies/s) | full re-runs (galaxies/s) | speed-up |")
    print("|---|---|---|---|")
    for n_samples in (5, 15):
        _, fast = timed(
            lambda n_samples=n_samples: predict_posterior(
                model, catalog, n_samples=n_samples, precision=precision, **common
            )
        )
        _, slow = timed(
            lambda n_samples=n_samples: full_reruns(
                model, catalog, n_samples, args.size, args.batch_size, device, precision
            )
        )
        print(f"| {n_samples} | {args.n / fast:.1f} | {args.n / slow:.1f} | {slow / fast:.1f}x |")


if __name__ == "__main__":
    main()

"""Posterior prediction speed: encoder once + head T times, against the Zoobot 2.x way.

Usage: python benchmarks/predict.py [--n 64] [--architecture convnext_nano] [--size 224]

The baseline is what Zoobot 2.x's ``predict_on_catalog`` does: one full prediction pass over the
catalogue per MC sample (images decoded again, encoder and head re-run, dropout on), in full
precision (its Trainer's default). Ours is timed in full precision (the same arithmetic: the
algorithmic gain alone, capped at T) and with the encoder under bf16 autocast, where the device
has bf16 matrix units (CUDA, or a CPU with AMX / AVX512-BF16); the bf16 row states how far its
vote fractions move from full precision. Prints a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from zoobot.data import GalaxyDataset, evaluation_transform
from zoobot.finetune import FinetuneableZoobotTree
from zoobot.predict import predict_posterior, vote_fractions_from_samples

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gz_decals_rings"


def zoobot_2x_way(model, catalog, n_samples, size, batch_size, device):
    """One whole pass over the catalogue per sample: decode, encoder, head (dropout on)."""
    dataset = GalaxyDataset(catalog, transform=evaluation_transform(size))
    model.to(device).eval()
    model.head.train()
    passes = []
    with torch.inference_mode():
        for _ in range(n_samples):
            loader = DataLoader(dataset, batch_size=batch_size)
            passes.append(torch.cat([model(batch["image"].to(device)).cpu() for batch in loader]))
    return torch.stack(passes, dim=1)


def bf16_supported(device: str) -> bool:
    """Whether bf16 autocast has hardware behind it on this device."""
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(
        torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )


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


def fraction_shift(model, catalog, common) -> float:
    """Largest |vote fraction (bf16 encoder) - vote fraction (float32)|, dropout off."""
    slices = model.schema.question_slices
    exact = predict_posterior(model, catalog, n_samples=1, **common)
    mixed = predict_posterior(model, catalog, n_samples=1, precision="bf16-mixed", **common)
    return float(
        np.abs(
            vote_fractions_from_samples(mixed, slices) - vote_fractions_from_samples(exact, slices)
        ).max()
    )


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
    device = "cuda" if torch.cuda.is_available() else "cpu"
    precisions = [None, "bf16-mixed"] if bf16_supported(device) else [None]
    torch.manual_seed(0)
    model = FinetuneableZoobotTree(name=args.architecture, schema="decals_dr5")
    common = {
        "resize_size": args.size,
        "batch_size": args.batch_size,
        "device": device,
        "progress": False,
    }
    for precision in precisions:
        predict_posterior(
            model, catalog.iloc[: args.batch_size], n_samples=1, precision=precision, **common
        )
    hardware = (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"{platform.processor() or 'CPU'}, {torch.get_num_threads()} threads"
    )
    print(
        f"posterior prediction, {args.architecture}, {args.size} px, "
        f"{args.n} real ring galaxies, {hardware}\n"
    )
    header = ["T", "Zoobot 2.x way, fp32 (galaxies/s)", "ours, fp32 (galaxies/s)", "speed-up"]
    if "bf16-mixed" in precisions:
        header += ["ours, bf16 encoder (galaxies/s)", "speed-up vs Zoobot 2.x way"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for n_samples in (5, 15):
        _, baseline = timed(
            lambda n_samples=n_samples: zoobot_2x_way(
                model, catalog, n_samples, args.size, args.batch_size, device
            )
        )
        cells = [str(n_samples), f"{args.n / baseline:.1f}"]
        for precision in precisions:
            _, ours = timed(
                lambda n_samples=n_samples, precision=precision: predict_posterior(
                    model, catalog, n_samples=n_samples, precision=precision, **common
                )
            )
            cells += [f"{args.n / ours:.1f}", f"**{baseline / ours:.1f}x**"]
        print("| " + " | ".join(cells) + " |")
    if "bf16-mixed" in precisions:
        shift = fraction_shift(model, catalog, common)
        print(f"\nlargest vote-fraction change from the bf16 encoder (dropout off): {shift:.4f}")


if __name__ == "__main__":
    main()

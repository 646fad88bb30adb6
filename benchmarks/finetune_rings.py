"""Ring-classification accuracy on real DECaLS galaxies against the number of training labels.

A fixed, seeded split of the 350 shared ring galaxies: 100 held out for testing, 50 for
validation (early stopping), and training subsets of 25, 50, 100 and all 200 remaining labels.
Run once per encoder to compare from-scratch and pretrained starts:

    python benchmarks/finetune_rings.py --encoder resnet18 --encoder zoobot-sim-pico

Prints a markdown table to stdout (accuracy as mean ± std over seeds).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from zoobot.data import CatalogDataModule
from zoobot.finetune import FinetuneableZoobotClassifier, get_trainer
from zoobot.predict import predict_on_catalog

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gz_decals_rings"
LABEL_COUNTS = (25, 50, 100, 200)


def split(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    catalog = pd.read_csv(SHARED / "catalog.csv")
    catalog["file_loc"] = [str(SHARED / p) for p in catalog["file_loc"]]
    shuffled = catalog.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return shuffled.iloc[:100], shuffled.iloc[100:150], shuffled.iloc[150:].reset_index(drop=True)


def accuracy(
    encoder: str, n_labels: int, seed: int, args: argparse.Namespace, workdir: Path
) -> float:
    test, val, pool = split()
    train = pool.sample(n=min(n_labels, len(pool)), random_state=seed)
    torch.manual_seed(seed)
    from_scratch = encoder in (
        "resnet18",
        "convnext_atto",
        "convnext_pico",
        "convnext_nano",
        "efficientnet_b0",
    )
    model = FinetuneableZoobotClassifier(
        name=encoder,
        num_classes=2,
        n_blocks=-1 if from_scratch else args.n_blocks,
        learning_rate=args.learning_rate,
    )
    datamodule = CatalogDataModule(
        ["ring"], train_catalog=train, val_catalog=val, batch_size=16, resize_size=args.size
    )
    trainer = get_trainer(
        workdir / f"{encoder}-{n_labels}-{seed}",
        max_epochs=args.epochs,
        patience=args.patience,
        accelerator="auto",
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
    )
    trainer.fit(model, datamodule)
    predictions = predict_on_catalog(test, model, resize_size=args.size, progress=False)
    predicted = predictions["output_1_pred"].to_numpy() > 0.5
    return float(np.mean(predicted == test["ring"].to_numpy().astype(bool)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", action="append", help="timm architecture or shipped encoder")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=6)
    parser.add_argument(
        "--n-blocks", type=int, default=2, help="blocks finetuned for pretrained encoders"
    )
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/finetune_rings"))
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    if not SHARED.is_dir():
        raise SystemExit(f"needs the real ring images at {SHARED}")
    encoders = args.encoder or ["resnet18"]
    print(f"ring accuracy on 100 held-out real galaxies, {args.size} px, {args.seeds} seeds\n")
    print("| encoder | " + " | ".join(f"{n} labels" for n in LABEL_COUNTS) + " |")
    print("|---" * (len(LABEL_COUNTS) + 1) + "|")
    for encoder in encoders:
        cells = []
        for n_labels in LABEL_COUNTS:
            scores = [
                accuracy(encoder, n_labels, seed, args, args.workdir) for seed in range(args.seeds)
            ]
            cells.append(f"{np.mean(scores):.3f} ± {np.std(scores):.3f}")
        print(f"| {encoder} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

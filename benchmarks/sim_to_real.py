"""Sim-to-real: a tree model finetuned on simulated galaxies, scored on real DECaLS examples.

The encoder (default: the shipped ``zoobot-sim-atto``) is finetuned as a
:class:`~zoobot.finetune.FinetuneableZoobotTree` on a simulated catalogue, then asked about the
DECaLS examples of the Galaxy Zoo field guide (``shared/data/gz_field_guide``). Each example
illustrates one answer to one question; the model agrees when its most likely answer (argmax of
the predicted vote fractions within that question) is one of the DR5 answers the field guide's
answer maps to (:data:`ANSWER_MAP`). Chance is the number of accepted answers over the number of
answers; the majority rate is the best single constant answer's agreement on those examples.

Example (a fresh simulated set, then the benchmark)::

    python -m zoobot.datasets.simulated --n 1500 --size 64 --seed 7 --out /tmp/s2r_sims
    python benchmarks/sim_to_real.py --catalog /tmp/s2r_sims/catalog.csv --size 64 --epochs 5

Prints a markdown table to stdout.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from zoobot.data import CatalogDataModule
from zoobot.finetune import FinetuneableZoobotTree, get_trainer
from zoobot.predict import predict_on_catalog
from zoobot.schemas import decals_dr5_schema

FIELD_GUIDE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gz_field_guide"

#: field-guide question -> (DR5 question, {field-guide answer: accepted DR5 answers}).
#: Odd features ("Do you see any of these odd features in the image?") has no DR5 question.
ANSWER_MAP: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "Is the galaxy simply smooth and rounded, with no sign of a disk?": (
        "smooth-or-featured",
        {
            "Smooth": ("smooth",),
            "Features or disk": ("featured-or-disk",),
            "Star or artifact": ("artifact",),
        },
    ),
    "Could this be a disk viewed edge-on?": ("disk-edge-on", {"Yes": ("yes",), "No": ("no",)}),
    "Is there any sign of a spiral arm pattern?": (
        "has-spiral-arms",
        {"Spiral": ("yes",), "No spiral": ("no",)},
    ),
    "Is there any sign of a bar feature through the centre of the galaxy?": (
        "bar",
        {"Bar": ("strong", "weak"), "No bar": ("no",)},
    ),
    "How prominent is the central bulge, compared with the rest of the galaxy?": (
        "bulge-size",
        {"Dominant": ("dominant",), "Obvious": ("large", "moderate"), "No bulge": ("none",)},
    ),
    "How rounded is it?": (
        "how-rounded",
        {
            "Completely round": ("round",),
            "In between": ("in-between",),
            "Cigar shaped": ("cigar-shaped",),
        },
    ),
    "Does the galaxy have a bulge at its centre?": (
        "edge-on-bulge",
        {"Boxy": ("boxy",), "No bulge": ("none",), "Rounded": ("rounded",)},
    ),
    "How tightly wound do the spiral arms appear?": (
        "spiral-winding",
        {"Tight": ("tight",), "Medium": ("medium",), "Loose": ("loose",)},
    ),
    "How many spiral arms are there?": (
        "spiral-arm-count",
        {"1": ("1",), "2": ("2",), "3": ("3",), "4": ("4",), "More than 4": ("more-than-4",)},
    ),
    "Is the galaxy currently merging or is there any sign of tidal debris?": (
        "merging",
        {
            "Neither": ("none",),
            "Tidal debris": ("minor-disturbance", "major-disturbance"),
            "Merging": ("merger",),
            "Both": ("major-disturbance", "merger"),
        },
    ),
}


def field_guide_examples() -> pd.DataFrame:
    """DECaLS field-guide examples whose question has a DR5 equivalent, with absolute paths."""
    manifest = pd.read_csv(FIELD_GUIDE / "manifest.csv")
    examples = manifest[(manifest["survey"] == "decals") & manifest["question"].isin(ANSWER_MAP)]
    examples = examples.reset_index(drop=True)
    examples["id_str"] = [Path(p).stem for p in examples["file_loc"]]
    examples["file_loc"] = [str(FIELD_GUIDE / p) for p in examples["file_loc"]]
    return examples


def finetune(
    encoder: str, catalog: pd.DataFrame, args: argparse.Namespace
) -> FinetuneableZoobotTree:
    """Finetune ``encoder`` as a DR5 tree model on the simulated catalogue."""
    torch.manual_seed(args.seed)
    model = FinetuneableZoobotTree(
        schema=decals_dr5_schema,
        name=encoder,
        n_blocks=args.n_blocks,
        learning_rate=args.learning_rate,
        image_size=args.size,
    )
    datamodule = CatalogDataModule(
        decals_dr5_schema.label_cols,
        catalog=catalog,
        batch_size=args.batch_size,
        resize_size=args.size,
        seed=args.seed,
    )
    trainer = get_trainer(
        args.workdir / encoder,
        max_epochs=args.epochs,
        patience=args.patience,
        accelerator="auto",
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
    )
    trainer.fit(model, datamodule)
    return model


def agreement_rows(examples: pd.DataFrame, fractions: pd.DataFrame) -> list[dict]:
    """Per DR5 question: examples, agreement, chance and majority rate."""
    rows = []
    for question_text, (question, answers) in ANSWER_MAP.items():
        subset = examples[examples["question"] == question_text]
        if subset.empty:
            continue
        dr5 = next(q for q in decals_dr5_schema.questions if q.name == question)
        names = [a.name.removeprefix(f"{question}_") for a in dr5.answers]
        columns = [f"{a.name}_fraction" for a in dr5.answers]
        predicted = fractions.loc[subset.index, columns].to_numpy().argmax(axis=1)
        accepted = [answers[text] for text in subset["answer"]]
        hits = [names[p] in ok for p, ok in zip(predicted, accepted)]
        chance = np.mean([len(ok) / len(names) for ok in accepted])
        majority = max(np.mean([name in ok for ok in accepted]) for name in names)
        rows.append(
            {
                "question": question,
                "n": len(subset),
                "agreement": float(np.mean(hits)),
                "chance": float(chance),
                "majority": float(majority),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", required=True, type=Path, help="simulated catalogue CSV")
    parser.add_argument("--encoder", action="append", help="timm architecture or shipped encoder")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--n-blocks", type=int, default=-1, help="encoder blocks finetuned")
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/sim_to_real"))
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    if not FIELD_GUIDE.is_dir():
        raise SystemExit(f"needs the real field-guide images at {FIELD_GUIDE}")
    catalog = pd.read_csv(args.catalog)
    catalog["file_loc"] = [str((args.catalog.parent / p).resolve()) for p in catalog["file_loc"]]
    examples = field_guide_examples()
    encoders = args.encoder or ["zoobot-sim-atto"]
    results = {}
    for encoder in encoders:
        model = finetune(encoder, catalog, args)
        fractions = predict_on_catalog(examples, model, resize_size=args.size, progress=False)
        results[encoder] = agreement_rows(examples, fractions)
    print(
        f"\nagreement with the field guide's answer on {len(examples)} real DECaLS examples; "
        f"finetuned on {len(catalog)} simulated galaxies, {args.size} px, {args.epochs} epochs\n"
    )
    print("| question | n | " + " | ".join(encoders) + " | chance | majority |")
    print("|---" * (len(encoders) + 4) + "|")
    first = results[encoders[0]]
    for i, row in enumerate(first):
        scores = " | ".join(f"{results[e][i]['agreement']:.2f}" for e in encoders)
        print(
            f"| {row['question']} | {row['n']} | {scores} | {row['chance']:.2f} | "
            f"{row['majority']:.2f} |"
        )
    total = sum(row["n"] for row in first)
    pooled = " | ".join(
        f"{sum(r['agreement'] * r['n'] for r in results[e]) / total:.2f}" for e in encoders
    )
    chance = sum(r["chance"] * r["n"] for r in first) / total
    majority = sum(r["majority"] * r["n"] for r in first) / total
    print(f"| all (pooled) | {total} | {pooled} | {chance:.2f} | {majority:.2f} |")


if __name__ == "__main__":
    main()

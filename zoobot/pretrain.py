r"""Pretraining from scratch on a catalogue of vote counts over a decision tree.

The recipe behind the published Zoobot encoders, on whatever catalogue you have: a randomly
initialised timm encoder and a Dirichlet head trained end to end on every question's votes.
The encoder's weights are then exported as ``.safetensors`` for finetuning.

Example::

    python -m zoobot.pretrain --catalog sims/catalog.csv --schema decals_dr5 \\
        --architecture convnext_pico --epochs 20 --out encoder.safetensors
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
from safetensors.torch import save_file

from zoobot.data import CatalogDataModule
from zoobot.finetune import FinetuneableZoobotTree, get_trainer
from zoobot.logs import configure_logging
from zoobot.schemas import Schema, get_schema, list_schemas

__all__ = ["export_encoder", "main", "pretrain"]

logger = logging.getLogger(__name__)


def pretrain(
    catalog: pd.DataFrame,
    schema: Schema | str,
    save_dir: str | Path,
    architecture: str = "convnext_nano",
    epochs: int = 50,
    batch_size: int = 64,
    resize_size: int = 224,
    learning_rate: float = 1e-3,
    dropout_prob: float = 0.2,
    seed: int = 0,
    num_workers: int = 0,
    trainer_kwargs: dict[str, Any] | None = None,
) -> FinetuneableZoobotTree:
    """Train an encoder and Dirichlet head on vote counts from random initialisation.

    Args:
        catalog: ``id_str``, ``file_loc`` and one vote-count column per schema answer.
        schema: the decision tree (or a built-in name).
        save_dir: checkpoints and logs.
        architecture: timm architecture.
        epochs: epoch limit (early stopping on validation loss may end sooner).
        batch_size: images per batch.
        resize_size: image side.
        learning_rate: AdamW learning rate (the whole network trains at it: no layer decay).
        dropout_prob: head dropout.
        seed: seeds the split and initialisation.
        num_workers: image-loading processes (0 loads in the training process).
        trainer_kwargs: extra Trainer arguments (``accelerator``, ``devices``, ``strategy``, ...).

    Returns:
        The trained model, holding the best weights by validation loss.
    """
    L.seed_everything(seed, workers=True)
    schema = get_schema(schema) if isinstance(schema, str) else schema
    datamodule = CatalogDataModule(
        schema.label_cols,
        catalog=catalog,
        batch_size=batch_size,
        resize_size=resize_size,
        seed=seed,
        num_workers=num_workers,
    )
    model = FinetuneableZoobotTree(
        schema=schema,
        name=architecture,
        n_blocks=-1,
        learning_rate=learning_rate,
        layer_decay=1.0,
        dropout_prob=dropout_prob,
    )
    trainer = get_trainer(save_dir, max_epochs=epochs, **(trainer_kwargs or {}))
    trainer.fit(model, datamodule)
    logger.info("pretraining done best_checkpoint=%s", trainer.checkpoint_callback.best_model_path)
    return model


def export_encoder(model: FinetuneableZoobotTree, path: str | Path) -> Path:
    """Save the encoder as safetensors, loadable by ``create_encoder(arch, weights=path)``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.encoder.state_dict().items()}
    save_file(state, str(path), metadata={"architecture": model.hparams.architecture})
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: pretrain on a catalogue and export the encoder."""
    parser = argparse.ArgumentParser(
        prog="python -m zoobot.pretrain", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--catalog", required=True, type=Path, help="CSV or parquet catalogue of vote counts"
    )
    parser.add_argument(
        "--schema", default="decals_dr5", choices=list_schemas(), help="decision tree"
    )
    parser.add_argument("--architecture", default="convnext_nano", help="timm architecture")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-workers", type=int, default=0, help="image-loading processes")
    parser.add_argument("--save-dir", type=Path, default=Path("pretraining"))
    parser.add_argument(
        "--out", required=True, type=Path, help="where to write the encoder .safetensors"
    )
    args = parser.parse_args(argv)
    configure_logging("INFO")
    read = pd.read_parquet if args.catalog.suffix == ".parquet" else pd.read_csv
    catalog = read(args.catalog)
    if "file_loc" in catalog:
        catalog["file_loc"] = [
            str((args.catalog.parent / p).resolve()) for p in catalog["file_loc"]
        ]
    model = pretrain(
        catalog,
        args.schema,
        args.save_dir,
        architecture=args.architecture,
        epochs=args.epochs,
        batch_size=args.batch_size,
        resize_size=args.size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        num_workers=args.num_workers,
        trainer_kwargs={"accelerator": "auto", "enable_progress_bar": sys.stderr.isatty()},
    )
    print(export_encoder(model, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Ensembles of finetuned Tree models: M seeds with bootstrap resamples, trained through zoobot."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd

from zoobot.data import CatalogDataModule
from zoobot.finetune import FinetuneableZoobotTree, get_trainer
from zoobot.schemas import Schema

__all__ = ["StopWhenSet", "TrainedEnsemble", "load_ensemble", "train_ensemble"]

logger = logging.getLogger(__name__)


class StopWhenSet(L.Callback):
    """Ends training after the current step once ``event`` is set (a stop was asked)."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        """Ask the trainer to stop if the event is set."""
        if self.event.is_set():
            trainer.should_stop = True


@dataclass(frozen=True)
class TrainedEnsemble:
    """A trained ensemble: each member's best checkpoint and the member loaded from it."""

    checkpoints: list[Path]
    models: list[FinetuneableZoobotTree]


def train_ensemble(
    train_catalog: pd.DataFrame,
    val_catalog: pd.DataFrame,
    schema: Schema,
    save_dir: str | Path,
    n_models: int = 3,
    encoder: str = "convnext_nano",
    warm_start: Sequence[str | Path] = (),
    bootstrap: bool = True,
    seed: int = 0,
    model_kwargs: dict[str, Any] | None = None,
    trainer_kwargs: dict[str, Any] | None = None,
    batch_size: int = 32,
) -> TrainedEnsemble:
    """Train M Tree models on vote counts; return their best checkpoints, loaded once.

    Model m is seeded with ``seed + m`` and, with ``bootstrap``, trains on a resample (with
    replacement) of the training catalogue, so members disagree where the data are thin. Every
    member early-stops on the same validation catalogue.

    Args:
        train_catalog: labelled galaxies (vote counts in ``schema.label_cols``).
        val_catalog: held-out galaxies for early stopping and the checkpoint choice.
        schema: the decision tree.
        save_dir: ``save_dir/model_<m>/checkpoints/best.ckpt`` per member.
        n_models: M.
        encoder: encoder name for a fresh start (timm architecture or shipped encoder).
        warm_start: checkpoints to continue from, one per member (cycled if fewer); their
            weights are kept and this call's ``model_kwargs`` (learning rate, unfrozen blocks)
            apply.
        bootstrap: resample the training catalogue per member.
        seed: base seed.
        model_kwargs: extra :class:`FinetuneableZoobotTree` arguments (``n_blocks``,
            ``learning_rate``, ``image_size``, ...).
        trainer_kwargs: extra :func:`zoobot.finetune.get_trainer` arguments.
        batch_size: images per batch.

    Returns:
        The members' best checkpoint paths and the members rebuilt from them (what a caller
        evaluates and scores with, without loading them again).
    """
    model_kwargs = dict(model_kwargs or {})
    image_size = model_kwargs.get("image_size", 224)
    checkpoints = []
    for m in range(n_models):
        L.seed_everything(seed + m, workers=True, verbose=False)
        members = (
            train_catalog.sample(frac=1.0, replace=True, random_state=seed + m)
            if bootstrap
            else train_catalog
        )
        datamodule = CatalogDataModule(
            schema.label_cols,
            train_catalog=members.reset_index(drop=True),
            val_catalog=val_catalog,
            batch_size=batch_size,
            resize_size=image_size,
            check=m == 0,
        )
        model = (
            _warm_started(warm_start[m % len(warm_start)], schema, model_kwargs)
            if warm_start
            else FinetuneableZoobotTree(schema=schema, name=encoder, **model_kwargs)
        )
        trainer = get_trainer(Path(save_dir) / f"model_{m}", **(trainer_kwargs or {}))
        trainer.fit(model, datamodule)
        checkpoints.append(Path(trainer.checkpoint_callback.best_model_path))
        logger.info(
            "ensemble member trained member=%d best_val_loss=%.4f checkpoint=%s",
            m,
            float(trainer.checkpoint_callback.best_model_score),
            checkpoints[-1],
        )
    return TrainedEnsemble(checkpoints, load_ensemble(checkpoints))


def _warm_started(
    checkpoint: str | Path, schema: Schema, model_kwargs: dict[str, Any]
) -> FinetuneableZoobotTree:
    previous = FinetuneableZoobotTree.load_model(checkpoint)
    model = FinetuneableZoobotTree(
        schema=schema, name=previous.hparams.architecture, **model_kwargs
    )
    model.load_state_dict(previous.state_dict())
    return model


def load_ensemble(checkpoints: Sequence[str | Path]) -> list[FinetuneableZoobotTree]:
    """Rebuild ensemble members from their checkpoints alone."""
    return [FinetuneableZoobotTree.load_model(path) for path in checkpoints]

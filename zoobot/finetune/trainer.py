"""A Lightning Trainer set up for finetuning: best-checkpointing, early stopping, CSV logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from zoobot.checkpoints import load_checkpoint
from zoobot.logs import route_lightning_logs

__all__ = ["RestoreBestWeights", "get_trainer"]

MONITOR = "validation/loss"


class RestoreBestWeights(Callback):
    """At the end of fitting, load the best checkpoint's weights back into the module in hand.

    Zoobot 2.x loaded the best checkpoint and then discarded it; here ``trainer.fit`` returns with
    the best model in place, so evaluating or predicting right after uses it.
    """

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if path and Path(path).is_file():
            state = load_checkpoint(path, map_location=pl_module.device)["state_dict"]
            pl_module.load_state_dict(state)


def get_trainer(
    save_dir: str | Path,
    max_epochs: int = 100,
    patience: int = 10,
    accelerator: str = "auto",
    devices: int | str | list[int] = "auto",
    strategy: str = "auto",
    precision: str | None = None,
    **trainer_kwargs: Any,
) -> L.Trainer:
    """A Trainer that keeps the best checkpoint (by validation loss) and stops early.

    Args:
        save_dir: checkpoints go to ``save_dir/checkpoints/best.ckpt``, logs to ``save_dir/logs``.
        max_epochs: epoch limit.
        patience: epochs without a better validation loss before stopping.
        accelerator: Lightning accelerator (``cpu``, ``gpu``, ``auto``).
        devices: how many devices, or which.
        strategy: e.g. ``ddp`` for several GPUs, ``ddp_spawn`` for CPU processes.
        precision: e.g. ``16-mixed`` or ``bf16-mixed`` on GPUs; default full precision.
        **trainer_kwargs: passed to :class:`lightning.Trainer`.

    Returns:
        The trainer.
    """
    save_dir = Path(save_dir)
    checkpoint = ModelCheckpoint(
        dirpath=save_dir / "checkpoints",
        filename="best",
        monitor=MONITOR,
        mode="min",
        save_top_k=1,
        enable_version_counter=False,
    )
    callbacks = [
        checkpoint,
        EarlyStopping(MONITOR, patience=patience, mode="min"),
        RestoreBestWeights(),
    ]
    callbacks += trainer_kwargs.pop("callbacks", [])
    route_lightning_logs()
    return L.Trainer(
        default_root_dir=save_dir,
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        precision=precision,
        callbacks=callbacks,
        logger=trainer_kwargs.pop("logger", CSVLogger(save_dir, name="logs")),
        **trainer_kwargs,
    )

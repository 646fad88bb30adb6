"""Zoobot 2.9's model classes and helpers under their own names, over the project's classes.

Each class takes 2.9's arguments (translated by :func:`zoobot.zoobot2.arguments.translate_kwargs`)
and is the project's class underneath, so it trains, predicts and saves like one; its checkpoints
hold the project's hyper-parameters, plain data that the project's own classes load too.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
from torch import nn

from zoobot import finetune
from zoobot.finetune import heads
from zoobot.finetune.trainer import MONITOR
from zoobot.zoobot2.arguments import HUB_PREFIX, load_pretrained_zoobot, translate_kwargs

__all__ = [
    "FinetuneableZoobotClassifier",
    "FinetuneableZoobotRegressor",
    "FinetuneableZoobotTree",
    "LinearHead",
    "ZoobotEncoder",
    "ZoobotTree",
    "download_from_name",
    "get_encoder_dim",
    "get_trainer",
    "load_pretrained_zoobot",
]

logger = logging.getLogger(__name__)


class _LoadFromName:
    """2.9's ``load_from_name``: a finetuned ``<ClassName>.ckpt`` from a hub repository."""

    @classmethod
    def load_from_name(cls, name: str, **kwargs: Any) -> L.LightningModule:
        """Download (or find in the hub cache) ``<ClassName>.ckpt`` and load it safely."""
        return cls.load_from_checkpoint(download_from_name(cls.__name__, name), **kwargs)


class FinetuneableZoobotClassifier(_LoadFromName, finetune.FinetuneableZoobotClassifier):
    """2.9's classifier: ``num_classes``, ``label_col``, ``label_smoothing``, ``class_weights``."""

    def __init__(self, **kwargs: Any) -> None:
        # save_hyperparameters reads this frame's ``kwargs``: the project's names only
        kwargs = translate_kwargs(kwargs)
        super().__init__(**kwargs)


class FinetuneableZoobotRegressor(_LoadFromName, finetune.FinetuneableZoobotRegressor):
    """2.9's regressor: losses ``mse``/``mean_squared_error``/``mae``/``l1``; outputs ``[B]``.

    As in 2.9, ``forward`` returns the prediction itself (through the sigmoid when
    ``unit_interval``), one number per galaxy.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs = translate_kwargs(kwargs)
        super().__init__(**kwargs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The predicted value per galaxy, ``[B]``."""
        return self.predictions(super().forward(images)).reshape(-1)

    def loss_per_galaxy(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """MSE or MAE of the predicted values (``forward``'s output) against the labels."""
        target = labels.reshape(-1).to(outputs.dtype)
        if self.hparams.loss == "mae":
            return F.l1_loss(outputs, target, reduction="none")
        return F.mse_loss(outputs, target, reduction="none")


class FinetuneableZoobotTree(_LoadFromName, finetune.FinetuneableZoobotTree):
    """2.9's tree: ``schema`` (a 2.9 or project schema); the loss sums over questions."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs = translate_kwargs(kwargs)
        super().__init__(**kwargs)


class ZoobotTree(FinetuneableZoobotTree):
    """2.9's pretraining module, here a whole-tree model whose encoder trains fully.

    Takes 2.9's ``output_dim``, ``question_answer_pairs``, ``dependencies``,
    ``architecture_name``, ``channels``, ``dropout_rate``, ... and loads 2.9 ``ZoobotTree``
    checkpoints.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs = translate_kwargs(kwargs)
        kwargs.setdefault("n_blocks", -1)
        super().__init__(**kwargs)


class LinearHead(heads.LinearHead):
    """2.9's ``LinearHead(input_dim, output_dim, head_dropout_prob, activation)``.

    Like 2.9, an output of width 1 is squeezed to ``[B]``.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        head_dropout_prob: float = 0.5,
        activation: Any = None,
    ) -> None:
        super().__init__(input_dim, output_dim, head_dropout_prob)
        self.input_dim, self.output_dim, self.activation = input_dim, output_dim, activation

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Dropout, linear, optional activation; width-1 outputs squeezed."""
        outputs = super().forward(features)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs.squeeze() if self.output_dim == 1 else outputs


class ZoobotEncoder(L.LightningModule):
    """2.9's ``ZoobotEncoder``: an encoder as a LightningModule whose outputs are features."""

    def __init__(self, encoder: nn.Module, **_ignored: Any) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, images: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        """The encoder's features."""
        if isinstance(images, list) and len(images) == 1:
            images = images[0]
        return self.encoder(images)

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Features of a batch (a dict with ``image``, or the images)."""
        return self(batch["image"] if isinstance(batch, dict) else batch)

    @classmethod
    def load_from_name(cls, name: str) -> ZoobotEncoder:
        """An encoder by name: ``hf_hub:...`` (hub or its cache), timm or shipped encoder."""
        from zoobot.models import create_encoder

        return cls(create_encoder(name))


def get_encoder_dim(encoder: nn.Module, channels: int = 3) -> int:
    """The width of an encoder's pooled features (``num_features``, else one forward pass)."""
    width = getattr(encoder, "num_features", None)
    if width:
        return int(width)
    parameter = next(encoder.parameters())
    with torch.no_grad():
        images = torch.zeros(1, channels, 224, 224, device=parameter.device)
        return int(encoder(images).shape[-1])


def get_trainer(
    save_dir: str | Path,
    file_template: str = "{epoch}",
    save_top_k: int = 1,
    max_epochs: int = 100,
    patience: int = 10,
    devices: int | str = "auto",
    accelerator: str = "auto",
    logger: Any = None,
    **trainer_kwargs: Any,
) -> L.Trainer:
    """2.9's ``get_trainer``: top-k weights-only checkpoints, early stopping, LR monitor.

    Monitors this project's ``validation/loss`` (2.9 logged ``finetuning/val_loss``). With
    ``logger=None`` Lightning's default logger is used, as in 2.9.
    """
    checkpoint = ModelCheckpoint(
        monitor=MONITOR,
        every_n_epochs=1,
        save_on_train_epoch_end=True,
        auto_insert_metric_name=False,
        dirpath=os.path.join(save_dir, "checkpoints"),
        filename=file_template,
        save_weights_only=True,
        save_top_k=save_top_k,
    )
    callbacks = [checkpoint, EarlyStopping(monitor=MONITOR, mode="min", patience=patience)]
    if logger is not False:
        callbacks.append(LearningRateMonitor(logging_interval="epoch"))
    return L.Trainer(
        logger=True if logger is None else logger,
        callbacks=callbacks + trainer_kwargs.pop("callbacks", []),
        max_epochs=max_epochs,
        accelerator=accelerator,
        devices=devices,
        default_root_dir=save_dir,
        **trainer_kwargs,
    )


def download_from_name(class_name: str, hub_name: str) -> str:
    """``<class_name>.ckpt`` from a hub repository, or from the hub cache when offline."""
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo_id=hub_name.removeprefix(HUB_PREFIX), filename=f"{class_name}.ckpt")

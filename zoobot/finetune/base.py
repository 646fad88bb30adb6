"""The shared finetuning module: encoder, head, partial unfreezing and layer-wise decay."""

from __future__ import annotations

import io
import logging
from abc import abstractmethod
from pathlib import Path
from typing import IO, Any

import lightning as L
import torch
from torch import nn

from zoobot.checkpoints import load_checkpoint
from zoobot.errors import UnsafeCheckpointError
from zoobot.models import create_encoder, get_encoder_blocks

__all__ = ["FinetuneableZoobotAbstract"]

logger = logging.getLogger(__name__)


class FinetuneableZoobotAbstract(L.LightningModule):
    """An encoder plus a task head, trained with AdamW and layer-wise learning-rate decay.

    Args:
        name: encoder to start from (timm architecture, ``hf_hub:`` name or shipped encoder).
        weights: optional local encoder weights (``.ckpt`` or ``.safetensors``).
        channels: image channels (1 for greyscale).
        n_blocks: encoder blocks to train, counted from the top: 0 trains the head only, -1 all.
        learning_rate: the head's learning rate.
        weight_decay: AdamW weight decay.
        layer_decay: each trained block's learning rate is this times the block above's.
        dropout_prob: head dropout (also the MC-dropout rate at prediction).
        scheduler_patience: epochs without improvement before halving the learning rate; 0 keeps
            it constant.
        image_size: the image side the model trains on, recorded so that prediction resizes to it.
        architecture: the timm architecture behind ``name``; recorded automatically so that a
            checkpoint rebuilds offline (ignored when given).
        encoder: an encoder already in memory, used instead of building one from ``name`` (not
            saved in the hyper-parameters; pass it again, or ``name``, when loading).
    """

    def __init__(
        self,
        name: str = "convnext_nano",
        weights: str | None = None,
        channels: int = 3,
        n_blocks: int = 0,
        learning_rate: float = 1e-4,
        weight_decay: float = 0.05,
        layer_decay: float = 0.75,
        dropout_prob: float = 0.5,
        scheduler_patience: int = 0,
        image_size: int = 224,
        architecture: str | None = None,
        encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["encoder"])
        self.encoder = (
            encoder if encoder is not None else create_encoder(name, channels, weights=weights)
        )
        config = getattr(self.encoder, "pretrained_cfg", None) or {}
        self.hparams["architecture"] = config.get("architecture", name)
        self.blocks = get_encoder_blocks(self.encoder)
        self.head = self.create_head(self.encoder.num_features, dropout_prob)
        n_trained = len(self.blocks) if n_blocks < 0 else min(n_blocks, len(self.blocks))
        self.trained_blocks = list(self.blocks)[len(self.blocks) - n_trained :]
        self.encoder.requires_grad_(False)
        for block in self.trained_blocks:
            block.requires_grad_(True)

    @abstractmethod
    def create_head(self, in_features: int, dropout_prob: float) -> nn.Module:
        """The task's head."""

    @abstractmethod
    def loss_per_galaxy(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """[batch] losses from head outputs and labels."""

    @abstractmethod
    def predictions(self, outputs: torch.Tensor) -> torch.Tensor:
        """What prediction returns from head outputs (probabilities, values or concentrations)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images))

    def train(self, mode: bool = True) -> FinetuneableZoobotAbstract:
        """Switch modes, keeping frozen encoder blocks in evaluation mode (fixed norm stats)."""
        super().train(mode)
        if mode and not self.trained_blocks:
            self.encoder.eval()
        elif mode:
            for block in self.blocks:
                if not any(p.requires_grad for p in block.parameters()):
                    block.eval()
        return self

    def batch_labels(self, batch: dict[str, Any]) -> torch.Tensor:
        """The labels of a batch: its ``label`` entry, or the task's own label column(s).

        The second form is galaxy-datasets' ``CatalogDataModule`` batch, ``{"image", "id_str",
        <label columns>}``.
        """
        if "label" in batch:
            return batch["label"]
        columns = self.label_columns()
        missing = [column for column in columns if column not in batch]
        if missing:
            raise KeyError(
                f"batch has neither 'label' nor the label column(s) {missing}; "
                f"it has {sorted(batch)}"
            )
        if len(columns) == 1:
            return batch[columns[0]]
        return torch.stack([torch.as_tensor(batch[column]) for column in columns], dim=1)

    def label_columns(self) -> list[str]:
        """The batch keys that hold the labels when a batch has no ``label`` entry."""
        return [self.hparams.get("label_col") or "label"]

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        outputs = self(batch["image"])
        labels = self.batch_labels(batch)
        loss = self.loss_per_galaxy(outputs, labels).mean()
        self.log(
            f"{stage}/loss",
            loss,
            prog_bar=True,
            batch_size=len(outputs),
            sync_dist=stage != "train",
        )
        self.log_metrics(outputs, labels, stage)
        return loss

    def log_metrics(self, outputs: torch.Tensor, labels: torch.Tensor, stage: str) -> None:
        """Log task metrics beside the loss; none by default."""

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "validation")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def sample_head(self, features: torch.Tensor, n_samples: int) -> torch.Tensor:
        """Head outputs with dropout on, ``n_samples`` times for the same encoder features.

        Args:
            features: [batch, n_features] encoder output.
            n_samples: MC-dropout passes.

        Returns:
            [batch, n_samples, n_outputs] predictions.
        """
        was_training = self.head.training
        self.head.train(n_samples > 1)
        try:
            samples = [self.predictions(self.head(features)) for _ in range(n_samples)]
        finally:
            self.head.train(was_training)
        return torch.stack(samples, dim=1)

    def predict_step(
        self, batch: dict[str, torch.Tensor], batch_idx: int
    ) -> dict[str, torch.Tensor]:
        """Encoder once, head ``self.n_predict_samples`` times (default 1, no dropout)."""
        n_samples = getattr(self, "n_predict_samples", 1)
        features = self.encoder(batch["image"])
        return {"index": batch["index"], "samples": self.sample_head(features, n_samples)}

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW: the head at ``learning_rate``, trained blocks decayed layer by layer below it."""
        lr = self.hparams.learning_rate
        groups = [{"params": list(self.head.parameters()), "lr": lr}]
        for depth, block in enumerate(reversed(self.trained_blocks), start=1):
            groups.append(
                {"params": list(block.parameters()), "lr": lr * self.hparams.layer_decay**depth}
            )
        logger.info("optimizer groups=%d trained_blocks=%d", len(groups), len(self.trained_blocks))
        optimizer = torch.optim.AdamW(groups, weight_decay=self.hparams.weight_decay)
        if not self.hparams.scheduler_patience:
            return {"optimizer": optimizer}
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=self.hparams.scheduler_patience
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": "validation/loss"},
        }

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path | IO[bytes],
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> FinetuneableZoobotAbstract:
        """Lightning's ``load_from_checkpoint``, through the safe loader, also for Zoobot 2.x files.

        The file is read once by :func:`zoobot.checkpoints.load_checkpoint` (``weights_only`` and
        the allow-list: nothing in it runs), a Zoobot 2.x checkpoint is translated to this
        project's hyper-parameters and state-dict keys, and Lightning rebuilds the model from that
        plain data.

        Raises:
            CheckpointNotFoundError: there is no file at ``checkpoint_path``.
            UnsafeCheckpointError: the file holds objects outside the allow-list, or
                ``weights_only=False`` was asked for (never honoured).
        """
        from zoobot.zoobot2.arguments import upgrade_checkpoint

        if weights_only is False:
            raise UnsafeCheckpointError(
                f"weights_only=False refused for {checkpoint_path}: checkpoints are only loaded "
                "through the allow-listed weights_only loader"
            )
        location = "cpu" if map_location is None else map_location  # GPU files load anywhere
        checkpoint = upgrade_checkpoint(load_checkpoint(checkpoint_path, location), cls, kwargs)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        buffer.seek(0)
        return super().load_from_checkpoint(
            buffer,
            map_location=map_location,
            hparams_file=hparams_file,
            strict=strict,
            weights_only=True,
            **kwargs,
        )

    @classmethod
    def load_model(cls, path: str | Path) -> FinetuneableZoobotAbstract:
        """Rebuild a model from its checkpoint alone (architecture from the saved hyperparameters).

        The encoder is built bare from its architecture (no hub or weights file is touched) and then
        filled from the checkpoint.

        Raises:
            CheckpointNotFoundError: if there is no file at ``path``.
            UnsafeCheckpointError: the file holds objects outside the allow-list.
        """
        return cls.load_from_checkpoint(str(path), map_location="cpu", weights=None)

"""Prediction on catalogues, with posterior samples from ensembles x MC dropout.

Dropout sits only in the head, so each image goes through each model's encoder once and the
cheap head is sampled ``n_samples`` times: the same posterior as re-running the whole network
``n_samples`` times (the Zoobot 2.x way), at a fraction of the cost.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from tqdm.auto import tqdm

from zoobot.data import validate_catalog
from zoobot.finetune.base import FinetuneableZoobotAbstract
from zoobot.finetune.tree import FinetuneableZoobotTree
from zoobot.loading import iter_image_batches
from zoobot.logs import route_lightning_logs
from zoobot.precision import resolve_precision
from zoobot.schemas.base import fractions_within_questions

__all__ = [
    "iter_posterior",
    "predict_on_catalog",
    "predict_posterior",
    "vote_fractions_from_samples",
]

logger = logging.getLogger(__name__)


def _as_list(models: FinetuneableZoobotAbstract | Sequence[FinetuneableZoobotAbstract]) -> list:
    return [models] if isinstance(models, FinetuneableZoobotAbstract) else list(models)


_AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def _autocast(device: torch.device, precision: str | None) -> contextlib.AbstractContextManager:
    """Autocast for the encoder pass (CUDA, or CPU where bf16 matmul units make it pay)."""
    dtype = _AUTOCAST_DTYPES.get(resolve_precision(precision, device))
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def iter_posterior(
    models: FinetuneableZoobotAbstract | Sequence[FinetuneableZoobotAbstract],
    catalog: pd.DataFrame,
    n_samples: int = 5,
    batch_size: int = 64,
    resize_size: int | None = None,
    greyscale: bool = False,
    num_workers: int | None = None,
    device: str | torch.device | None = None,
    precision: str | None = None,
    progress: bool = True,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield posterior samples batch by batch.

    Args:
        models: one model or an ensemble of M models of the same task.
        catalog: rows with ``id_str`` and ``file_loc``.
        n_samples: T, MC-dropout passes of each head (1 = dropout off).
        batch_size: images per batch.
        resize_size: image side; default, the ``image_size`` the first model recorded.
        greyscale: one-channel images.
        num_workers: image-decoding processes; default ``min(4, CPUs)`` where safe (see
            :func:`zoobot.loading.default_num_workers`). On CUDA, JPEGs decode on the device.
        device: default CUDA when available, else CPU.
        precision: ``bf16-mixed`` or ``16-mixed`` runs the encoders under autocast (on CUDA, or
            on a CPU with bf16 matrix units, e.g. AMX: about 2x faster there); the heads and
            their samples stay float32. ``auto`` picks bf16-mixed where the device has bf16
            units (see `zoobot.precision`). Default full precision.
        progress: show a progress bar on stderr.

    Yields:
        (row indices [batch], samples [batch, M x T, n_outputs]) in catalogue order.
    """
    models = _as_list(models)
    resize_size = resize_size or models[0].hparams.get("image_size", 224)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batches = iter_image_batches(
        catalog, resize_size, batch_size, num_workers, device, greyscale=greyscale
    )
    for model in models:
        model.to(device).eval()
    bar = tqdm(total=len(catalog), desc="predicting", unit="galaxy", disable=not progress)
    autocast = _autocast(device, precision)
    with torch.inference_mode():
        for indices, images in batches:
            samples = []
            for model in models:
                with autocast:
                    features = model.encoder(images)
                samples.append(model.sample_head(features.float(), n_samples).float())
            bar.update(len(images))
            yield indices.numpy(), torch.cat(samples, dim=1).cpu().numpy()
    bar.close()


def predict_posterior(
    models: FinetuneableZoobotAbstract | Sequence[FinetuneableZoobotAbstract],
    catalog: pd.DataFrame,
    n_samples: int = 5,
    **kwargs: Any,
) -> np.ndarray:
    """All posterior samples at once: [galaxies, M x T, n_outputs] (concentrations for trees).

    Args:
        models: one model or an ensemble.
        catalog: rows with ``id_str`` and ``file_loc``.
        n_samples: MC-dropout passes per model.
        **kwargs: see :func:`iter_posterior`.

    Returns:
        The samples, rows in catalogue order.
    """
    parts = [samples for _, samples in iter_posterior(models, catalog, n_samples, **kwargs)]
    return np.concatenate(parts) if parts else np.zeros((0, 0, 0), dtype=np.float32)


def vote_fractions_from_samples(
    samples: np.ndarray, question_slices: Sequence[slice]
) -> np.ndarray:
    """Expected vote fractions: the mean over samples of alpha_a / alpha_0 within each question.

    Args:
        samples: [galaxies, samples, n_answers] Dirichlet concentrations.
        question_slices: one slice per question.

    Returns:
        [galaxies, n_answers] fractions.
    """
    return fractions_within_questions(samples, question_slices).mean(axis=1)


def _output_columns(
    model: FinetuneableZoobotAbstract, label_cols: Sequence[str] | None
) -> list[str]:
    if isinstance(model, FinetuneableZoobotTree):
        return [f"{col}_fraction" for col in model.schema.label_cols]
    n_outputs = model.head.linear.out_features
    names = list(label_cols) if label_cols else [f"output_{i}" for i in range(n_outputs)]
    return [f"{name}_pred" for name in names]


def _summarise(model: FinetuneableZoobotAbstract, samples: np.ndarray) -> np.ndarray:
    if isinstance(model, FinetuneableZoobotTree):
        return vote_fractions_from_samples(samples, model.schema.question_slices)
    return samples.mean(axis=1)


def predict_on_catalog(
    catalog: pd.DataFrame,
    model: FinetuneableZoobotAbstract | Sequence[FinetuneableZoobotAbstract],
    n_samples: int = 1,
    label_cols: Sequence[str] | None = None,
    save_loc: str | Path | None = None,
    trainer_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Predict every galaxy of a catalogue; one row per galaxy, in catalogue order.

    Columns: ``id_str``, then for trees ``<answer>_fraction`` (expected vote fractions over the
    posterior), for classifiers and regressors ``<label>_pred`` (mean over samples). With a
    ``.parquet`` ``save_loc`` rows are streamed to disk batch by batch, so catalogues larger than
    memory work; ``.csv`` is written at the end.

    Args:
        catalog: rows with ``id_str`` and ``file_loc``.
        model: one model or an ensemble.
        n_samples: MC-dropout passes per model.
        label_cols: names of classifier/regressor outputs (default ``output_<i>``).
        save_loc: optional ``.parquet`` or ``.csv`` file.
        trainer_kwargs: predict through a Lightning Trainer with these arguments instead (for
            several devices, e.g. ``{"strategy": "ddp_spawn", "devices": 2}``).
        **kwargs: see :func:`iter_posterior`.

    Returns:
        The predictions.
    """
    validate_catalog(catalog)
    models = _as_list(model)
    columns = _output_columns(models[0], label_cols)
    ids = catalog["id_str"].astype(str).to_numpy()
    if trainer_kwargs is not None:
        samples = _predict_with_trainer(models, catalog, n_samples, trainer_kwargs, kwargs)
        batches: Any = [(np.arange(len(catalog)), samples)]
    else:
        batches = iter_posterior(models, catalog, n_samples, **kwargs)
    streaming = save_loc is not None and str(save_loc).endswith(".parquet")
    frames, writer = [], None
    for indices, samples in batches:
        frame = pd.DataFrame(_summarise(models[0], samples), columns=columns)
        frame.insert(0, "id_str", ids[indices])
        if streaming:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            writer = writer or pq.ParquetWriter(str(save_loc), table.schema)
            writer.write_table(table)
        frames.append(frame)
    if writer is not None:
        writer.close()
    result = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["id_str", *columns])
    )
    if save_loc is not None and not streaming:
        result.to_csv(save_loc, index=False)
    return result


class _RankWriter(BasePredictionWriter):
    """Each process writes its own predictions; the caller merges them by row index."""

    def __init__(self, directory: Path) -> None:
        super().__init__(write_interval="epoch")
        self.directory = directory

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:  # noqa: D102
        indices = torch.cat([p["index"] for p in predictions]).cpu()
        samples = torch.cat([p["samples"] for p in predictions]).float().cpu()
        torch.save(
            {"index": indices, "samples": samples}, self.directory / f"rank{trainer.global_rank}.pt"
        )


def _predict_with_trainer(
    models: list[FinetuneableZoobotAbstract],
    catalog: pd.DataFrame,
    n_samples: int,
    trainer_kwargs: dict[str, Any],
    loader_kwargs: dict[str, Any],
) -> np.ndarray:
    from zoobot.data import CatalogDataModule

    datamodule = CatalogDataModule(
        predict_catalog=catalog,
        batch_size=loader_kwargs.get("batch_size", 64),
        resize_size=loader_kwargs.get("resize_size") or models[0].hparams.get("image_size", 224),
        greyscale=loader_kwargs.get("greyscale", False),
        check=False,
    )
    per_model = []
    for model in models:
        with tempfile.TemporaryDirectory() as directory:
            writer = _RankWriter(Path(directory))
            kwargs = {"logger": False, "enable_checkpointing": False, **trainer_kwargs}
            route_lightning_logs()
            trainer = L.Trainer(callbacks=[writer], **kwargs)
            model.n_predict_samples = n_samples
            trainer.predict(model, datamodule=datamodule, return_predictions=False)
            merged = np.zeros((len(catalog), n_samples, model.head.linear.out_features), np.float32)
            for part in Path(directory).glob("rank*.pt"):
                saved = torch.load(part, weights_only=True)
                merged[saved["index"].numpy()] = saved["samples"].numpy()
            per_model.append(merged)
    logger.info("predicted with trainer galaxies=%d models=%d", len(catalog), len(models))
    return np.concatenate(per_model, axis=1)

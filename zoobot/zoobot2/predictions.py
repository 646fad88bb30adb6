"""Zoobot 2.9's ``predict_on_catalog.predict`` and its prediction files (CSV and HDF5).

``predict`` runs one model over a catalogue and returns 2.9's table: one column per
``label_cols`` entry holding the model's own output (class probabilities, regression values,
Dirichlet concentrations or encoder features) and ``id_str``. A ``.hdf5`` ``save_loc`` is written
in 2.9's HDF5 layout (``predictions`` [galaxy, output, pass], ``id_str``, ``label_cols``) with
h5py, or refused clearly when h5py is missing; never CSV text under an ``.hdf5`` name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from zoobot.data import GalaxyDataset, evaluation_transform, validate_catalog
from zoobot.finetune.base import FinetuneableZoobotAbstract

__all__ = ["load_hdf5s", "predict", "predictions_to_hdf5", "single_forward_pass_hdf5s_to_df"]

logger = logging.getLogger(__name__)

_DEVICES = {"gpu": "cuda", "cuda": "cuda", "cpu": "cpu"}


def predict(
    catalog: pd.DataFrame,
    model: L.LightningModule,
    save_loc: str | Path,
    label_cols: Sequence[str],
    inference_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    datamodule_kwargs: dict[str, Any] | None = None,
    trainer_kwargs: dict[str, Any] | None = None,
    n_samples: int = 1,
) -> pd.DataFrame:
    """Predict every galaxy of ``catalog`` with ``model``; save to ``.csv`` or ``.hdf5``.

    Args:
        catalog: rows with ``id_str`` and ``file_loc``.
        model: a finetuned model (2.9-named or the project's), or a :class:`ZoobotEncoder`.
        save_loc: ``.csv`` or ``.hdf5`` file.
        label_cols: names of the model's outputs, one per column.
        inference_transform: applied to each image as a float [C, H, W] tensor; default, resize to
            ``datamodule_kwargs["resize_after_crop"]`` or the model's ``image_size``.
        datamodule_kwargs: ``batch_size``, ``resize_after_crop``, ``num_workers``, ``greyscale``.
        trainer_kwargs: ``accelerator`` (``cpu``, ``gpu``) picks the device.
        n_samples: forward passes per galaxy (older 2.x scripts pass it); above 1, dropout is on.

    Returns:
        The predictions, columns ``label_cols`` then ``id_str`` (the first pass when n_samples > 1).

    Raises:
        ValueError: ``save_loc`` is neither ``.csv`` nor ``.hdf5``, or ``label_cols`` does not fit
            the outputs.
        ImportError: ``.hdf5`` asked for without h5py installed.
    """
    save_loc = str(save_loc)
    if not save_loc.endswith((".csv", ".hdf5")):
        raise ValueError(f"save_loc must end with .csv or .hdf5, got {save_loc!r}")
    if save_loc.endswith(".hdf5"):
        _require_h5py()
    validate_catalog(catalog)
    options = dict(datamodule_kwargs or {})
    accelerator = (trainer_kwargs or {}).get("accelerator", "auto")
    device = _DEVICES.get(accelerator, "cuda" if torch.cuda.is_available() else "cpu")
    resize = options.get("resize_after_crop") or model.hparams.get("image_size", 224)
    transform = inference_transform or evaluation_transform(resize)
    samples = _run(model, catalog, transform, options, device, n_samples)
    if samples.shape[1] != len(label_cols):
        raise ValueError(f"{len(label_cols)} label_cols for {samples.shape[1]} model outputs")
    ids = catalog["id_str"].astype(str).tolist()
    if save_loc.endswith(".hdf5"):
        predictions_to_hdf5(samples, ids, list(label_cols), save_loc)
    frame = pd.DataFrame(samples[:, :, 0], columns=list(label_cols))
    frame["id_str"] = ids
    if save_loc.endswith(".csv"):
        frame.to_csv(save_loc, index=False)
    logger.info("predictions saved galaxies=%d path=%s", len(frame), save_loc)
    return frame


def _run(
    model: L.LightningModule,
    catalog: pd.DataFrame,
    transform: Callable[[torch.Tensor], torch.Tensor],
    options: dict[str, Any],
    device: str,
    n_samples: int,
) -> np.ndarray:
    """[galaxy, output, pass] model outputs."""
    greyscale = bool(options.get("greyscale", False))
    dataset = GalaxyDataset(catalog, transform=transform, greyscale=greyscale)
    loader = DataLoader(
        dataset,
        batch_size=int(options.get("batch_size", 64)),
        num_workers=int(options.get("num_workers", 0)),
    )
    model.to(device).eval()
    parts = []
    with torch.inference_mode():
        for batch in loader:
            images = batch["image"].to(device)
            if isinstance(model, FinetuneableZoobotAbstract):
                samples = model.sample_head(model.encoder(images), n_samples).transpose(1, 2)
            else:
                samples = model(images).reshape(len(images), -1, 1)
            parts.append(samples.float().cpu().numpy())
    return np.concatenate(parts)


def _require_h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ImportError(
            "a .hdf5 save_loc needs h5py (pip install h5py); or save to .csv"
        ) from None
    return h5py


def predictions_to_hdf5(
    predictions: np.ndarray, id_str: Sequence[str], label_cols: Sequence[str], save_loc: str
) -> None:
    """2.9's HDF5 layout: ``predictions`` [galaxy, output, pass], ``id_str``, ``label_cols``."""
    h5py = _require_h5py()
    text = h5py.string_dtype(encoding="utf-8")
    with h5py.File(save_loc, "w") as f:
        f.create_dataset("predictions", data=predictions, compression="gzip")
        f.create_dataset("id_str", data=list(id_str), dtype=text)
        f.create_dataset("label_cols", data=list(label_cols), dtype=text)


def load_hdf5s(hdf5_locs: str | Sequence[str]) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """2.9's ``load_hdf5s``: (``id_str``/``hdf5_loc`` frame, predictions, label_cols).

    Raises:
        ValueError: the files' label columns differ.
    """
    h5py = _require_h5py()
    locs = [hdf5_locs] if isinstance(hdf5_locs, str) else list(hdf5_locs)
    predictions, ids, files, label_cols = [], [], [], None
    for loc in locs:
        with h5py.File(loc, "r") as f:
            these = f["predictions"][:]
            cols = list(f["label_cols"].asstr()[:])
            if label_cols is not None and cols != label_cols:
                raise ValueError(f"label_cols of {loc} {cols} differ from the first {label_cols}")
            label_cols = cols
            predictions.append(these)
            ids += list(f["id_str"].asstr()[:])
            files += [Path(loc).name] * len(these)
    frame = pd.DataFrame({"id_str": ids, "hdf5_loc": files})
    return frame, np.concatenate(predictions), label_cols or []


def single_forward_pass_hdf5s_to_df(hdf5_locs: str | Sequence[str]) -> pd.DataFrame:
    """2.9's ``single_forward_pass_hdf5s_to_df``: the first pass as columns, plus ``id_str``."""
    frame, predictions, label_cols = load_hdf5s(hdf5_locs)
    table = pd.DataFrame(predictions[:, :, 0], columns=label_cols)
    table["id_str"] = frame["id_str"]
    table["hdf5_loc"] = frame["hdf5_loc"]
    return table

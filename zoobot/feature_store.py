"""A store of encoder features per galaxy, keyed by the encoder's weights and preprocessing.

A frozen encoder (head-only finetuning) gives the same pooled features for a galaxy in every
cycle, so they are computed once and kept on disk; scoring then runs the cheap heads only. The
key is a hash of the encoder's state dict and of the preprocessing (image size, channels), so a
changed encoder or preprocessing starts a new store and never reads stale features.

Layout: ``<root>/<key>/part-<n>.arrow``, Arrow IPC files of ``subject_id`` (int64) and
``features`` (fixed-size list of float32), appended segment by segment, so an interrupted
encoding keeps what it finished. Lookups of a few galaxies memory-map the segments; whole scans
read one record batch at a time, so memory stays flat however large the store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import torch
from torch import nn

from zoobot.errors import ZoobotError
from zoobot.loading import iter_image_batches
from zoobot.precision import canonical_precision

__all__ = ["FeatureStore", "encode_to_store", "encoder_key", "prune_feature_stores"]

logger = logging.getLogger(__name__)

#: Rows per Arrow record batch: the unit of a streamed scan.
RECORD_BATCH_ROWS = 16_384


def encoder_key(
    encoder: nn.Module, image_size: int, greyscale: bool = False, precision: str | None = None
) -> str:
    """A hash of an encoder's weights and buffers and of the preprocessing before it.

    Args:
        encoder: the encoder (its state dict is hashed, names and bytes).
        image_size: the side images are resized to.
        greyscale: one-channel images.
        precision: the autocast precision features are computed in (None: full precision).

    Returns:
        16 hex digits; equal for equal weights and preprocessing.
    """
    digest = hashlib.sha256()
    preprocessing = {
        "image_size": int(image_size),
        "greyscale": bool(greyscale),
        "precision": None if canonical_precision(precision) == "32" else precision,
        "transform": 1,
    }
    digest.update(json.dumps(preprocessing, sort_keys=True).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        raw = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(raw.numpy().tobytes())
    return digest.hexdigest()[:16]


class FeatureStore:
    """Encoder features per subject id, for one encoder key, in append-only Arrow segments.

    Args:
        root: folder holding one sub-folder per key.
        key: the encoder key (see :func:`encoder_key`).

    Raises:
        ZoobotError: if the key is not a plain name (it becomes a folder name).
    """

    def __init__(self, root: str | Path, key: str) -> None:
        if not key or not key.replace("-", "").replace("_", "").isalnum():
            raise ZoobotError(f"feature store key {key!r} must be letters, digits, - or _")
        self.directory = Path(root) / key
        self.key = key

    def segments(self) -> list[Path]:
        """The segment files, oldest first."""
        return sorted(self.directory.glob("part-*.arrow"))

    def subject_ids(self) -> np.ndarray:
        """Every stored subject id, in store order: [n_stored] int64."""
        parts = []
        for path in self.segments():
            with pa.memory_map(str(path)) as source:
                table = ipc.open_file(source).read_all()
                parts.append(table.column("subject_id").to_numpy())
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def missing(self, subject_ids: Iterable[int]) -> np.ndarray:
        """The given ids that have no features yet, in the order given (first occurrence)."""
        wanted = pd.unique(np.asarray(list(subject_ids), dtype=np.int64))
        return wanted[~np.isin(wanted, self.subject_ids())]

    def append(self, subject_ids: np.ndarray, features: np.ndarray) -> Path:
        """Write one new segment (atomically: a reader never sees half of it).

        Args:
            subject_ids: [n] ids not yet in the store.
            features: [n, n_features] float features.

        Returns:
            The segment written.

        Raises:
            ZoobotError: if shapes disagree with each other or with the stored width.
        """
        features = np.ascontiguousarray(features, dtype=np.float32)
        subject_ids = np.asarray(subject_ids, dtype=np.int64)
        if features.ndim != 2 or len(features) != len(subject_ids):
            raise ZoobotError(
                f"feature store {self.key}: features {features.shape} do not match "
                f"{len(subject_ids)} subject ids"
            )
        width = self.n_features()
        if width is not None and features.shape[1] != width:
            raise ZoobotError(
                f"feature store {self.key} holds {width} features per galaxy, got "
                f"{features.shape[1]}"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        existing = self.segments()
        number = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        target = self.directory / f"part-{number:06d}.arrow"
        table = pa.table(
            {
                "subject_id": subject_ids,
                "features": pa.FixedSizeListArray.from_arrays(
                    pa.array(features.reshape(-1)), features.shape[1]
                ),
            }
        )
        partial = target.with_name(f".{target.name}.partial")
        with pa.OSFile(str(partial), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=RECORD_BATCH_ROWS)
        os.replace(partial, target)
        return target

    def n_features(self) -> int | None:
        """Features per galaxy, or None for an empty store."""
        segments = self.segments()
        if not segments:
            return None
        with pa.memory_map(str(segments[0])) as source:
            return ipc.open_file(source).schema.field("features").type.list_size

    def iter_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Stream the whole store one record batch at a time (memory flat in the store's size).

        Yields:
            (subject ids [batch], features [batch, n_features] float32).
        """
        for path in self.segments():
            with pa.OSFile(str(path)) as source:
                reader = ipc.open_file(source)
                for number in range(reader.num_record_batches):
                    batch = reader.get_batch(number)
                    yield _unpack(batch)

    def load(self, subject_ids: Iterable[int]) -> np.ndarray:
        """Features of the given ids, in the order given, read through memory maps.

        Raises:
            ZoobotError: naming ids that are not stored.
        """
        wanted = np.asarray(list(subject_ids), dtype=np.int64)
        result = np.zeros((len(wanted), self.n_features() or 0), dtype=np.float32)
        found = np.zeros(len(wanted), dtype=bool)
        for path in self.segments():
            with pa.memory_map(str(path)) as source:
                ids, features = _unpack(ipc.open_file(source).read_all().combine_chunks())
                sorter = np.argsort(ids, kind="stable")
                position = np.searchsorted(ids, wanted, sorter=sorter).clip(max=len(ids) - 1)
                rows = sorter[position]
                hit = ids[rows] == wanted
                result[hit] = features[rows[hit]]
                found |= hit
        if not found.all():
            raise ZoobotError(
                f"feature store {self.key} has no features for subjects "
                f"{wanted[~found][:10].tolist()}; encode them first (encode_to_store)"
            )
        return result


def _unpack(batch: pa.RecordBatch | pa.Table) -> tuple[np.ndarray, np.ndarray]:
    column = batch.column("features")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    width = column.type.list_size
    features = column.values.to_numpy(zero_copy_only=False).reshape(-1, width)
    ids = batch.column("subject_id").to_numpy()
    return np.asarray(ids), features


def encode_to_store(
    encoder: nn.Module,
    catalog: pd.DataFrame,
    store: FeatureStore,
    image_size: int,
    greyscale: bool = False,
    batch_size: int = 64,
    num_workers: int | None = None,
    device: str | torch.device | None = None,
    precision: str | None = None,
    segment_rows: int = 4 * RECORD_BATCH_ROWS,
) -> int:
    """Encode the catalogue's galaxies that the store lacks, in catalogue order, and append them.

    Put the galaxies needed first (the pool) at the top of the catalogue: they are stored first,
    segment by segment, so an interrupted run resumes where it stopped.

    Args:
        encoder: the encoder whose key is ``store.key`` (put in evaluation mode here).
        catalog: ``id_str`` (integer subject ids) and ``file_loc``.
        store: where features go.
        image_size: resize side (part of the key).
        greyscale: one-channel images (part of the key).
        batch_size: images per forward pass.
        num_workers: image-decoding processes (default: see
            :func:`zoobot.loading.default_num_workers`).
        device: default CUDA when available, else CPU.
        precision: autocast precision of the encoder pass (part of the key), see
            :func:`zoobot.predict.iter_posterior`.
        segment_rows: galaxies per appended segment.

    Returns:
        How many galaxies were encoded.
    """
    from zoobot.predict import _autocast  # zoobot.predict imports zoobot.finetune: import late

    ids = catalog["id_str"].astype("int64").to_numpy()
    todo = store.missing(ids)
    if not len(todo):
        return 0
    first_rows = pd.Series(np.arange(len(ids))).groupby(ids).first()
    rows = first_rows.loc[todo].to_numpy()
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    batches = iter_image_batches(
        catalog, image_size, batch_size, num_workers, device, greyscale=greyscale, rows=list(rows)
    )
    encoder.to(device).eval()
    autocast = _autocast(device, precision)
    pending_ids, pending = [], []
    with torch.inference_mode():
        for indices, images in batches:
            with autocast:
                features = encoder(images)
            pending.append(features.float().cpu().numpy())
            pending_ids.append(ids[indices.numpy()])
            if sum(len(p) for p in pending) >= segment_rows:
                store.append(np.concatenate(pending_ids), np.concatenate(pending))
                pending_ids, pending = [], []
    if pending:
        store.append(np.concatenate(pending_ids), np.concatenate(pending))
    logger.info("encoded into feature store key=%s galaxies=%d", store.key, len(rows))
    return len(rows)


def prune_feature_stores(root: str | Path, keep_keys: Iterable[str]) -> list[Path]:
    """Delete every store under ``root`` whose key is not in ``keep_keys`` (stale encoders).

    Returns:
        The store folders deleted.
    """
    keep = set(keep_keys)
    root = Path(root)
    stale = (
        sorted(p for p in root.iterdir() if p.is_dir() and p.name not in keep)
        if root.is_dir()
        else []
    )
    for folder in stale:
        shutil.rmtree(folder)
    if stale:
        logger.info("pruned feature stores removed=%d kept=%s", len(stale), sorted(keep))
    return stale

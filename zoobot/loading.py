"""Image batches for prediction and encoding: decoding in worker processes, or on the GPU.

On a CPU one core decodes a few hundred JPEGs a second, so decoding in the predicting process
starves a fast encoder; worker processes decode in parallel by default. With CUDA, JPEG files are
read as bytes by the workers and decoded on the device (``torchvision.io.decode_jpeg``), where the
crop and resize also run, so the CPU only reads files.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator

import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from zoobot.data import GalaxyDataset, evaluation_transform, validate_catalog

__all__ = ["default_num_workers", "is_device_decodable", "iter_image_batches"]

#: Most decode workers used by default: beyond this, reading files rather than decoding limits.
MAX_DEFAULT_WORKERS = 4

_JPEG_SUFFIXES = (".jpg", ".jpeg")


def default_num_workers(n_images: int, batch_size: int) -> int:
    """Decode processes to use when the caller does not say: ``min(4, CPUs)`` where safe, else 0.

    Zero where workers cannot help or cannot start: one batch or less (starting processes costs
    more than it saves), or inside a daemonic process (which may not have children).

    Args:
        n_images: images to load.
        batch_size: images per batch.

    Returns:
        The number of DataLoader workers.
    """
    if n_images <= batch_size or multiprocessing.current_process().daemon:
        return 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(MAX_DEFAULT_WORKERS, cpus or 1)


def is_device_decodable(catalog: pd.DataFrame, device: torch.device, greyscale: bool) -> bool:
    """Whether the GPU can decode this catalogue's images: CUDA, colour, JPEG files only."""
    if device.type != "cuda" or greyscale:
        return False
    return bool(catalog["file_loc"].astype(str).str.lower().str.endswith(_JPEG_SUFFIXES).all())


class _EncodedImages(Dataset):
    """JPEG files as undecoded byte tensors, with their catalogue row."""

    def __init__(self, catalog: pd.DataFrame) -> None:
        self.file_locs = catalog["file_loc"].astype(str).tolist()

    def __len__(self) -> int:
        return len(self.file_locs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        from torchvision.io import read_file

        return {"data": read_file(self.file_locs[index]), "index": torch.tensor(index)}


def _collate_encoded(items: list[dict[str, torch.Tensor]]) -> dict[str, object]:
    return {
        "data": [item["data"] for item in items],
        "index": torch.stack([item["index"] for item in items]),
    }


def _decode_on_device(
    data: list[torch.Tensor],
    device: torch.device,
    transform: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_jpeg

    images = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    return torch.stack([transform(image.float() / 255.0) for image in images])


def iter_image_batches(
    catalog: pd.DataFrame,
    size: int,
    batch_size: int = 64,
    num_workers: int | None = None,
    device: torch.device | None = None,
    greyscale: bool = False,
    rows: list[int] | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Evaluation-transformed images on ``device``, batch by batch, in catalogue order.

    Args:
        catalog: ``id_str`` and ``file_loc`` per galaxy.
        size: output side (see :func:`zoobot.data.evaluation_transform`).
        batch_size: images per batch.
        num_workers: decode (or, for device decoding, read) processes; default
            :func:`default_num_workers`.
        device: where the images go; CUDA with colour JPEGs decodes there.
        greyscale: one-channel images.
        rows: only these catalogue rows, in this order (default all).

    Yields:
        (catalogue row indices [batch], images [batch, channels, size, size] on ``device``).
    """
    validate_catalog(catalog)
    device = device or torch.device("cpu")
    transform = evaluation_transform(size)
    on_device = is_device_decodable(catalog, device, greyscale)
    dataset: Dataset = (
        _EncodedImages(catalog)
        if on_device
        else GalaxyDataset(catalog, transform=transform, greyscale=greyscale)
    )
    if rows is not None:
        dataset = Subset(dataset, rows)
    n_images = len(dataset)
    workers = default_num_workers(n_images, batch_size) if num_workers is None else num_workers
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=_collate_encoded if on_device else None,
        pin_memory=device.type == "cuda" and not on_device,
    )
    for batch in loader:
        if on_device:
            images = _decode_on_device(batch["data"], device, transform)
        else:
            images = batch["image"].to(device, non_blocking=True)
        yield batch["index"], images

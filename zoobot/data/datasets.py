"""A map-style dataset over a catalogue: ``id_str``, ``file_loc`` and optional labels."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from zoobot.data.images import load_image
from zoobot.errors import CatalogError

__all__ = ["GalaxyDataset", "validate_catalog"]


def validate_catalog(
    catalog: pd.DataFrame, label_cols: Sequence[str] = (), where: str = "catalog"
) -> None:
    """Check a catalogue has ``id_str``, ``file_loc`` and finite, non-negative-count label columns.

    Args:
        catalog: the catalogue.
        label_cols: label columns that must be present and finite.
        where: a name for the catalogue in error messages (e.g. ``train_catalog``).

    Raises:
        CatalogError: naming the missing columns, or the rows with non-finite labels.
    """
    missing = [c for c in ("id_str", "file_loc", *label_cols) if c not in catalog.columns]
    if missing:
        raise CatalogError(f"{where} lacks columns {missing}; it has {list(catalog.columns)[:20]}")
    if len(label_cols):
        values = catalog[list(label_cols)].to_numpy(dtype=float)
        bad = ~np.isfinite(values).all(axis=1)
        if bad.any():
            ids = catalog.loc[bad, "id_str"].astype(str).tolist()[:10]
            raise CatalogError(
                f"{where}: {int(bad.sum())} rows have missing or non-finite labels, e.g. {ids}"
            )


class GalaxyDataset(Dataset):
    """Images (and labels, if given) of a catalogue.

    Args:
        catalog: rows with ``id_str`` and ``file_loc``.
        label_cols: columns to return as the float label vector; empty for prediction.
        transform: applied to the [channels, height, width] float tensor.
        greyscale: load images as one channel.
    """

    def __init__(
        self,
        catalog: pd.DataFrame,
        label_cols: Sequence[str] = (),
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        greyscale: bool = False,
    ) -> None:
        validate_catalog(catalog, label_cols)
        self.file_locs = catalog["file_loc"].astype(str).tolist()
        self.labels = (
            torch.as_tensor(catalog[list(label_cols)].to_numpy(dtype=np.float32))
            if len(label_cols)
            else None
        )
        self.transform = transform
        self.greyscale = greyscale

    def __len__(self) -> int:
        return len(self.file_locs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = torch.from_numpy(load_image(self.file_locs[index], greyscale=self.greyscale))
        if self.transform is not None:
            image = self.transform(image)
        item = {"image": image, "index": torch.tensor(index)}
        if self.labels is not None:
            item["label"] = self.labels[index]
        return item

"""A Lightning DataModule from galaxy catalogues, with a check of every image before training."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import numpy as np
import pandas as pd
from torch.utils.data import DataLoader

from zoobot.data.datasets import GalaxyDataset, validate_catalog
from zoobot.data.images import check_images
from zoobot.data.transforms import evaluation_transform, training_transform
from zoobot.errors import CatalogError

__all__ = ["CatalogDataModule", "split_catalog"]


def split_catalog(
    catalog: pd.DataFrame, val_fraction: float = 0.1, test_fraction: float = 0.0, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Shuffle and split a catalogue into train, validation and test parts (seeded).

    Raises:
        CatalogError: if the fractions leave no training rows.
    """
    if not 0 <= val_fraction + test_fraction < 1:
        raise CatalogError(
            f"val_fraction + test_fraction must be in [0, 1), got {val_fraction + test_fraction}"
        )
    order = np.random.default_rng(seed).permutation(len(catalog))
    n_val, n_test = round(len(catalog) * val_fraction), round(len(catalog) * test_fraction)
    parts = np.split(order, [n_val, n_val + n_test])
    val, test, train = (catalog.iloc[p].reset_index(drop=True) for p in parts)
    return train, val, test


class CatalogDataModule(L.LightningDataModule):
    """Batches of galaxy images and labels from catalogues.

    Give either ``catalog`` (split here, seeded) or explicit ``train_catalog`` / ``val_catalog``
    (and optionally ``test_catalog``); ``predict_catalog`` serves ``trainer.predict``.

    Args:
        label_cols: label columns (vote counts for trees, one class column for classifiers).
        catalog: one catalogue to split.
        train_catalog: training rows.
        val_catalog: validation rows.
        test_catalog: test rows.
        predict_catalog: rows to predict on.
        batch_size: images per batch.
        num_workers: loader processes.
        resize_size: image side after transforms.
        crop_scale_bounds: area fraction kept by the training crop.
        greyscale: one-channel images.
        val_fraction: validation share when splitting ``catalog``.
        seed: the split's seed.
        check: check every image decodes before training (recommended).
        augment: random rotations, flips and crops for training; False trains on the
            deterministic evaluation view (for debugging, or memorisation checks).
    """

    def __init__(
        self,
        label_cols: Sequence[str] = (),
        catalog: pd.DataFrame | None = None,
        train_catalog: pd.DataFrame | None = None,
        val_catalog: pd.DataFrame | None = None,
        test_catalog: pd.DataFrame | None = None,
        predict_catalog: pd.DataFrame | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        resize_size: int = 224,
        crop_scale_bounds: tuple[float, float] = (0.7, 0.8),
        greyscale: bool = False,
        val_fraction: float = 0.1,
        seed: int = 0,
        check: bool = True,
        augment: bool = True,
    ) -> None:
        super().__init__()
        if catalog is not None:
            if train_catalog is not None:
                raise CatalogError("give either catalog= or train_catalog=, not both")
            validate_catalog(catalog, label_cols, "catalog")
            train_catalog, val_catalog, _ = split_catalog(catalog, val_fraction, 0.0, seed)
        self.catalogs = {
            "train": train_catalog,
            "validation": val_catalog,
            "test": test_catalog,
            "predict": predict_catalog,
        }
        for name, part in self.catalogs.items():
            if part is not None:
                validate_catalog(part, label_cols if name != "predict" else (), f"{name}_catalog")
        self.label_cols = list(label_cols)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.resize_size = resize_size
        self.crop_scale_bounds = crop_scale_bounds
        self.greyscale = greyscale
        self.check = check
        self.augment = augment
        self._checked = False

    def setup(self, stage: str | None = None) -> None:
        """Check the images of every catalogue once (naming all bad files) before any batch.

        ``stage`` is not needed (every given catalogue is checked); it is accepted for Lightning.
        """
        if self.check and not self._checked:
            paths = [
                p for part in self.catalogs.values() if part is not None for p in part["file_loc"]
            ]
            check_images(paths)
            self._checked = True

    def _loader(self, part: str, train: bool) -> DataLoader:
        catalog = self.catalogs[part]
        if catalog is None:
            raise CatalogError(f"no {part} catalogue was given to the data module")
        transform = (
            training_transform(self.resize_size, self.crop_scale_bounds)
            if train and self.augment
            else evaluation_transform(self.resize_size, self.crop_scale_bounds)
        )
        labels = self.label_cols if part != "predict" else ()
        dataset = GalaxyDataset(catalog, labels, transform, self.greyscale)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, augmented training batches."""
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        """Deterministic validation batches."""
        return self._loader("validation", train=False)

    def test_dataloader(self) -> DataLoader:
        """Deterministic test batches."""
        return self._loader("test", train=False)

    def predict_dataloader(self) -> DataLoader:
        """Deterministic batches of the prediction catalogue, in order."""
        return self._loader("predict", train=False)

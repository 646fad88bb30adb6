"""Galaxy catalogues to batches: image reading, transforms, datasets and the DataModule."""

from zoobot.data.datamodules import CatalogDataModule, split_catalog
from zoobot.data.datasets import GalaxyDataset, validate_catalog
from zoobot.data.images import check_images, load_image, stretch_bands
from zoobot.data.transforms import evaluation_transform, training_transform

__all__ = [
    "CatalogDataModule",
    "GalaxyDataset",
    "check_images",
    "evaluation_transform",
    "load_image",
    "split_catalog",
    "stretch_bands",
    "training_transform",
    "validate_catalog",
]

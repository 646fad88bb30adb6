"""Transforms: random rotation, flips and crop-zoom for training; deterministic for evaluation.

Images enter as float tensors [channels, height, width] in [0, 1] and leave at ``size`` x ``size``,
with no ImageNet normalisation (as Zoobot's published encoders expect).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchvision.transforms import v2

__all__ = ["evaluation_transform", "training_transform"]


def training_transform(
    size: int,
    crop_scale_bounds: tuple[float, float] = (0.7, 0.8),
    crop_ratio_bounds: tuple[float, float] = (0.9, 1.1),
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Random rotation by any angle, horizontal and vertical flips, then a random crop-zoom.

    Galaxies have no preferred orientation, so every rotation and flip is a valid augmentation.

    Args:
        size: output height and width.
        crop_scale_bounds: fraction of the image area the crop keeps.
        crop_ratio_bounds: aspect ratios of the crop.

    Returns:
        The transform.
    """
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
            v2.RandomRotation(180, interpolation=v2.InterpolationMode.BILINEAR),
            v2.RandomResizedCrop(
                size, scale=crop_scale_bounds, ratio=crop_ratio_bounds, antialias=True
            ),
        ]
    )


def evaluation_transform(
    size: int, crop_scale_bounds: tuple[float, float] = (0.7, 0.8)
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Deterministic: a centre crop of the mean training crop area, resized to ``size``.

    Args:
        size: output height and width.
        crop_scale_bounds: the training crop's area bounds; the centre crop keeps their mean, so
            galaxies appear at the scale the model trained on.

    Returns:
        The transform.
    """
    area = sum(crop_scale_bounds) / 2
    return v2.Compose([_CentreCropFraction(area**0.5), v2.Resize((size, size), antialias=True)])


class _CentreCropFraction(torch.nn.Module):
    """Crop the central ``fraction`` of each side."""

    def __init__(self, fraction: float) -> None:
        super().__init__()
        self.fraction = fraction

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        return v2.functional.center_crop(
            image, [max(1, round(height * self.fraction)), max(1, round(width * self.fraction))]
        )

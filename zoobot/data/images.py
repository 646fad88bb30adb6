"""Galaxy images: JPEG/PNG through Pillow, FITS through astropy, and the check for bad files.

FITS stretch (documented, deterministic): each band is sky-subtracted by its median, scaled by a
robust noise estimate (1.4826 x median absolute deviation), then ``asinh(x / Q) / asinh(max / Q)``
with ``Q = 10`` is clipped to [0, 1]. A 2-D FITS image is one channel; a 3-D cube is
(band, y, x) with one channel per band. Bands beyond three are dropped unless ``channels`` asks
for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from astropy.io import fits
from PIL import Image, UnidentifiedImageError

from zoobot.errors import ImageLoadError

__all__ = ["FITS_SUFFIXES", "check_images", "load_image", "stretch_bands"]

FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fz")
ASINH_SOFTENING = 10.0


def _is_fits(path: str) -> bool:
    return path.lower().endswith(FITS_SUFFIXES)


def stretch_bands(bands: np.ndarray, softening: float = ASINH_SOFTENING) -> np.ndarray:
    """Asinh-stretch raw band fluxes to [0, 1] per band.

    Args:
        bands: [n_bands, height, width] raw fluxes.
        softening: Q of the asinh stretch; larger shows fainter structure.

    Returns:
        [n_bands, height, width] float32 in [0, 1].
    """
    bands = np.nan_to_num(np.asarray(bands, dtype=np.float32))
    median = np.median(bands, axis=(1, 2), keepdims=True)
    noise = 1.4826 * np.median(np.abs(bands - median), axis=(1, 2), keepdims=True)
    scaled = (bands - median) / np.where(noise > 0, noise, 1.0)
    peak = np.maximum(scaled.max(axis=(1, 2), keepdims=True), 1e-6)
    stretched = np.arcsinh(np.clip(scaled, 0, None) / softening) / np.arcsinh(peak / softening)
    return np.clip(stretched, 0.0, 1.0).astype(np.float32)


def load_image(path: str | Path, greyscale: bool = False) -> np.ndarray:
    """Load one image as float32 [channels, height, width] in [0, 1].

    Args:
        path: a JPEG/PNG file or a FITS file (2-D, or a 3-D band cube).
        greyscale: average to one channel.

    Returns:
        The image array.

    Raises:
        ImageLoadError: the file is missing or cannot be decoded.
    """
    path = str(path)
    try:
        if _is_fits(path):
            with fits.open(path, memmap=False) as hdus:
                data = next(hdu.data for hdu in hdus if getattr(hdu, "data", None) is not None)
            bands = np.asarray(data, dtype=np.float32)
            image = stretch_bands(bands[None] if bands.ndim == 2 else bands[:3])
        else:
            with Image.open(path) as opened:
                array = np.asarray(opened.convert("RGB"), dtype=np.float32) / 255.0
            image = array.transpose(2, 0, 1)
    except (OSError, UnidentifiedImageError, StopIteration, ValueError) as error:
        reason = "no such file" if not Path(path).exists() else f"{type(error).__name__}: {error}"
        raise ImageLoadError({path: reason}) from error
    if greyscale:
        image = image.mean(axis=0, keepdims=True)
    return np.ascontiguousarray(image)


def _problem(path: str) -> str | None:
    if not Path(path).is_file():
        return "no such file"
    try:
        if _is_fits(path):
            with fits.open(path, memmap=False) as hdus:
                if all(getattr(hdu, "data", None) is None for hdu in hdus):
                    return "FITS file has no image data"
        else:
            with Image.open(path) as image:
                image.draft("RGB", (32, 32))
                image.load()
    except (OSError, UnidentifiedImageError, ValueError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def check_images(paths: Iterable[str | Path]) -> None:
    """Check that every image exists and decodes, before training starts.

    JPEGs are decoded at reduced resolution (Pillow's draft mode), so a check costs far less than
    a full load.

    Args:
        paths: image files.

    Raises:
        ImageLoadError: naming every missing or unreadable file.
    """
    problems = {str(p): reason for p in paths if (reason := _problem(str(p))) is not None}
    if problems:
        raise ImageLoadError(problems)

"""Render simulated galaxies to g, r, z bands with GalSim, then to 8-bit RGB with an asinh stretch.

Each galaxy is a Sersic bulge, an inclined exponential disk and random star-forming knots (GalSim),
plus numpy-drawn spiral arms, bar, ring, tidal tails, a merging companion and artifacts
(``features``). Components carry their own colours (red bulge and bar, blue arms and knots), all are
convolved with a Moffat PSF, and Gaussian sky noise is added per band. Images are rendered on a
fixed field of ``native_pixels`` DECaLS pixels (0.262 arcsec, 33.5 arcsec for the default 128) and
resampled to the requested size, so one galaxy looks the same at every output size.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import galsim
import numpy as np
from astropy.io import fits
from PIL import Image

from zoobot.datasets.simulated import features
from zoobot.datasets.simulated.truth import DECALS_PIXEL_SCALE

__all__ = [
    "BANDS",
    "bands_to_rgb",
    "render_bands",
    "render_rgb",
    "resize_rgb",
    "save_fits",
    "save_image",
]

BANDS = ("g", "r", "z")
# Relative g, r, z flux of each stellar population (r = 1).
_COLOURS = {
    "old": np.array([0.62, 1.0, 1.4]),
    "disk": np.array([0.8, 1.0, 1.15]),
    "young": np.array([1.05, 1.0, 0.85]),
    "star": np.array([0.85, 1.0, 1.25]),
}
_BAND_NOISE = np.array([0.8, 1.0, 1.6])  # sky noise of g, r, z relative to r
_RGB_SCALES = np.array([1.3, 1.0, 0.8])  # (R <- z, G <- r, B <- g) scaling to neutral disk colour
_STRETCH = 30.0  # asinh softening, in units of the r-band sky noise
_Q = 3.0
_BACKGROUND = 2.0  # pedestal so that the sky renders dark grey, not black, as in DECaLS JPEGs


def _value(truth: Mapping[str, Any], key: str) -> float:
    return float(truth[key])


def _feature_fluxes(truth: Mapping[str, Any]) -> dict[str, float]:
    """Fractions of the disk's flux in arms, bar, ring and knots (the rest is the smooth disk)."""
    fractions = {
        "arms": 0.6 * _value(truth, "arm_strength"),
        "bar": 0.45 * _value(truth, "bar_strength"),
        "ring": 0.35 * _value(truth, "ring_strength"),
        "knots": 0.35 * _value(truth, "clumpiness"),
    }
    total = sum(fractions.values())
    if total > 0.85:
        fractions = {k: v * 0.85 / total for k, v in fractions.items()}
    return fractions


def _galsim_components(truth: Mapping[str, Any], seed: int) -> dict[str, galsim.GSObject | None]:
    """The GalSim profiles: old (bulge, red companion) and disk (smooth disk, blue companion)."""
    flux = _value(truth, "flux")
    hlr = _value(truth, "half_light_radius")
    bt = _value(truth, "bulge_to_total")
    pa = _value(truth, "position_angle_deg") * galsim.degrees
    incl = _value(truth, "inclination_deg")
    disk_flux = (1.0 - bt) * flux
    fractions = _feature_fluxes(truth)
    smooth = disk_flux * (1.0 - sum(fractions.values()))
    n = min(max(_value(truth, "sersic_n"), 0.5), 6.0)
    bulge_hlr = max(hlr * _value(truth, "bulge_size_ratio"), 0.15)
    old: list[galsim.GSObject] = []
    disk_parts: list[galsim.GSObject] = []
    if bt > 0:
        bulge = galsim.Sersic(n=n, half_light_radius=bulge_hlr, flux=bt * flux)
        old.append(bulge.shear(q=_value(truth, "bulge_axis_ratio"), beta=pa))
    if smooth > 0:
        disk = galsim.InclinedExponential(
            incl * galsim.degrees,
            half_light_radius=hlr,
            scale_h_over_r=_value(truth, "disk_scale_height_ratio"),
            flux=smooth,
        )
        disk_parts.append(disk.rotate(pa))
    ratio = _value(truth, "companion_flux_ratio")
    if ratio > 0:
        companion_n = _value(truth, "companion_sersic_n")
        separation = _value(truth, "companion_separation") * hlr
        angle = np.radians(_value(truth, "companion_angle_deg"))
        companion = galsim.Sersic(
            n=companion_n, half_light_radius=max(hlr * np.sqrt(ratio), 0.3), flux=ratio * flux
        )
        companion = companion.shear(q=0.75, beta=(np.degrees(angle) + 40.0) * galsim.degrees).shift(
            separation * np.cos(angle), separation * np.sin(angle)
        )
        (old if companion_n > 2.5 else disk_parts).append(companion)
    return {
        "old": galsim.Add(old) if old else None,
        "disk": galsim.Add(disk_parts) if disk_parts else None,
    }


def _draw_knots(truth: Mapping[str, Any], seed: int, n_pixels: int) -> np.ndarray:
    """Star-forming knots: GalSim ``RandomKnots`` positions in the disk plane, projected to the sky.

    Returns:
        [n_pixels, n_pixels] map holding each knot's flux in its nearest pixel (the PSF blurs them).
    """
    hlr = _value(truth, "half_light_radius")
    flux = _feature_fluxes(truth)["knots"] * (1.0 - _value(truth, "bulge_to_total"))
    flux *= _value(truth, "flux")
    image = np.zeros((n_pixels, n_pixels))
    if flux <= 0:
        return image
    knots = galsim.RandomKnots(
        npoints=100, half_light_radius=hlr, flux=flux, rng=galsim.BaseDeviate(seed)
    )
    along, across = knots.points[:, 0], knots.points[:, 1]
    incl = np.radians(_value(truth, "inclination_deg"))
    across = across * np.hypot(
        np.cos(incl), _value(truth, "disk_scale_height_ratio") * np.sin(incl)
    )
    pa = np.radians(_value(truth, "position_angle_deg"))
    sky_x = along * np.cos(pa) - across * np.sin(pa)
    sky_y = along * np.sin(pa) + across * np.cos(pa)
    centre = (n_pixels - 1) / 2.0  # GalSim's true centre, 0-indexed
    columns = np.round(sky_x / DECALS_PIXEL_SCALE + centre).astype(int)
    rows = np.round(sky_y / DECALS_PIXEL_SCALE + centre).astype(int)
    inside = (columns >= 0) & (columns < n_pixels) & (rows >= 0) & (rows < n_pixels)
    np.add.at(image, (rows[inside], columns[inside]), flux / len(along))
    return image


def _numpy_components(
    truth: Mapping[str, Any], x: np.ndarray, y: np.ndarray
) -> dict[str, np.ndarray]:
    """Surface-brightness maps (flux per pixel, before the PSF) of the hand-drawn features."""
    flux = _value(truth, "flux")
    hlr = _value(truth, "half_light_radius")
    disk_flux = (1.0 - _value(truth, "bulge_to_total")) * flux
    fractions = _feature_fluxes(truth)
    disk = features.DiskGeometry.from_sky(
        x,
        y,
        _value(truth, "inclination_deg"),
        _value(truth, "position_angle_deg"),
        _value(truth, "disk_scale_height_ratio"),
    )
    maps = {name: np.zeros_like(x) for name in ("old", "disk", "young")}
    if fractions["arms"] > 0:
        arms = features.draw_arms(
            disk,
            hlr / 1.678,
            int(truth["arm_count"]),
            _value(truth, "pitch_angle_deg"),
            _value(truth, "arm_phase_deg"),
        )
        maps["young"] += fractions["arms"] * disk_flux * arms
    bar_length = _value(truth, "bar_length") * hlr
    if fractions["bar"] > 0:
        bar = features.draw_bar(
            disk, bar_length, _value(truth, "bar_axis_ratio"), _value(truth, "bar_angle_deg")
        )
        maps["old"] += fractions["bar"] * disk_flux * bar
    if fractions["ring"] > 0:
        radius = _value(truth, "ring_radius") * hlr
        if fractions["bar"] > 0:
            radius = max(radius, 1.05 * bar_length)
        ring = features.draw_ring(disk, radius, 0.12 * radius)
        maps["young"] += fractions["ring"] * disk_flux * ring
    tidal = _value(truth, "tidal_amplitude")
    if tidal > 0:
        start = hlr * max(0.6 * _value(truth, "companion_separation"), 1.2)
        tails = features.draw_tidal_tails(
            x, y, start, _value(truth, "companion_angle_deg"), 0.2 * hlr
        )
        maps["disk"] += 0.3 * tidal * flux * tails
    return maps


def _convolve(image: np.ndarray, kernel_ft: np.ndarray) -> np.ndarray:
    return np.fft.irfft2(np.fft.rfft2(image) * kernel_ft, s=image.shape)


def _add_artifact(
    truth: Mapping[str, Any],
    bands: np.ndarray,
    pre_psf: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Add the truth's artifact: trails to ``bands``, a bright star to ``pre_psf`` (in place)."""
    kind = str(truth["artifact"])
    field = x.max() - x.min()
    sigma = _value(truth, "psf_fwhm") / 2.355
    if kind == "satellite_trail":
        trail = features.draw_satellite_trail(
            x, y, rng.uniform(-0.3, 0.3) * field, rng.uniform(0, 180), sigma
        )
        colour = np.eye(3)[rng.integers(3)] if rng.uniform() < 0.6 else np.ones(3)
        bands += rng.uniform(5.0, 25.0) * colour[:, None, None] * trail
    elif kind == "bright_star":
        angle = rng.uniform(0, 2 * np.pi)
        radius = rng.uniform(0.12, 0.4) * field
        position = (radius * np.cos(angle), radius * np.sin(angle))
        star_flux = rng.uniform(1.0, 8.0) * _value(truth, "flux")
        column = int(np.argmin(np.abs(x[0] - position[0])))
        row = int(np.argmin(np.abs(y[:, 0] - position[1])))
        spikes = features.draw_diffraction_spikes(x, y, position, 0.15 * field, sigma / 2)
        star = np.zeros_like(x)
        star[row, column] = 0.98 * star_flux
        star += 0.02 * star_flux * spikes
        pre_psf += _COLOURS["star"][:, None, None] * star


def _add_field_sources(pre_psf: np.ndarray, rng: np.random.Generator) -> None:
    """Add a few unrelated faint stars of the field (in place, before the PSF)."""
    n_pixels = pre_psf.shape[-1]
    for _ in range(rng.poisson(3.0)):
        row, column = rng.integers(0, n_pixels, 2)
        colour = _COLOURS["star"] * np.exp(rng.normal(0.0, 0.1, 3))
        pre_psf[:, row, column] += colour * np.exp(rng.uniform(np.log(30.0), np.log(3000.0)))


def render_bands(
    truth: Mapping[str, Any], native_pixels: int = 128, field_stars: bool = True
) -> np.ndarray:
    """Render one galaxy's g, r, z images, with PSF and sky noise, on DECaLS pixels.

    Deterministic: the galaxy's ``image_seed`` drives all randomness.

    Args:
        truth: one row of ``draw_truths`` (a pandas Series or a dict).
        native_pixels: side of the image in 0.262 arcsec pixels.
        field_stars: scatter a few unrelated foreground stars over the field, as in real images.

    Returns:
        [3, native_pixels, native_pixels] float32 g, r, z fluxes in units of the r-band sky noise.
    """
    seed = int(truth["image_seed"])
    rng = np.random.default_rng(seed)
    scale = DECALS_PIXEL_SCALE
    n = native_pixels
    colours = {k: v * np.exp(rng.normal(0.0, 0.05, 3)) for k, v in _COLOURS.items()}
    x, y = features.sky_grid(n, scale)
    # Everything is drawn before the PSF (GalSim profiles sampled at pixel centres, numpy maps),
    # then convolved once per band by FFT: much faster than GalSim's Moffat in Fourier space.
    components = _numpy_components(truth, x, y)
    for name, profile in _galsim_components(truth, seed).items():
        if profile is not None:
            drawn = profile.drawImage(nx=n, ny=n, scale=scale, method="no_pixel")
            components[name] += drawn.array
    components["young"] += _draw_knots(truth, seed, n)
    pre_psf = sum(colours[name][:, None, None] * image[None] for name, image in components.items())
    if field_stars:
        _add_field_sources(pre_psf, rng)
    bands = np.zeros((3, n, n))
    _add_artifact(truth, bands, pre_psf, x, y, rng)
    psf = galsim.Moffat(beta=_value(truth, "psf_beta"), fwhm=_value(truth, "psf_fwhm"))
    # The kernel's centre must sit on pixel n // 2, which ifftshift moves to the origin.
    offset = (0.0, 0.0) if n % 2 else (0.5, 0.5)
    kernel = psf.drawImage(nx=n, ny=n, scale=scale, method="no_pixel", offset=offset).array
    kernel_ft = np.fft.rfft2(np.fft.ifftshift(kernel / kernel.sum()))
    for band in range(3):
        bands[band] += _convolve(pre_psf[band], kernel_ft)
    noise = _value(truth, "sky_sigma") * _BAND_NOISE
    bands += noise[:, None, None] * rng.standard_normal(bands.shape)
    if str(truth["artifact"]) == "missing_band":
        bands[rng.integers(3)] = 0.0
    return bands.astype(np.float32)


def bands_to_rgb(bands: np.ndarray) -> np.ndarray:
    """Lupton et al. (2004) asinh stretch of g, r, z bands to 8-bit RGB (R = z, G = r, B = g).

    References:
        Lupton et al. 2004, PASP 116, 133, "Preparing Red-Green-Blue Images from CCD Data".

    Args:
        bands: [3, H, W] g, r, z fluxes in units of the r-band sky noise.

    Returns:
        [H, W, 3] uint8 image.
    """
    rgb = bands[::-1].astype(np.float64) / _RGB_SCALES[:, None, None] + _BACKGROUND
    rgb = np.clip(rgb, 0.0, None)
    intensity = rgb.mean(axis=0)
    factor = np.arcsinh(_Q * intensity / _STRETCH) / (_Q * np.maximum(intensity, 1e-12))
    rgb *= factor[None]
    peak = np.maximum(rgb.max(axis=0), 1.0)  # keep the colour of saturated pixels
    rgb /= peak[None]
    return np.round(rgb.transpose(1, 2, 0) * 255.0).astype(np.uint8)


def render_rgb(truth: Mapping[str, Any], size: int, native_pixels: int = 128) -> np.ndarray:
    """Render one galaxy as an 8-bit RGB image of ``size`` x ``size`` pixels.

    Args:
        truth: one row of ``draw_truths``.
        size: output side in pixels (the field of view stays ``native_pixels`` x 0.262 arcsec).
        native_pixels: side of the rendered field in DECaLS pixels.

    Returns:
        [size, size, 3] uint8 image.
    """
    return resize_rgb(bands_to_rgb(render_bands(truth, native_pixels)), size)


def resize_rgb(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resample an RGB image to ``size`` x ``size`` (Lanczos; a no-op when already that size).

    Args:
        rgb: [H, W, 3] uint8 image.
        size: output side in pixels.

    Returns:
        [size, size, 3] uint8 image.
    """
    if rgb.shape[0] == size and rgb.shape[1] == size:
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size, size), Image.Resampling.LANCZOS))


def save_image(rgb: np.ndarray, path: Path, image_format: str = "jpg") -> None:
    """Write an RGB image as JPEG (quality 90) or PNG.

    Args:
        rgb: [H, W, 3] uint8 image.
        path: where to write.
        image_format: ``jpg`` or ``png``.

    Raises:
        ValueError: for any other format.
    """
    if image_format not in ("jpg", "png"):
        raise ValueError(f"image_format must be 'jpg' or 'png', got {image_format!r}")
    image = Image.fromarray(rgb)
    if image_format == "jpg":
        image.save(path, format="JPEG", quality=90)
    else:
        image.save(path, format="PNG")


def save_fits(bands: np.ndarray, path: Path, id_str: str) -> None:
    """Write the raw g, r, z bands as one FITS cube (BANDS, PIXSCALE and ID in the header).

    Args:
        bands: [3, H, W] float fluxes.
        path: where to write.
        id_str: the galaxy's identifier.
    """
    hdu = fits.PrimaryHDU(np.asarray(bands, dtype=np.float32))
    hdu.header["BANDS"] = ",".join(BANDS)
    hdu.header["PIXSCALE"] = (DECALS_PIXEL_SCALE, "arcsec per pixel")
    hdu.header["BUNIT"] = ("r-band sky sigma", "flux unit")
    hdu.header["ID"] = id_str
    hdu.writeto(path, overwrite=True)

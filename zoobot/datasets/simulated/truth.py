"""Truth parameters of simulated galaxies: structure, features, distance, observing conditions.

One row per galaxy. Angles are in degrees, sizes in arcseconds, fluxes in units of the r-band sky
noise of one DECaLS pixel (0.262 arcsec), so ``flux / sky_sigma`` is a signal-to-noise scale.
Redshift-like dimming makes distant galaxies smaller (size ~ 1/z) and fainter (flux ~ 1/z^2), so
their features fall below visibility, the effect Galaxy Zoo's debiasing corrects. ``visibility``
(0..1) summarises how much of a galaxy's structure an observer can see, from its signal-to-noise and
its size in PSF widths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "ARTIFACT_KINDS",
    "DECALS_PIXEL_SCALE",
    "MORPHOLOGIES",
    "add_visibility",
    "draw_truths",
]

DECALS_PIXEL_SCALE = 0.262  # arcsec per pixel of the DECaLS (Legacy Surveys) images
MORPHOLOGIES = ("elliptical", "lenticular", "spiral")
ARTIFACT_KINDS = ("none", "satellite_trail", "bright_star", "missing_band")

_MORPHOLOGY_FRACTIONS = (0.35, 0.15, 0.50)
_ARTIFACT_FRACTIONS = (0.94, 0.025, 0.025, 0.01)
_REFERENCE_REDSHIFT = 0.05
_REDSHIFT_RANGE = (0.015, 0.09)
_LOG_FLUX_AT_REFERENCE = (np.log10(20000.0), 0.4)  # mean and scatter (dex) of flux at z = 0.05
_LOG_HLR_AT_REFERENCE = (np.log10(4.5), 0.12)  # arcsec
_SNR_SCALE = 40.0  # visibility reaches 1 - 1/e at this half-light signal-to-noise
_SIZE_SCALE = 1.2  # ... and half its size term at this half-light radius in PSF FWHMs


def _draw_redshift(rng: np.random.Generator, n: int) -> np.ndarray:
    """Redshifts with p(z) ~ z^2 (uniform in volume) between the survey's limits."""
    low, high = _REDSHIFT_RANGE
    return (rng.uniform(low**3, high**3, n)) ** (1.0 / 3.0)


def _per_morphology(
    morphology: np.ndarray, values: dict[str, np.ndarray], default: float = 0.0
) -> np.ndarray:
    """Pick, for each galaxy, the value drawn for its morphology."""
    out = np.full(morphology.shape, default, dtype=float)
    for name, drawn in values.items():
        mask = morphology == name
        out[mask] = drawn[mask]
    return out


def _draw_structure(rng: np.random.Generator, morphology: np.ndarray) -> dict[str, np.ndarray]:
    """Bulge and disk structure: bulge-to-total, Sersic index, size ratios, axis ratios."""
    n = morphology.size
    bulge_to_total = _per_morphology(
        morphology,
        {
            "elliptical": rng.uniform(0.8, 1.0, n),
            "lenticular": rng.beta(4.0, 4.0, n),
            "spiral": rng.beta(1.5, 6.0, n),
        },
    )
    sersic_n = _per_morphology(
        morphology,
        {
            "elliptical": rng.uniform(3.0, 6.0, n),
            "lenticular": rng.uniform(2.0, 4.0, n),
            "spiral": rng.uniform(1.0, 3.0, n),
        },
    )
    bulge_size_ratio = _per_morphology(
        morphology,
        {
            "elliptical": rng.uniform(0.8, 1.2, n),
            "lenticular": rng.uniform(0.25, 0.45, n),
            "spiral": rng.uniform(0.15, 0.35, n),
        },
    )
    bulge_axis_ratio = _per_morphology(
        morphology,
        {
            "elliptical": rng.uniform(0.35, 1.0, n),
            "lenticular": rng.uniform(0.7, 1.0, n),
            "spiral": rng.uniform(0.75, 1.0, n),
        },
    )
    return {
        "bulge_to_total": bulge_to_total,
        "sersic_n": sersic_n,
        "bulge_size_ratio": bulge_size_ratio,
        "bulge_axis_ratio": bulge_axis_ratio,
        "disk_scale_height_ratio": rng.uniform(0.08, 0.14, n),
        "inclination_deg": np.degrees(np.arccos(rng.uniform(0.0, 1.0, n))),
        "position_angle_deg": rng.uniform(0.0, 180.0, n),
    }


def _draw_features(rng: np.random.Generator, morphology: np.ndarray) -> dict[str, np.ndarray]:
    """Spiral arms, bars, rings and star-forming clumps (disks only)."""
    n = morphology.size
    is_spiral = morphology == "spiral"
    is_disk = morphology != "elliptical"
    has_bar = is_disk & (rng.uniform(size=n) < np.where(is_spiral, 0.45, 0.35))
    has_ring = is_disk & (rng.uniform(size=n) < 0.15)
    arm_count = rng.choice([1, 2, 3, 4, 5, 6], size=n, p=[0.03, 0.6, 0.17, 0.1, 0.06, 0.04])
    return {
        "arm_count": np.where(is_spiral, arm_count, 0),
        "pitch_angle_deg": np.where(is_spiral, rng.uniform(8.0, 35.0, n), 0.0),
        "arm_strength": np.where(is_spiral, rng.beta(3.0, 1.8, n), 0.0),
        "arm_phase_deg": rng.uniform(0.0, 360.0, n),
        "bar_strength": np.where(has_bar, rng.beta(2.0, 2.0, n), 0.0),
        "bar_length": rng.uniform(0.7, 1.4, n),
        "bar_axis_ratio": rng.uniform(0.2, 0.45, n),
        "bar_angle_deg": rng.uniform(0.0, 180.0, n),
        "ring_strength": np.where(has_ring, rng.beta(2.0, 2.0, n), 0.0),
        "ring_radius": rng.uniform(1.0, 1.8, n),
        "clumpiness": np.where(is_spiral, rng.beta(1.5, 5.0, n), rng.uniform(0.0, 0.03, n)),
    }


def _draw_environment(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Merging companions, tidal debris and image artifacts."""
    has_companion = rng.uniform(size=n) < 0.12
    flux_ratio = np.where(has_companion, np.exp(rng.uniform(np.log(0.05), 0.0, n)), 0.0)
    post_merger = ~has_companion & (rng.uniform(size=n) < 0.03)
    tidal = np.where(has_companion, flux_ratio * rng.uniform(0.2, 1.0, n), 0.0)
    tidal = np.where(post_merger, rng.uniform(0.2, 0.8, n), tidal)
    return {
        "companion_flux_ratio": flux_ratio,
        "companion_separation": rng.uniform(1.2, 3.0, n),
        "companion_angle_deg": rng.uniform(0.0, 360.0, n),
        "companion_sersic_n": rng.uniform(1.0, 4.0, n),
        "tidal_amplitude": tidal,
        "artifact": rng.choice(ARTIFACT_KINDS, size=n, p=_ARTIFACT_FRACTIONS),
    }


def _draw_observation(rng: np.random.Generator, morphology: np.ndarray) -> dict[str, np.ndarray]:
    """Distance, flux, size, PSF and sky noise."""
    n = morphology.size
    redshift = _draw_redshift(rng, n)
    log_flux_offset = rng.normal(0.0, _LOG_FLUX_AT_REFERENCE[1], n)
    dimming = _REFERENCE_REDSHIFT / redshift
    flux = 10 ** (_LOG_FLUX_AT_REFERENCE[0] + log_flux_offset) * dimming**2
    # Brighter galaxies are bigger (R ~ L^0.3); ellipticals are more compact than disks.
    log_hlr = _LOG_HLR_AT_REFERENCE[0] + 0.3 * log_flux_offset
    log_hlr += rng.normal(0.0, _LOG_HLR_AT_REFERENCE[1], n) - 0.1 * (morphology == "elliptical")
    return {
        "redshift": redshift,
        "flux": flux,
        "half_light_radius": np.clip(10**log_hlr * dimming, 0.5, 12.0),
        "psf_fwhm": rng.uniform(1.0, 1.5, n),
        "psf_beta": rng.uniform(2.5, 4.5, n),
        "sky_sigma": 10 ** rng.normal(0.0, 0.08, n),
    }


def add_visibility(truths: pd.DataFrame) -> pd.DataFrame:
    """Add the derived columns that volunteers' perception depends on.

    Adds ``axis_ratio`` (observed, flux-weighted bulge and projected disk), ``snr`` (signal-to-noise
    inside the PSF-broadened half-light radius), ``size_psf_widths`` (half-light radius / PSF
    FWHM) and ``visibility`` in [0, 1] = (1 - exp(-snr / 40)) * s^2 / (s^2 + 1.2^2) with
    s = size_psf_widths.

    Args:
        truths: a frame from ``draw_truths`` (or with the same columns).

    Returns:
        A copy of ``truths`` with the derived columns (replaced if present).
    """
    out = truths.copy()
    incl = np.radians(out["inclination_deg"].to_numpy())
    thickness = out["disk_scale_height_ratio"].to_numpy()
    disk_q = np.sqrt(np.cos(incl) ** 2 + (thickness * np.sin(incl)) ** 2)
    bt = out["bulge_to_total"].to_numpy()
    out["axis_ratio"] = bt * out["bulge_axis_ratio"].to_numpy() + (1.0 - bt) * disk_q
    hlr = out["half_light_radius"].to_numpy()
    fwhm = out["psf_fwhm"].to_numpy()
    radius_px = np.sqrt(hlr**2 + (fwhm / 2.0) ** 2) / DECALS_PIXEL_SCALE
    noise = out["sky_sigma"].to_numpy() * np.sqrt(np.pi) * radius_px
    out["snr"] = 0.5 * out["flux"].to_numpy() / noise
    size = hlr / fwhm
    out["size_psf_widths"] = size
    out["visibility"] = (
        (1.0 - np.exp(-out["snr"] / _SNR_SCALE)) * size**2 / (size**2 + _SIZE_SCALE**2)
    )
    return out


def draw_truths(n: int, seed: int | np.random.Generator) -> pd.DataFrame:
    """Draw the truth parameters of ``n`` galaxies.

    The same seed gives the same frame. Each row carries an ``image_seed`` so that a galaxy renders
    to the same pixels whatever the order or the process it is drawn in.

    Args:
        n: how many galaxies (>= 0).
        seed: an integer seed or a numpy Generator.

    Returns:
        DataFrame with one row per galaxy: ``galaxy_index``, ``morphology``; structure
        (``bulge_to_total``, ``sersic_n``, ``bulge_size_ratio``, ``bulge_axis_ratio``,
        ``disk_scale_height_ratio``, ``inclination_deg``, ``position_angle_deg``); features
        (``arm_count``, ``pitch_angle_deg``, ``arm_strength``, ``arm_phase_deg``, ``bar_strength``,
        ``bar_length`` and ``ring_radius`` in half-light radii, ``bar_axis_ratio``,
        ``bar_angle_deg``, ``ring_strength``, ``clumpiness``); environment (``companion_*``,
        ``tidal_amplitude``, ``artifact``); observation (``redshift``, ``flux``,
        ``half_light_radius`` and ``psf_fwhm`` in arcsec, ``psf_beta``, ``sky_sigma``);
        ``image_seed``; and the columns of ``add_visibility``.

    Raises:
        ValueError: if ``n`` is negative.
    """
    if n < 0:
        raise ValueError(f"draw_truths: n must be >= 0, got {n}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    morphology = rng.choice(np.array(MORPHOLOGIES), size=n, p=_MORPHOLOGY_FRACTIONS)
    columns: dict[str, np.ndarray] = {"galaxy_index": np.arange(n), "morphology": morphology}
    columns.update(_draw_structure(rng, morphology))
    columns.update(_draw_features(rng, morphology))
    columns.update(_draw_environment(rng, n))
    columns.update(_draw_observation(rng, morphology))
    columns["image_seed"] = rng.integers(0, 2**31 - 1, n)
    return add_visibility(pd.DataFrame(columns))

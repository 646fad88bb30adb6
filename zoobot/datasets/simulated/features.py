"""Galaxy features GalSim does not draw, as numpy surface-brightness maps on the pixel grid.

Spiral arms (a logarithmic-spiral modulation of the exponential disk), bars (a Ferrers ellipse),
rings (a Gaussian annulus), tidal tails, and the artifacts of survey images (satellite trails,
bright stars with diffraction spikes). Disk features are evaluated in the disk plane and projected
with the galaxy's inclination and position angle, so they foreshorten like the GalSim disk. Maps are
normalised to unit sum (multiply by the flux wanted) unless said otherwise; none is convolved with
the PSF here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DiskGeometry",
    "draw_arms",
    "draw_bar",
    "draw_diffraction_spikes",
    "draw_ring",
    "draw_satellite_trail",
    "draw_tidal_tails",
    "sky_grid",
]

_MIN_AXIS_RATIO = 0.03


def _unit_sum(image: np.ndarray) -> np.ndarray:
    total = image.sum()
    return image / total if total > 0 else image


def sky_grid(n_pixels: int, pixel_scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Sky coordinates (arcsec) of pixel centres, origin at the image's true centre like GalSim's.

    Args:
        n_pixels: side of the square image.
        pixel_scale: arcsec per pixel.

    Returns:
        ``(x, y)``, each [n_pixels, n_pixels]; x grows along columns, y along rows.
    """
    centre = (n_pixels - 1) / 2.0
    axis = (np.arange(n_pixels) - centre) * pixel_scale
    return np.meshgrid(axis, axis)


@dataclass(frozen=True)
class DiskGeometry:
    """Disk-plane polar coordinates of every pixel.

    Attributes:
        radius: [H, W] disk-plane radius in arcsec.
        angle: [H, W] disk-plane azimuth in radians.
        x: [H, W] disk-plane x (along the major axis) in arcsec.
        y: [H, W] disk-plane y (deprojected minor axis) in arcsec.
    """

    radius: np.ndarray
    angle: np.ndarray
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def from_sky(
        cls,
        x: np.ndarray,
        y: np.ndarray,
        inclination_deg: float,
        position_angle_deg: float,
        thickness: float = 0.1,
    ) -> DiskGeometry:
        """Deproject sky coordinates onto the plane of a disk.

        Args:
            x: [H, W] sky x in arcsec.
            y: [H, W] sky y in arcsec.
            inclination_deg: 0 face-on, 90 edge-on.
            position_angle_deg: major-axis angle, counter-clockwise from x (GalSim's ``rotate``).
            thickness: scale height / scale radius; an edge-on disk keeps this axis ratio.

        Returns:
            The geometry.
        """
        pa = np.radians(position_angle_deg)
        incl = np.radians(inclination_deg)
        along = x * np.cos(pa) + y * np.sin(pa)
        across = -x * np.sin(pa) + y * np.cos(pa)
        axis_ratio = np.hypot(np.cos(incl), thickness * np.sin(incl))
        across = across / max(axis_ratio, _MIN_AXIS_RATIO)
        return cls(np.hypot(along, across), np.arctan2(across, along), along, across)


def draw_arms(
    disk: DiskGeometry,
    scale_radius: float,
    arm_count: int,
    pitch_angle_deg: float,
    phase_deg: float,
    sharpness: float = 4.0,
) -> np.ndarray:
    """Logarithmic spiral arms riding on an exponential disk, absent from the centre.

    Args:
        disk: disk-plane coordinates.
        scale_radius: exponential scale length of the disk in arcsec.
        arm_count: number of arms m (>= 1).
        pitch_angle_deg: pitch angle of the spiral (small = tightly wound).
        phase_deg: rotation of the pattern.
        sharpness: exponent of the arm profile; larger gives narrower arms.

    Returns:
        [H, W] unit-sum map (zeros when ``arm_count`` < 1).
    """
    if arm_count < 1:
        return np.zeros_like(disk.radius)
    r = np.maximum(disk.radius, 1e-3 * scale_radius)
    winding = np.log(r / scale_radius) / np.tan(np.radians(max(pitch_angle_deg, 3.0)))
    phase = arm_count * (disk.angle - winding) - np.radians(phase_deg)
    profile = (0.5 * (1.0 + np.cos(phase))) ** sharpness
    envelope = np.exp(-r / (1.3 * scale_radius)) * (1.0 - np.exp(-((r / scale_radius) ** 2)))
    return _unit_sum(profile * envelope)


def draw_bar(disk: DiskGeometry, length: float, axis_ratio: float, angle_deg: float) -> np.ndarray:
    """A bar in the disk plane: flat-topped, falling steeply beyond its ends (exp(-m^4)).

    Unlike a Ferrers profile it has no hard edge, so a bar seen edge-on, thinner than a pixel,
    still puts its light on the pixel grid.

    Args:
        disk: disk-plane coordinates.
        length: semi-major axis in arcsec.
        axis_ratio: minor / major axis.
        angle_deg: bar angle in the disk plane, from the disk's major axis.

    Returns:
        [H, W] unit-sum map.
    """
    theta = np.radians(angle_deg)
    along = disk.x * np.cos(theta) + disk.y * np.sin(theta)
    across = -disk.x * np.sin(theta) + disk.y * np.cos(theta)
    m2 = (along / length) ** 2 + (across / (length * axis_ratio)) ** 2
    return _unit_sum(np.exp(-(m2**2)))


def draw_ring(disk: DiskGeometry, radius: float, width: float) -> np.ndarray:
    """A Gaussian annulus in the disk plane.

    Args:
        disk: disk-plane coordinates.
        radius: ring radius in arcsec.
        width: Gaussian sigma of the ring in arcsec.

    Returns:
        [H, W] unit-sum map.
    """
    return _unit_sum(np.exp(-0.5 * ((disk.radius - radius) / width) ** 2))


def draw_tidal_tails(
    x: np.ndarray, y: np.ndarray, start_radius: float, start_angle_deg: float, width: float
) -> np.ndarray:
    """Two curved tidal tails winding out of a galaxy, one starting towards ``start_angle_deg``.

    Args:
        x: [H, W] sky x in arcsec, relative to the galaxy centre.
        y: [H, W] sky y in arcsec.
        start_radius: radius (arcsec) where the tails leave the galaxy.
        start_angle_deg: direction of the first tail's root.
        width: Gaussian sigma of the tails across their length, in arcsec.

    Returns:
        [H, W] unit-sum map.
    """
    rho = np.hypot(x, y)
    total = np.zeros_like(rho)
    for offset in (0.0, np.pi):
        along = np.mod(np.arctan2(y, x) - np.radians(start_angle_deg) - offset, 2 * np.pi)
        centre_line = start_radius * (1.0 + 0.35 * along)
        fade = np.exp(-along / 2.0)
        total += fade * np.exp(-0.5 * ((rho - centre_line) / (width * (1 + 0.3 * along))) ** 2)
    return _unit_sum(total)


def draw_satellite_trail(
    x: np.ndarray, y: np.ndarray, offset: float, angle_deg: float, width: float
) -> np.ndarray:
    """A straight streak across the image, as left by a satellite in one exposure.

    Args:
        x: [H, W] sky x in arcsec.
        y: [H, W] sky y in arcsec.
        offset: distance of the line from the image centre, in arcsec.
        angle_deg: direction of the line.
        width: Gaussian sigma across the line in arcsec.

    Returns:
        [H, W] map with peak 1 (not unit-sum: a trail's brightness is per unit length).
    """
    theta = np.radians(angle_deg)
    distance = -x * np.sin(theta) + y * np.cos(theta) - offset
    return np.exp(-0.5 * (distance / width) ** 2)


def draw_diffraction_spikes(
    x: np.ndarray, y: np.ndarray, centre: tuple[float, float], length: float, width: float
) -> np.ndarray:
    """Four diffraction spikes of a bright star (the telescope's spider), along x and y.

    Args:
        x: [H, W] sky x in arcsec.
        y: [H, W] sky y in arcsec.
        centre: the star's position in arcsec.
        length: e-folding length of the spikes in arcsec.
        width: Gaussian sigma across a spike in arcsec.

    Returns:
        [H, W] unit-sum map.
    """
    dx, dy = x - centre[0], y - centre[1]
    spikes = np.exp(-np.abs(dx) / length - 0.5 * (dy / width) ** 2)
    spikes += np.exp(-np.abs(dy) / length - 0.5 * (dx / width) ** 2)
    return _unit_sum(spikes)

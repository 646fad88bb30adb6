import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from tests.datasets.conftest import with_values
from zoobot.datasets.simulated import (
    BANDS,
    bands_to_rgb,
    render_bands,
    render_rgb,
    save_fits,
    save_image,
)

PIXELS = 64


@pytest.fixture(scope="module")
def spiral(truths):
    """One clean, face-on, bright spiral with no companion or artifact, as a dict."""
    row = truths[truths["morphology"] == "spiral"].iloc[[0]]
    row = with_values(
        row,
        inclination_deg=20.0,
        companion_flux_ratio=0.0,
        tidal_amplitude=0.0,
        artifact="none",
        half_light_radius=3.0,
        pitch_angle_deg=25.0,
        flux=20000.0,
        arm_strength=0.9,
        bar_strength=0.0,
        ring_strength=0.0,
        clumpiness=0.0,
    )
    return row.iloc[0].to_dict()


def noiseless(truth, **values):
    return render_bands({**truth, "sky_sigma": 1e-9, **values}, PIXELS, field_stars=False)


def test_bands_have_shape_and_are_deterministic(truths):
    truth = truths.iloc[1]
    bands = render_bands(truth, PIXELS)
    assert bands.shape == (len(BANDS), PIXELS, PIXELS) and bands.dtype == np.float32
    np.testing.assert_array_equal(bands, render_bands(truth, PIXELS))
    other = {**truth.to_dict(), "image_seed": int(truth["image_seed"]) + 1}
    assert not np.array_equal(bands, render_bands(other, PIXELS))


def test_r_band_holds_the_truth_flux(spiral):
    r = noiseless(spiral)[1]
    assert r.sum() == pytest.approx(spiral["flux"], rel=0.1)


def test_noise_matches_sky_sigma(spiral):
    empty = {**spiral, "flux": 1e-9, "sky_sigma": 2.0}
    bands = render_bands(empty, PIXELS, field_stars=False)
    assert bands[1].std() == pytest.approx(2.0, rel=0.1)


def shape_moments(image: np.ndarray) -> float:
    """Axis ratio from the second moments of a (noiseless) image."""
    y, x = np.indices(image.shape)
    w = np.clip(image, 0, None) / np.clip(image, 0, None).sum()
    mx, my = (w * x).sum(), (w * y).sum()
    cov = np.array(
        [
            [(w * (x - mx) ** 2).sum(), (w * (x - mx) * (y - my)).sum()],
            [(w * (x - mx) * (y - my)).sum(), (w * (y - my) ** 2).sum()],
        ]
    )
    low, high = np.linalg.eigvalsh(cov)
    return float(np.sqrt(low / high))


def test_edge_on_disks_are_thin(spiral):
    disk = {**spiral, "bulge_to_total": 0.05, "arm_strength": 0.0}
    edge_on = shape_moments(noiseless(disk, inclination_deg=88.0)[1])
    face_on = shape_moments(noiseless(disk, inclination_deg=10.0)[1])
    assert edge_on < 0.45 < 0.8 < face_on


def azimuthal_contrast(image: np.ndarray) -> float:
    """Spread of brightness around rings, relative to the ring mean, between 4 and 20 px."""
    y, x = np.indices(image.shape) - (PIXELS - 1) / 2
    radius = np.hypot(x, y).astype(int)
    contrast = []
    for r in range(4, 20):
        ring = image[radius == r]
        contrast.append(ring.std() / ring.mean())
    return float(np.mean(contrast))


def test_spiral_arms_and_bars_break_the_symmetry(spiral):
    face_on = {**spiral, "inclination_deg": 0.0, "bulge_axis_ratio": 1.0}
    plain = azimuthal_contrast(noiseless(face_on, arm_strength=0.0)[1])
    armed = azimuthal_contrast(noiseless(face_on)[1])
    barred = azimuthal_contrast(noiseless(face_on, arm_strength=0.0, bar_strength=0.9)[1])
    assert plain < 0.1
    assert armed > plain + 0.1
    assert barred > plain + 0.05


def test_companion_adds_light_off_centre(spiral):
    alone = noiseless(spiral)[1]
    pair = noiseless(spiral, companion_flux_ratio=0.5, companion_separation=2.5)[1]
    assert pair.sum() == pytest.approx(1.5 * alone.sum(), rel=0.1)


@pytest.mark.parametrize("kind", ["satellite_trail", "bright_star", "missing_band"])
def test_artifacts_change_the_image(spiral, kind):
    clean = render_bands(spiral, PIXELS)
    broken = render_bands({**spiral, "artifact": kind}, PIXELS)
    if kind == "missing_band":
        assert (broken == 0).all(axis=(1, 2)).sum() == 1
    else:
        assert broken.sum() > clean.sum() + 100


def test_rgb_is_eight_bit_with_dark_grey_sky(spiral):
    rgb = bands_to_rgb(render_bands(spiral, PIXELS))
    assert rgb.shape == (PIXELS, PIXELS, 3) and rgb.dtype == np.uint8
    sky = np.median(rgb[:5, :5])
    assert 0 < sky < 60
    assert rgb[PIXELS // 2, PIXELS // 2].mean() > 4 * sky


def test_render_rgb_resizes(spiral):
    assert render_rgb(spiral, 32, native_pixels=PIXELS).shape == (32, 32, 3)
    assert render_rgb(spiral, 80, native_pixels=PIXELS).shape == (80, 80, 3)


@pytest.mark.parametrize("image_format", ["jpg", "png"])
def test_save_image_round_trip(tmp_path, spiral, image_format):
    rgb = render_rgb(spiral, PIXELS, native_pixels=PIXELS)
    path = tmp_path / f"galaxy.{image_format}"
    save_image(rgb, path, image_format)
    loaded = np.asarray(Image.open(path))
    assert loaded.shape == rgb.shape
    if image_format == "png":
        np.testing.assert_array_equal(loaded, rgb)


def test_save_image_refuses_unknown_format(tmp_path, spiral):
    with pytest.raises(ValueError, match="jpg"):
        save_image(np.zeros((4, 4, 3), np.uint8), tmp_path / "x.tif", "tif")


def test_save_fits_keeps_raw_bands(tmp_path, spiral):
    bands = render_bands(spiral, PIXELS)
    save_fits(bands, tmp_path / "g.fits", "sim_0")
    with fits.open(tmp_path / "g.fits") as hdus:
        np.testing.assert_array_equal(hdus[0].data, bands)
        assert hdus[0].header["BANDS"] == "g,r,z" and hdus[0].header["ID"] == "sim_0"

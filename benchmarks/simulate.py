"""Benchmark: simulated galaxies per second per CPU core at 128 px (render + RGB + JPEG encode).

Rates are galaxies per CPU-second of this single process, so other load on a shared host does not
distort them. Baseline, run in the same script: the straightforward GalSim pipeline, where every
component is convolved with the Moffat PSF by GalSim (Fourier space) and drawn once per band.
Prints one markdown table row to stdout::

    python benchmarks/simulate.py --n 200
"""

from __future__ import annotations

import argparse
import io
import time

import galsim
import numpy as np
from PIL import Image

from zoobot.datasets.simulated import bands_to_rgb, draw_truths, render_rgb


def encode(rgb: np.ndarray) -> int:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=90)
    return buffer.tell()


def render_baseline(truth: dict, size: int) -> np.ndarray:
    """Bulge + disk, each band drawn by GalSim with the PSF convolution in Fourier space."""
    psf = galsim.Moffat(beta=truth["psf_beta"], fwhm=truth["psf_fwhm"])
    pa = truth["position_angle_deg"] * galsim.degrees
    bulge = galsim.Sersic(
        n=min(max(truth["sersic_n"], 0.5), 6.0),
        half_light_radius=max(truth["half_light_radius"] * truth["bulge_size_ratio"], 0.15),
    ).shear(q=truth["bulge_axis_ratio"], beta=pa)
    disk = galsim.InclinedExponential(
        truth["inclination_deg"] * galsim.degrees,
        half_light_radius=truth["half_light_radius"],
        scale_h_over_r=truth["disk_scale_height_ratio"],
    ).rotate(pa)
    bt, flux = truth["bulge_to_total"], truth["flux"]
    bands = []
    for bulge_colour, disk_colour in ((0.55, 0.75), (1.0, 1.0), (1.45, 1.2)):
        galaxy = bulge * (bt * flux * bulge_colour) + disk * ((1 - bt) * flux * disk_colour)
        image = galsim.Convolve(galaxy, psf).drawImage(nx=size, ny=size, scale=0.262)
        image.addNoise(galsim.GaussianNoise(galsim.BaseDeviate(int(truth["image_seed"]))))
        bands.append(image.array)
    return bands_to_rgb(np.stack(bands))


def rate(render, truths: list[dict], size: int) -> float:
    """Galaxies per CPU-second of this process (per core, and robust to other load on the host)."""
    start = time.process_time()
    for truth in truths:
        encode(render(truth, size))
    return len(truths) / (time.process_time() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="galaxies per timing")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--baseline-n", type=int, default=30, help="galaxies for the baseline")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed")
    args = parser.parse_args()
    truths = draw_truths(args.n, args.seed).to_dict("records")
    render_rgb(truths[0], args.size)  # warm caches (GalSim tables, FFT plans)
    render_baseline(truths[0], args.size)
    ours = rate(render_rgb, truths, args.size)
    baseline = rate(render_baseline, truths[: args.baseline_n], args.size)
    print(
        f"| simulate {args.size} px, 1 core, n={args.n} | {ours:.1f} galaxies/CPU-s "
        f"| GalSim-convolved baseline {baseline:.1f} galaxies/CPU-s | x{ours / baseline:.1f} |"
    )


if __name__ == "__main__":
    main()

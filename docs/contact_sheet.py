"""Draw a contact sheet of simulated galaxies, captioned with their key truths.

Usage::

    python docs/contact_sheet.py                      # writes docs/contact_sheet.png
    python docs/contact_sheet.py --real --out /tmp/sheet_vs_real.png

``--real`` adds a row block of real GZ DECaLS images from ``../shared/data/gz_decals_rings`` (beside
the repository) for comparison; that image must not be committed, so pass ``--out`` elsewhere.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from zoobot.datasets.simulated import draw_truths, render_rgb

logger = logging.getLogger("contact_sheet")

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA = REPO_ROOT.parent / "shared" / "data" / "gz_decals_rings"
CAPTION_HEIGHT = 34


def caption(truth: pd.Series) -> list[str]:
    """Two short caption lines naming the truths that should be visible."""
    first = f"{truth['morphology'][:4]} B/T{truth['bulge_to_total']:.1f}"
    parts = [f"{first} i{truth['inclination_deg']:.0f} z{truth['redshift']:.3f}"]
    extras = []
    if truth["arm_strength"] > 0:
        extras.append(f"m{truth['arm_count']} arm{truth['arm_strength']:.1f}")
    if truth["bar_strength"] > 0:
        extras.append(f"bar{truth['bar_strength']:.1f}")
    if truth["ring_strength"] > 0:
        extras.append(f"ring{truth['ring_strength']:.1f}")
    if truth["companion_flux_ratio"] > 0 or truth["tidal_amplitude"] > 0:
        extras.append(f"merg{truth['companion_flux_ratio']:.2f}/{truth['tidal_amplitude']:.1f}")
    if truth["artifact"] != "none":
        extras.append(str(truth["artifact"]).replace("satellite_", "")[:6])
    extras.append(f"v{truth['visibility']:.2f}")
    parts.append(" ".join(extras))
    return parts


def tile(image: np.ndarray, lines: list[str], size: int) -> Image.Image:
    """One image with its caption underneath."""
    out = Image.new("RGB", (size, size + CAPTION_HEIGHT), "white")
    out.paste(Image.fromarray(image).resize((size, size)), (0, 0))
    draw = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        draw.text((2, size + 2 + 15 * i), line, fill="black")
    return out


def real_tiles(n: int, size: int) -> list[Image.Image]:
    """Real GZ DECaLS ring-sample images, captioned with their volunteers' featured fraction."""
    catalog = pd.read_csv(REAL_DATA / "catalog.csv").sample(n, random_state=0)
    tiles = []
    for _, row in catalog.iterrows():
        image = np.asarray(Image.open(REAL_DATA / row["file_loc"]).convert("RGB"))
        featured = row["smooth-or-featured_featured-or-disk_fraction"]
        tiles.append(tile(image, ["real DECaLS", f"featured {featured:.2f}"], size))
    return tiles


def main(argv: list[str] | None = None) -> int:
    """Draw the sheet; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="simulated galaxies to draw")
    parser.add_argument("--columns", type=int, default=8, help="tiles per row")
    parser.add_argument("--tile", type=int, default=150, help="tile size in pixels")
    parser.add_argument("--seed", type=int, default=3, help="simulation seed")
    parser.add_argument("--real", action="store_true", help="add real DECaLS images for comparison")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "contact_sheet.png")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    truths = draw_truths(args.n, args.seed)
    tiles = [tile(render_rgb(t, 128), caption(t), args.tile) for _, t in truths.iterrows()]
    if args.real:
        if not REAL_DATA.exists():
            logger.error("no real data at %s; run without --real", REAL_DATA)
            return 1
        tiles += real_tiles(args.columns * 2, args.tile)
    rows = -(-len(tiles) // args.columns)
    height = args.tile + CAPTION_HEIGHT
    sheet = Image.new("RGB", (args.columns * args.tile, rows * height), "white")
    for i, image in enumerate(tiles):
        sheet.paste(image, ((i % args.columns) * args.tile, (i // args.columns) * height))
    # A 256-colour palette keeps the committed PNG under 1 MB.
    palette = sheet.quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    palette.save(args.out, optimize=True)
    logger.info("contact sheet written path=%s tiles=%d", args.out, len(tiles))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

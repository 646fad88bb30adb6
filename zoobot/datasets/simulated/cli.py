"""Command line: ``python -m zoobot.datasets.simulated --n N --size PIXELS --seed S --out DIR``.

Writes the images and one catalogue file into DIR, logs to stderr and prints the catalogue's path on
stdout. Exit codes: 0 success, 1 a known failure (bad values, unwritable folder), 2 usage errors.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from zoobot.datasets.simulated.catalog import make_catalog
from zoobot.errors import ZoobotError
from zoobot.logs import configure_logging

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (every option documented in ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m zoobot.datasets.simulated",
        description="Simulate galaxies and Galaxy Zoo DECaLS DR5 volunteer votes.",
    )
    parser.add_argument("--n", type=int, required=True, help="number of galaxies")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (128)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed (0)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--format", choices=["jpg", "png"], default="jpg", help="image format (jpg)"
    )
    parser.add_argument("--fits", action="store_true", help="also write raw g, r, z FITS cubes")
    parser.add_argument("--volunteers", type=int, default=40, help="volunteers per galaxy (40)")
    parser.add_argument("--workers", type=int, default=1, help="rendering processes (1)")
    parser.add_argument(
        "--catalog-format",
        choices=["csv", "parquet"],
        default="csv",
        help="catalogue file format (csv)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (INFO)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of failures")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command.

    Args:
        argv: arguments without the program name (None reads ``sys.argv``).

    Returns:
        The exit code.
    """
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        make_catalog(
            n=args.n,
            size=args.size,
            seed=args.seed,
            out_dir=args.out,
            n_volunteers=args.volunteers,
            image_format=args.format,
            fits=args.fits,
            workers=args.workers,
            catalog_format=args.catalog_format,
        )
    except (ZoobotError, ValueError, OSError) as error:
        if args.debug:
            raise
        logger.error("simulation failed: %s: %s", type(error).__name__, error)
        return 1
    print(args.out / f"catalog.{args.catalog_format}")
    return 0

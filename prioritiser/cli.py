"""Command line: ``python -m prioritiser score|run|status|demo``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from prioritiser.errors import PrioritiserError

__all__ = ["main"]

logger = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace], int]


def _score(args: argparse.Namespace) -> int:
    from prioritiser.catalogs import read_catalog, write_table
    from prioritiser.ensemble import load_ensemble
    from prioritiser.scoring import score_catalog

    catalog = read_catalog(args.catalog)
    models = load_ensemble(args.checkpoint)
    ranked = score_catalog(
        catalog,
        models,
        n_samples=args.samples,
        total_votes=args.total_votes,
        acquisition=args.acquisition,
        batch_size=args.batch_size,
        resize_size=args.size,
        progress=True,
    )
    if args.top:
        ranked = ranked.head(args.top)
    path = write_table(ranked, args.out)
    print(path)
    return 0


def _add_score(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("score", help="rank a catalogue by mutual information")
    parser.add_argument(
        "--catalog", required=True, type=Path, help="CSV or parquet with id_str, file_loc"
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        action="append",
        type=Path,
        help="Tree checkpoint; repeat for an ensemble",
    )
    parser.add_argument("--out", required=True, type=Path, help="ranked .csv or .parquet")
    parser.add_argument("--top", type=int, default=0, help="keep only the K best (0: all)")
    parser.add_argument("--samples", type=int, default=5, help="MC-dropout passes per model")
    parser.add_argument("--total-votes", type=int, default=40, help="volunteers per shown galaxy")
    parser.add_argument(
        "--acquisition", default="bald", help="bald, entropy, variation_ratio or random"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=None, help="image side (default: the models')")
    parser.set_defaults(command=_score)


REGISTRATIONS: list[Callable[[argparse._SubParsersAction], None]] = [_add_score]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="python -m prioritiser", description=__doc__)
    parser.add_argument("--log-level", default=os.environ.get("ZOO_LOG_LEVEL", "INFO"))
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="name", required=True)
    for register in REGISTRATIONS:
        register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run one subcommand, turn known errors into a message and exit code 1."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        return args.command(args)
    except (PrioritiserError, OSError, ValueError) as error:
        if args.debug:
            raise
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1

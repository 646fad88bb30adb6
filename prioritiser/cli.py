"""Command line: ``python -m prioritiser score|run|status|demo``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

from panoptes_sync.errors import PanoptesSyncError, error_line
from prioritiser.config import PRECISIONS, QUESTION_WEIGHTINGS, check_scoring
from prioritiser.errors import PrioritiserError
from zoobot.logs import LOG_LEVELS, configure_logging

__all__ = ["main"]

logger = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace], int]


def _score(args: argparse.Namespace) -> int:
    from prioritiser.catalogs import read_catalog, write_table
    from prioritiser.ensemble import load_ensemble
    from prioritiser.scoring import score_catalog

    check_scoring(args.acquisition, args.question_weighting)
    catalog = read_catalog(args.catalog)
    models = load_ensemble(args.checkpoint)
    ranked = score_catalog(
        catalog,
        models,
        n_samples=args.samples,
        total_votes=args.total_votes,
        acquisition=args.acquisition,
        question_weighting=args.question_weighting,
        batch_size=args.batch_size,
        resize_size=args.size,
        precision=args.precision,
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
    parser.add_argument(
        "--question-weighting",
        choices=QUESTION_WEIGHTINGS,
        default="asked",
        help="bald: sum each question's MI times P(asked) (asked) or once (uniform)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=None, help="image side (default: the models')")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="encoder arithmetic; auto: bf16-mixed where the hardware has bf16 units (CUDA bf16, "
        "AMX or AVX512-BF16 CPUs: ~2x faster), else 32",
    )
    parser.set_defaults(command=_score)


def _run(args: argparse.Namespace) -> int:
    from prioritiser.config import load_config
    from prioritiser.daemon import Daemon

    config = load_config(args.config, env=os.environ)
    daemon = Daemon(config, max_retrains=args.max_retrains)
    if args.once:
        daemon.run_once()
    else:
        daemon.serve()
    return 0


def _add_run(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("run", help="run the scheduled daemon: sync, retrain, score, push")
    parser.add_argument(
        "--config", type=Path, default=os.environ.get("ZOO_CONFIG"), help="TOML config file"
    )
    parser.add_argument(
        "--max-retrains", type=int, default=None, help="stop after this many retrain cycles"
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="run one retrain cycle now, without the schedule; exit 1 if it fails",
    )
    parser.set_defaults(command=_run)


def _status(args: argparse.Namespace) -> int:
    from prioritiser.history import read_status

    cycles, versions = read_status(_database_url(args))
    print(cycles.tail(args.last).to_string(index=False) if len(cycles) else "no cycles yet")
    print()
    print(versions.to_string(index=False) if len(versions) else "no model versions yet")
    return 0


def _database_url(args: argparse.Namespace) -> str:
    from prioritiser.config import load_config

    return load_config(args.config, env=os.environ).sync.database_url


def _add_status(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("status", help="print recorded cycles and model versions")
    parser.add_argument(
        "--config", type=Path, default=os.environ.get("ZOO_CONFIG"), help="TOML config file"
    )
    parser.add_argument("--last", type=int, default=20, help="cycles to show")
    parser.set_defaults(command=_status)


def _rollback(args: argparse.Namespace) -> int:
    from prioritiser.store import deploy, open_store

    deploy(open_store(_database_url(args)), args.version)
    print(f"deployed model version {args.version}")
    return 0


def _add_rollback(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("rollback", help="deploy an earlier model version")
    parser.add_argument(
        "--config", type=Path, default=os.environ.get("ZOO_CONFIG"), help="TOML config file"
    )
    parser.add_argument("--version", type=int, required=True, help="model version id (see status)")
    parser.set_defaults(command=_rollback)


def _demo(args: argparse.Namespace) -> int:
    from prioritiser.demo import DemoOptions, run_demo
    from zoobot import strict_json

    options = DemoOptions(
        workdir=args.workdir, cycles=args.cycles, subjects=args.subjects, encoder=args.encoder
    )
    summary = run_demo(options)
    print(strict_json.dumps(summary, indent=2))
    return 0


def _add_demo(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "demo", help="run two full cycles against a local emulator, write a report"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("zoo-demo"), help="where everything is written"
    )
    parser.add_argument("--cycles", type=int, default=2, help="full cycles to run")
    parser.add_argument(
        "--subjects", type=int, default=240, help="simulated galaxies in the emulator"
    )
    parser.add_argument("--encoder", default="zoobot-sim-atto", help="encoder to start from")
    parser.set_defaults(command=_demo)


REGISTRATIONS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_score,
    _add_run,
    _add_status,
    _add_rollback,
    _add_demo,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="python -m prioritiser", description=__doc__)
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=os.environ.get("ZOO_LOG_LEVEL") or "INFO",
        help="logging level on stderr (also ZOO_LOG_LEVEL)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="name", required=True)
    for register in REGISTRATIONS:
        register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run one subcommand, turn known errors into a message and exit code 1."""
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        return args.command(args)
    except (PrioritiserError, PanoptesSyncError, OSError, ValueError) as error:
        if args.debug:
            raise
        print(error_line(error), file=sys.stderr)
        return 1

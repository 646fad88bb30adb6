"""Aggregate one export and one store with whichever panoptes_sync is on PYTHONPATH; compare runs.

Proves a refactor left the counts alone: run ``run`` once with the old checkout on PYTHONPATH and
once with the new, on the same files, then ``compare`` the two output folders (every table must
be byte-identical). Each run times the export and store aggregations.

Usage::

    python benchmarks/aggregate.py --classifications 1000000 --export /tmp/e.csv  # makes the export
    python benchmarks/aggregate_identity.py build-store --export /tmp/e.csv --rows 200000 \
        --store /tmp/store.sqlite3
    PYTHONPATH=<old> python benchmarks/aggregate_identity.py run --export /tmp/e.csv \
        --store /tmp/store.sqlite3 --out /tmp/old
    PYTHONPATH=<new> python benchmarks/aggregate_identity.py run ... --out /tmp/new
    python benchmarks/aggregate_identity.py compare /tmp/old /tmp/new
"""

from __future__ import annotations

import argparse
import filecmp
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from aggregate import WORKFLOW_ID, write_workflows  # the sibling benchmark script
from sqlalchemy import Engine, create_engine

from panoptes_sync.aggregate import aggregate_store, stored_vote_table
from panoptes_sync.backfill import backfill_export, backfill_workflow_versions
from panoptes_sync.store import get_vote_counts, session_scope, upgrade_database
from zoobot.schemas import decals_dr5_schema

try:  # the code after the session-5 refactor
    from panoptes_sync.aggregate import aggregate_export_files
except ImportError:  # the code before it
    from panoptes_sync.exports import aggregate_export_files  # type: ignore[no-redef]

#: (name, first_only, schema) of each aggregation compared.
VARIANTS = (
    ("plain", False, None),
    ("first_only", True, None),
    ("schema", False, decals_dr5_schema),
)


def build_store(export: Path, rows: int, store: Path) -> None:
    """A SQLite store holding the first ``rows`` classifications of ``export`` and its versions."""
    with tempfile.TemporaryDirectory() as tmp:
        head = Path(tmp) / "head.csv"
        with export.open() as source, head.open("w") as target:
            target.writelines(itertools.islice(source, rows + 1))
        engine = upgrade_database(f"sqlite:///{store}")
        backfill_workflow_versions(engine, write_workflows_to(Path(tmp) / "w.csv"))
        backfill_export(engine, head)
        engine.dispose()


def write_workflows_to(path: Path) -> Path:
    write_workflows(path)
    return path


def run(export: Path, store: Path, out: Path, batch_size: int) -> None:
    """Write every variant's table and report under ``out``, plus ``timings.json``."""
    out.mkdir(parents=True, exist_ok=True)
    workflows = write_workflows_to(out / "workflows.csv")
    timings = {}
    for name, first_only, schema in VARIANTS:
        start = time.perf_counter()
        table, report = aggregate_export_files(
            export, workflows, WORKFLOW_ID, schema=schema, first_only=first_only
        )
        timings[f"export_{name}"] = time.perf_counter() - start
        table.to_csv(out / f"export_{name}.csv", index=False)
        summary = {k: v for k, v in report.to_dict().items() if k in ("votes", "issues")}
        (out / f"export_{name}_report.json").write_text(json.dumps(summary, sort_keys=True))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "store.sqlite3"
        shutil.copy(store, copy)
        engine = create_engine(f"sqlite:///{copy}")
        for name, first_only, schema in VARIANTS:
            start = time.perf_counter()
            report = aggregate_store(
                engine, WORKFLOW_ID, schema, name, first_only=first_only, batch_size=batch_size
            )
            timings[f"store_{name}"] = time.perf_counter() - start
            columns = schema.label_cols if schema is not None else _stored_columns(engine, name)
            table = stored_vote_table(engine, name, columns, schema)
            table.to_csv(out / f"store_{name}.csv", index=False)
            summary = {k: v for k, v in report.to_dict().items() if k in ("votes", "issues")}
            (out / f"store_{name}_report.json").write_text(json.dumps(summary, sort_keys=True))
        engine.dispose()
    (out / "timings.json").write_text(json.dumps(timings, indent=1))
    print(json.dumps(timings, indent=1))


def _stored_columns(engine: Engine, name: str) -> list[str]:
    with session_scope(engine) as session:
        return sorted(set(get_vote_counts(session, name)["label_col"]))


def compare(first: Path, second: Path) -> bool:
    """Whether every table and report of two runs is byte-identical (prints each file)."""
    names = sorted(p.name for p in first.glob("*.csv") if p.name != "workflows.csv")
    names += sorted(p.name for p in first.glob("*_report.json"))
    same = True
    for name in names:
        equal = filecmp.cmp(first / name, second / name, shallow=False)
        same &= equal
        print(f"{name}: {'identical' if equal else 'DIFFERENT'}")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build-store")
    build.add_argument("--export", type=Path, required=True)
    build.add_argument("--rows", type=int, default=200_000)
    build.add_argument("--store", type=Path, required=True)
    runner = commands.add_parser("run")
    runner.add_argument("--export", type=Path, required=True)
    runner.add_argument("--store", type=Path, required=True)
    runner.add_argument("--out", type=Path, required=True)
    runner.add_argument("--batch-size", type=int, default=20_000)
    comparer = commands.add_parser("compare")
    comparer.add_argument("first", type=Path)
    comparer.add_argument("second", type=Path)
    args = parser.parse_args()
    if args.command == "build-store":
        build_store(args.export, args.rows, args.store)
    elif args.command == "run":
        run(args.export, args.store, args.out, args.batch_size)
    else:
        sys.exit(0 if compare(args.first, args.second) else 1)


if __name__ == "__main__":
    main()

"""Benchmark vote aggregation: classifications/s from a Panoptes export CSV to per-subject counts.

Generates a seeded GZ DECaLS export (the real 14-column format, answer labels, ``task_label``),
aggregates it with ``panoptes_sync.aggregate.aggregate_export_files`` and, in the same run, a subset
with ``panoptes_aggregation`` (``config`` + ``extract`` + ``reduce -F all`` CLIs) installed in its
own venv; checks that both give identical counts on that subset and prints markdown.

Usage::

    python -m venv /tmp/pa-venv && /tmp/pa-venv/bin/pip install panoptes_aggregation
    python benchmarks/aggregate.py --classifications 10000000 --subjects 200000 --subset 2000 \
        --panoptes-aggregation-python /tmp/pa-venv/bin/python --export /tmp/export-10m.csv

``--export`` keeps the generated CSV (6.6 GB at 10 M rows, 1-1.5 min to write) for the next
run; without it the CSV goes to a temporary directory and is deleted.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from panoptes_sync.aggregate import aggregate_export_files
from panoptes_sync.exports import EXPORT_COLUMNS
from zoobot.schemas import decals_dr5_workflow

WORKFLOW_ID = 6122
VERSION = ("66", "1")


def _walk(rng: random.Random, tasks: dict) -> list[dict]:
    """One random path through the tree, as label-format export annotations."""
    annotations, key = [], "T0"
    while key:
        task = tasks[key]
        labels = [a["label"] for a in task["answers"]]
        if task["type"] == "multiple":
            value = [labels[i] for i in sorted(rng.sample(range(len(labels)), rng.randint(0, 2)))]
            following = task.get("next")
        else:
            index = rng.randrange(len(labels))
            value = labels[index]
            following = task["answers"][index].get("next")
        annotations.append({"task": key, "task_label": task["question"], "value": value})
        key = following
    return annotations


def write_workflows(path: Path) -> None:
    header = (
        "workflow_id,display_name,version,minor_version,active,classifications_count,pairwise,"
        "grouped,prioritized,primary_language,first_task,tutorial_subject_id,"
        "retired_set_member_subjects_count,tasks,retirement,aggregation,strings"
    ).split(",")
    row = dict.fromkeys(header, "")
    row.update(
        workflow_id=WORKFLOW_ID,
        display_name="DECaLS DR5",
        version=VERSION[0],
        minor_version=VERSION[1],
        active="true",
        first_task="T0",
        tasks=json.dumps(decals_dr5_workflow["tasks"]),
        retirement="{}",
        aggregation="{}",
        strings="{}",
    )
    pd.DataFrame([row], columns=header).to_csv(path, index=False)


def _export_chunk(
    generator: np.random.Generator, pool: pa.Array, first_id: int, n: int, n_subjects: int
) -> pa.Table:
    """``n`` export rows with ids from ``first_id``, annotations drawn from ``pool``."""
    subjects = pa.array(generator.integers(10_000_000, 10_000_000 + n_subjects, n).astype(str))
    users = generator.integers(1, 50_000, n)
    user_ids = pa.array(users.astype(str))
    columns = {
        "classification_id": pa.array((first_id + np.arange(n)).astype(str)),
        "user_name": pc.binary_join_element_wise("volunteer", user_ids, ""),
        "user_id": user_ids,
        "user_ip": pa.array(np.char.mod("%020x", users)),
        "workflow_id": pa.array(np.full(n, str(WORKFLOW_ID))),
        "workflow_name": pa.array(np.full(n, "DECaLS DR5")),
        "workflow_version": pa.array(np.full(n, ".".join(VERSION))),
        "created_at": pa.array(np.full(n, "2019-03-29 18:38:10 UTC")),
        "gold_standard": pa.array(np.full(n, "")),
        "expert": pa.array(np.full(n, "")),
        "metadata": pa.array(np.full(n, '{"source":"api","user_language":"en"}')),
        "annotations": pool.take(pa.array(generator.integers(0, len(pool), n))),
        "subject_data": pc.binary_join_element_wise('{"', subjects, '":{"retired":null}}', ""),
        "subject_ids": subjects,
    }
    return pa.table({name: columns[name] for name in EXPORT_COLUMNS})


def write_export(path: Path, n: int, n_subjects: int, seed: int, chunk: int = 500_000) -> None:
    """A seeded export: each row's annotations drawn from a pool of random tree walks.

    The 5,000 walks hold about 1,270 distinct annotation texts (the aggregation resolves each
    distinct text once). Written ``chunk`` rows at a time, so a 10 M-row (6.6 GB) file needs
    little memory.
    """
    rng = random.Random(seed)
    tasks = copy.deepcopy(decals_dr5_workflow["tasks"])
    pool = pa.array([json.dumps(_walk(rng, tasks), separators=(",", ":")) for _ in range(5000)])
    generator = np.random.default_rng(seed)
    options = pa_csv.WriteOptions(quoting_style="needed")
    writer = None
    for start in range(0, n, chunk):
        table = _export_chunk(
            generator, pool, 150_000_000 + start, min(chunk, n - start), n_subjects
        )
        writer = writer or pa_csv.CSVWriter(path, table.schema, write_options=options)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def reuse_or_write_export(path: Path, n: int, n_subjects: int, seed: int) -> bool:
    """Write the export at ``path`` unless one made with the same arguments is there.

    A sidecar ``<path>.json`` records the arguments. Returns True if the file was reused.
    """
    recipe = {"classifications": n, "subjects": n_subjects, "seed": seed, "format": 2}
    sidecar = path.with_name(path.name + ".json")
    if path.is_file() and sidecar.is_file() and json.loads(sidecar.read_text()) == recipe:
        return True
    sidecar.unlink(missing_ok=True)
    write_export(path, n, n_subjects, seed)
    sidecar.write_text(json.dumps(recipe))
    return False


def run_panoptes_aggregation(python: str, export: Path, workflows: Path, work: Path) -> float:
    """Seconds for panoptes_aggregation's config + extract + reduce (``-F all``) over ``export``."""
    cli = str(Path(python).parent / "panoptes_aggregation")
    version = ".".join(VERSION)
    steps = [
        ["config", str(workflows), str(WORKFLOW_ID), "-v", version, "-d", str(work)],
        [
            "extract",
            str(export),
            str(work / f"Extractor_config_workflow_{WORKFLOW_ID}_V{version}.yaml"),
            "-o",
            "bench",
            "-d",
            str(work),
            "-hb",
        ],
        [
            "reduce",
            str(work / "question_extractor_bench.csv"),
            str(work / f"Reducer_config_workflow_{WORKFLOW_ID}_V{version}_question_extractor.yaml"),
            "-F",
            "all",
            "-o",
            "bench",
            "-d",
            str(work),
            "-hb",
        ],
    ]
    start = time.perf_counter()
    for step in steps:
        subprocess.run([cli, *step], check=True, capture_output=True)
    return time.perf_counter() - start


def _alnum(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", re.sub(r"^data\.", "", text.lower()))


def panoptes_aggregation_counts(work: Path) -> dict[tuple[int, str, str], int]:
    """(subject, task, answer) -> count from panoptes_aggregation's reduced CSV."""
    reduced = pd.read_csv(work / "question_reducer_bench.csv")
    counts = {}
    for row in reduced.to_dict("records"):
        for column, value in row.items():
            if column == "data.aggregation_version" or not column.startswith("data."):
                continue
            if pd.notna(value) and value:
                counts[(int(row["subject_id"]), row["task"], _alnum(column))] = int(value)
    return counts


def our_counts(table: pd.DataFrame) -> dict[tuple[int, str, str], int]:
    """The same keys from our ``<task>_<index>`` table, answers named by their labels."""
    counts = {}
    for column in table.columns[1:]:
        task, index = column.rsplit("_", 1)
        label = _alnum(decals_dr5_workflow["tasks"][task]["answers"][int(index)]["label"])
        for subject, value in zip(table["subject_id"], table[column], strict=True):
            if value:
                counts[(int(subject), task, label)] = int(value)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifications", type=int, default=1_000_000)
    parser.add_argument("--subjects", type=int, default=100_000)
    parser.add_argument("--subset", type=int, default=2_000, help="rows panoptes_aggregation runs")
    parser.add_argument("--panoptes-aggregation-python", help="python of a venv with it installed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--export",
        type=Path,
        help="keep the generated export here and reuse it when made with the same arguments "
        "(default: a temporary file, deleted at the end)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        export = args.export or work / "export.csv"
        subset, workflows = work / "subset.csv", work / "workflows.csv"
        write_workflows(workflows)
        start = time.perf_counter()
        reused = reuse_or_write_export(export, args.classifications, args.subjects, args.seed)
        generated = "reused" if reused else f"generated in {time.perf_counter() - start:.1f} s"
        write_export(subset, args.subset, max(args.subset // 10, 1), args.seed + 1)

        start = time.perf_counter()
        table, report = aggregate_export_files(export, workflows, WORKFLOW_ID)
        ours_s = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        subset_table, _ = aggregate_export_files(subset, workflows, WORKFLOW_ID)
        ours_subset_s = time.perf_counter() - start
        size_mb = export.stat().st_size / 1e6
        rate = args.classifications / ours_s
        print("## Vote aggregation benchmark\n")
        print(
            f"export: {args.classifications:,} classifications, {args.subjects:,} subjects, "
            f"{size_mb:,.0f} MB CSV ({generated}); load average {os.getloadavg()[0]:.2f}\n"
        )
        print("| tool | classifications | seconds | classifications/s |")
        print("|---|---:|---:|---:|")
        print(f"| panoptes_sync | {args.classifications:,} | {ours_s:.2f} | {rate:,.0f} |")
        print(
            f"| panoptes_sync (subset) | {args.subset:,} | {ours_subset_s:.2f} | "
            f"{args.subset / ours_subset_s:,.0f} |"
        )
        if (
            not args.panoptes_aggregation_python
            or not Path(args.panoptes_aggregation_python).exists()
        ):
            print(
                "\npanoptes_aggregation skipped: pass --panoptes-aggregation-python PATH "
                "(python of a venv with panoptes_aggregation installed)"
            )
        else:
            pa_s = run_panoptes_aggregation(
                args.panoptes_aggregation_python, subset, workflows, work
            )
            pa_rate = args.subset / pa_s
            print(
                f"| panoptes_aggregation (subset) | {args.subset:,} | {pa_s:.2f} | {pa_rate:,.0f} |"
            )
            same = panoptes_aggregation_counts(work) == our_counts(subset_table)
            print(f"\nidentical counts on the subset: **{same}**")
            print(
                f"speed-up (full-run rate / panoptes_aggregation rate): **{rate / pa_rate:,.0f}x**"
            )
        print(f"\npeak memory (max RSS) after the full run: {peak_mb:,.0f} MB")
        print(f"votes counted: {report.votes:,}; problems: {report.problems or 'none'}")


if __name__ == "__main__":
    main()

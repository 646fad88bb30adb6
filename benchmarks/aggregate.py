"""Benchmark vote aggregation: classifications/s from a Panoptes export CSV to per-subject counts.

Generates a seeded GZ DECaLS export (the real 14-column format, answer labels, ``task_label``),
aggregates it with ``panoptes_sync.exports.aggregate_export_files`` and, in the same run, a subset
with ``panoptes_aggregation`` (``config`` + ``extract`` + ``reduce -F all`` CLIs) installed in its
own venv; checks that both give identical counts on that subset and prints markdown.

Usage::

    python -m venv /tmp/pa-venv && /tmp/pa-venv/bin/pip install panoptes_aggregation
    python benchmarks/aggregate.py --classifications 1000000 --subset 2000 \
        --panoptes-aggregation-python /tmp/pa-venv/bin/python
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from panoptes_sync.exports import EXPORT_COLUMNS, aggregate_export_files
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


def write_export(path: Path, n: int, n_subjects: int, seed: int) -> None:
    """A seeded export: each row's annotations drawn from a pool of random tree walks."""
    rng = random.Random(seed)
    tasks = copy.deepcopy(decals_dr5_workflow["tasks"])
    pool = pa.array([json.dumps(_walk(rng, tasks), separators=(",", ":")) for _ in range(5000)])
    generator = np.random.default_rng(seed)
    subjects = pa.array(generator.integers(10_000_000, 10_000_000 + n_subjects, n).astype(str))
    users = generator.integers(1, 50_000, n)
    user_ids = pa.array(users.astype(str))
    columns = {
        "classification_id": pa.array((150_000_000 + np.arange(n)).astype(str)),
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
    table = pa.table({name: columns[name] for name in EXPORT_COLUMNS})
    pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="needed"))


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        export, subset, workflows = work / "export.csv", work / "subset.csv", work / "workflows.csv"
        write_workflows(workflows)
        start = time.perf_counter()
        write_export(export, args.classifications, args.subjects, args.seed)
        generated_s = time.perf_counter() - start
        write_export(subset, args.subset, max(args.subset // 10, 1), args.seed + 1)

        start = time.perf_counter()
        table, report = aggregate_export_files(export, workflows, WORKFLOW_ID)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        subset_table, _ = aggregate_export_files(subset, workflows, WORKFLOW_ID)
        ours_subset_s = time.perf_counter() - start
        size_mb = export.stat().st_size / 1e6
        rate = args.classifications / ours_s
        print("## Vote aggregation benchmark\n")
        print(
            f"export: {args.classifications:,} classifications, {args.subjects:,} subjects, "
            f"{size_mb:,.0f} MB CSV (generated in {generated_s:.1f} s)\n"
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
        print(
            f"\nextrapolated time for 10 M classifications at this rate: "
            f"{10_000_000 / rate:,.0f} s (linear; measured at {args.classifications:,})"
        )
        print(f"votes counted: {report.votes:,}; problems: {report.problems or 'none'}")


if __name__ == "__main__":
    main()

"""Benchmark panoptes_sync against the local emulator: sync throughput and push request counts.

Prints markdown. Two comparisons, each against baselines run in the same process:

1. Classifications synced per second: ours (`sync_classifications`: one transaction per page,
   subjects fetched in batches, everything stored) vs a naive sync written on the stock client
   (its paginator, ``Subject.find`` per new subject, the same store writes), plus the stock
   paginator alone (in memory, nothing stored) as an upper bound.
2. HTTP requests per pushed subject: ours (`plan_push` + `execute_push`) vs the client's own
   path (``Subject.save`` per subject, ``SubjectSet.add``, ``Workflow.add_subject_sets``).

Usage: ``python benchmarks/sync.py [--classifications 3000] [--subjects 100]``
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from panoptes_client import Classification, Panoptes, Subject, SubjectSet, Workflow
from PIL import Image

from panoptes_sync.client import PanoptesCredentials, connect_panoptes
from panoptes_sync.emulator import EmulatorSettings, serve_emulator
from panoptes_sync.push import PushItem, execute_push, plan_push
from panoptes_sync.retry import CountingTimeoutAdapter
from panoptes_sync.store import (
    create_engine_for_url,
    insert_classifications,
    session_scope,
    upgrade_database,
    upsert_subjects,
)
from panoptes_sync.sync import classification_row, subject_row, sync_classifications

CREDENTIALS = PanoptesCredentials(username="owner", password="secret")


def stock_client(endpoint: str) -> tuple[Panoptes, CountingTimeoutAdapter]:
    client = Panoptes(endpoint=endpoint, username="owner", password="secret")
    adapter = CountingTimeoutAdapter(timeout_s=60.0)
    client.session.mount("http://", adapter)
    return client, adapter


def naive_sync(client: Panoptes, url: str, project_id: int) -> int:
    """A sync written directly on the stock client: its paginator, Subject.find per subject."""
    engine = create_engine_for_url(url)
    upgrade_database(engine)
    seen: set[str] = set()
    rows: list[dict] = []
    subjects: list[dict] = []
    stored = 0
    with client:
        pages = Classification.where(
            scope="project", project_id=project_id, last_id=0, page_size=100
        )
        for classification in pages:
            rows.append(classification_row(classification.raw))
            for subject_id in classification.raw["links"]["subjects"]:
                if subject_id not in seen:
                    seen.add(subject_id)
                    subjects.append(subject_row(Subject.find(subject_id).raw))
            if len(rows) == 100:
                with session_scope(engine) as session:
                    upsert_subjects(session, subjects)
                    stored += insert_classifications(session, rows)
                rows, subjects = [], []
    with session_scope(engine) as session:
        upsert_subjects(session, subjects)
        stored += insert_classifications(session, rows)
    return stored


def bench_sync(
    folder: Path, classifications: int, repeats: int = 2
) -> list[tuple[str, float, int, int]]:
    """Time each path ``repeats`` times in rotated order (fresh store each time); keep the best."""
    settings = EmulatorSettings(
        state_path=folder / "emu-sync.sqlite3",
        subjects=200,
        classifications=classifications,
        seed=0,
    )
    best: dict[str, tuple[float, int, int]] = {}
    with serve_emulator(settings) as emu:

        def ours(run: int) -> tuple[int, int]:
            engine = create_engine_for_url(f"sqlite:///{folder / f'ours{run}.sqlite3'}")
            upgrade_database(engine)
            client = connect_panoptes(emu.endpoint, CREDENTIALS, rng=random.Random(0))
            report = sync_classifications(client, engine, emu.project_id)
            return report.new_classifications, report.requests

        def naive(run: int) -> tuple[int, int]:
            client, adapter = stock_client(emu.endpoint)
            url = f"sqlite:///{folder / f'naive{run}.sqlite3'}"
            return naive_sync(client, url, emu.project_id), adapter.request_count

        def in_memory(run: int) -> tuple[int, int]:
            client, adapter = stock_client(emu.endpoint)
            with client:
                rows = list(
                    Classification.where(
                        scope="project", project_id=emu.project_id, last_id=0, page_size=100
                    )
                )
            return len(rows), adapter.request_count

        paths = [
            ("ours: sync_classifications (stored, subjects + versions)", ours),
            ("naive stock client: paginator + Subject.find each (stored)", naive),
            ("stock paginator alone, in memory, nothing stored (upper bound)", in_memory),
        ]
        for run in range(repeats):
            for label, path in paths[run % 3 :] + paths[: run % 3]:
                started = time.perf_counter()
                count, requests = path(run)
                seconds = time.perf_counter() - started
                if label not in best or seconds < best[label][0]:
                    best[label] = (seconds, count, requests)
    return [(label, *best[label]) for label, _ in paths]


def write_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"g{index}.png"
        Image.new("RGB", (16, 16), (index % 255, 80, 160)).save(path)
        paths.append(path)
    return paths


def bench_push(folder: Path, subjects: int) -> list[tuple[str, int, int, int]]:
    images = write_images(folder / "images", subjects)
    settings = EmulatorSettings(
        state_path=folder / "emu-push.sqlite3",
        subjects=10,
        classifications=10,
        seed=0,
        subject_upload_limit=100_000,
    )
    rows = []
    with serve_emulator(settings) as emu:
        engine = create_engine_for_url(f"sqlite:///{folder / 'push.sqlite3'}")
        upgrade_database(engine)
        ours = connect_panoptes(emu.endpoint, CREDENTIALS, rng=random.Random(0))
        ours.get(f"/projects/{emu.project_id}")
        for label, items in (
            (
                "ours: local images (POST + blob PUT each)",
                [PushItem(priority=i, image_path=str(p)) for i, p in enumerate(images)],
            ),
            (
                "ours: hosted image URLs (no upload)",
                [
                    PushItem(priority=i, image_url=f"{emu.endpoint}/x/{i}.png")
                    for i in range(subjects)
                ],
            ),
        ):
            plan = plan_push(
                items,
                emu.project_id,
                emu.workflow_id,
                max_subjects=subjects,
                image_roots=[images[0].parent],
            )
            report = execute_push(ours, engine, plan)
            uploads = subjects if "local" in label else 0
            rows.append((label, report.subjects, report.requests - uploads, report.requests))

        stock, adapter = stock_client(emu.endpoint)
        with stock:
            Workflow.find(emu.workflow_id)
            before = adapter.request_count
            subject_set = SubjectSet()
            subject_set.links.project = emu.project_id
            subject_set.display_name = "stock client batch"
            subject_set.save()
            created = []
            for index, path in enumerate(images):
                subject = Subject()
                subject.links.project = emu.project_id
                subject.add_location(str(path))
                subject.metadata.update({"#priority": index})
                subject.save()
                created.append(subject)
            subject_set.add(created)
            Workflow(emu.workflow_id).add_subject_sets(subject_set)
            api_requests = adapter.request_count - before
        rows.append(
            (
                "stock: Subject.save + SubjectSet.add + add_subject_sets",
                subjects,
                api_requests,
                api_requests + subjects,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classifications", type=int, default=3000)
    parser.add_argument("--subjects", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sync_rows = bench_sync(Path(tmp), args.classifications)
        push_rows = bench_push(Path(tmp), args.subjects)
    print("### Sync throughput (local emulator, SQLite store)\n")
    print("| path | classifications | seconds | classifications/s | HTTP requests |")
    print("|---|---:|---:|---:|---:|")
    for label, seconds, count, requests in sync_rows:
        print(f"| {label} | {count} | {seconds:.2f} | {count / seconds:.0f} | {requests} |")
    rates = [count / seconds for _, seconds, count, _ in sync_rows]
    print(f"\nours / naive stock-client sync throughput: {rates[0] / rates[1]:.2f}x")
    print(f"ours / in-memory stock paginator: {rates[0] / rates[2]:.2f}x\n")
    print("### HTTP requests per pushed subject\n")
    print("| path | subjects | API requests / subject | all requests (uploads incl.) / subject |")
    print("|---|---:|---:|---:|")
    for label, count, api_requests, all_requests in push_rows:
        print(f"| {label} | {count} | {api_requests / count:.3f} | {all_requests / count:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

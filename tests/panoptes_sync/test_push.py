"""Pushes against the real emulator over HTTP, journalled in a real store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine, text

from panoptes_sync.cli import main
from panoptes_sync.client import PanoptesCredentials, connect_panoptes
from panoptes_sync.emulator import EmulatorSettings, FaultRule, serve_emulator
from panoptes_sync.errors import PushError
from panoptes_sync.push import PushItem, execute_push, plan_push, read_ranked_list
from panoptes_sync.retry import RetryPolicy
from panoptes_sync.store import (
    create_engine_for_url,
    list_pushes,
    session_scope,
    update_push,
    upgrade_database,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def no_sleep(seconds: float) -> None:
    """Retries wait on a fake clock."""


def connect(endpoint: str) -> Any:
    return connect_panoptes(
        endpoint,
        PanoptesCredentials(username="owner", password="secret"),
        policy=RetryPolicy(max_attempts=8, base_delay_s=0.01, timeout_s=10.0),
        sleep=no_sleep,
        rng=random.Random(0),
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for_url(database_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


def emulator_settings(tmp_path: Path, **overrides: Any) -> EmulatorSettings:
    values: dict[str, Any] = {
        "state_path": tmp_path / "emu.sqlite3",
        "subjects": 12,
        "classifications": 20,
        "seed": 5,
        "subject_upload_limit": 1000,
    }
    return EmulatorSettings(**{**values, **overrides})


def write_images(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"galaxy_{index}.png"
        Image.new("RGB", (8, 8), (index * 20 % 255, 40, 90)).save(path)
        paths.append(path)
    return paths


def all_pages(client: Any, path: str, slug: str, **params: Any) -> list[dict[str, Any]]:
    found, page = [], 1
    while True:
        body, _ = client.get(path, params={**params, "page": page, "page_size": 100})
        rows = body.get(slug, [])
        found.extend(rows)
        if not rows or not body.get("meta", {}).get(slug, {}).get("next_href"):
            return found
        page += 1


def project_subjects(client: Any, project_id: int) -> list[dict[str, Any]]:
    return all_pages(client, "/subjects", "subjects", project_id=project_id)


def set_members(client: Any, subject_set_id: int) -> dict[int, float | None]:
    members = all_pages(
        client, "/set_member_subjects", "set_member_subjects", subject_set_id=subject_set_id
    )
    return {int(m["links"]["subject"]): m["priority"] for m in members}


def push_rows(engine: Engine, batch_id: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT action, status, dry_run, request_count, subject_id FROM pushes "
                "WHERE batch_id = :b ORDER BY id"
            ),
            {"b": batch_id},
        )
        return [dict(r._mapping) for r in rows]


def test_dry_run_writes_nothing_to_zooniverse(tmp_path: Path, store: Engine) -> None:
    images = write_images(tmp_path / "images", 3)
    with serve_emulator(emulator_settings(tmp_path)) as emu:
        client = connect(emu.endpoint)
        before_subjects = project_subjects(client, emu.project_id)
        before_sets = all_pages(client, "/subject_sets", "subject_sets", project_id=emu.project_id)
        items = [PushItem(priority=i, image_path=str(p)) for i, p in enumerate(images)]
        items.append(PushItem(priority=9.0, subject_id=int(before_subjects[0]["id"])))
        plan = plan_push(items, emu.project_id, emu.workflow_id, image_roots=[tmp_path])
        requests_before = client.request_count
        report = execute_push(client, store, plan, dry_run=True)
        sent = client.request_count - requests_before
        after_subjects = project_subjects(client, emu.project_id)
        after_sets = all_pages(client, "/subject_sets", "subject_sets", project_id=emu.project_id)
    assert sent == 0
    assert report.dry_run and report.requests == 0
    assert len(after_subjects) == len(before_subjects)
    assert len(after_sets) == len(before_sets)
    rows = push_rows(store, plan.batch_id)
    assert len(rows) == len(plan.actions)
    assert all(r["status"] == "planned" and r["dry_run"] for r in rows)
    assert json.dumps(plan.to_dict())


def test_push_new_set_creates_links_and_prioritises_as_planned(
    tmp_path: Path, store: Engine
) -> None:
    images = write_images(tmp_path / "images", 4)
    with serve_emulator(emulator_settings(tmp_path)) as emu:
        client = connect(emu.endpoint)
        existing = [int(s["id"]) for s in project_subjects(client, emu.project_id)[:2]]
        items = [PushItem(priority=0.1 * i, image_path=str(p)) for i, p in enumerate(images)]
        items += [PushItem(priority=5.0 + i, subject_id=s) for i, s in enumerate(existing)]
        plan = plan_push(
            items,
            emu.project_id,
            emu.workflow_id,
            retire_subject_ids=[existing[0]],
            image_roots=[tmp_path],
        )
        report = execute_push(client, store, plan)
        members = set_members(client, report.subject_set_id)
        workflow, _ = client.get(f"/workflows/{emu.workflow_id}")
        created = [
            s
            for s in project_subjects(client, emu.project_id)
            if (s["metadata"] or {}).get("#push_key", "").startswith(plan.batch_id)
        ]
        image_url = next(iter(created[0]["locations"][0].values()))
        image_bytes = client.session.get(image_url).content
        statuses = all_pages(
            client,
            "/subject_workflow_statuses",
            "subject_workflow_statuses",
            subject_ids=str(existing[0]),
            workflow_id=emu.workflow_id,
        )
    assert report.created == 4
    assert len(created) == 4
    created_priority = {int(s["id"]): s["metadata"]["#priority"] for s in created}
    expected = {**created_priority, existing[0]: 5.0, existing[1]: 6.0}
    assert members == pytest.approx(expected)
    assert str(report.subject_set_id) in [
        str(s) for s in workflow["workflows"][0]["links"]["subject_sets"]
    ]
    assert (
        image_bytes == images[int(created[0]["metadata"]["#push_key"].split(":")[1])].read_bytes()
    )
    assert statuses and statuses[0]["retired_at"] is not None
    rows = push_rows(store, plan.batch_id)
    assert {r["status"] for r in rows} == {"done"}
    assert sum(r["request_count"] for r in rows) <= report.requests
    again = execute_push(client, store, plan)
    assert again.created == 0 and again.skipped_done == len(plan.actions)
    assert again.requests == 0


def test_reprioritise_existing_members(tmp_path: Path, store: Engine) -> None:
    images = write_images(tmp_path / "images", 3)
    with serve_emulator(emulator_settings(tmp_path)) as emu:
        client = connect(emu.endpoint)
        items = [PushItem(priority=float(i), image_path=str(p)) for i, p in enumerate(images)]
        first = execute_push(
            client, store, plan_push(items, emu.project_id, emu.workflow_id, image_roots=[tmp_path])
        )
        members = set_members(client, first.subject_set_id)
        new_priorities = {sid: 100.0 - index for index, sid in enumerate(sorted(members))}
        plan = plan_push(
            [PushItem(priority=p, subject_id=s) for s, p in new_priorities.items()],
            emu.project_id,
            emu.workflow_id,
            mode="reprioritise",
            subject_set_id=first.subject_set_id,
        )
        report = execute_push(client, store, plan)
        after = set_members(client, first.subject_set_id)
    assert after == pytest.approx(new_priorities)
    assert report.subjects == 3


def test_plan_validation_and_cap(tmp_path: Path) -> None:
    with pytest.raises(PushError):
        plan_push([], 1, 2)
    with pytest.raises(PushError):
        plan_push([PushItem(priority=1.0)], 1, 2)
    with pytest.raises(PushError):
        plan_push([PushItem(priority=1.0, subject_id=3)], 1, 2, mode="reprioritise")
    items = [PushItem(priority=float(i), image_url=f"https://x/{i}.png") for i in range(10)]
    plan = plan_push(items, 1, 2, max_subjects=4)
    assert plan.subjects == 4 and plan.dropped == 6
    assert sum(a.action == "create_subject" for a in plan.actions) == 4
    assert plan.batch_id == plan_push(items, 1, 2, max_subjects=4).batch_id


def test_requests_per_pushed_subject_is_at_most_1_05(tmp_path: Path, store: Engine) -> None:
    with serve_emulator(emulator_settings(tmp_path)) as emu:
        client = connect(emu.endpoint)
        client.get(f"/projects/{emu.project_id}")  # token fetched outside the measurement
        items = [
            PushItem(priority=i / 100, image_url=f"{emu.endpoint}/static/{i}.png")
            for i in range(100)
        ]
        report = execute_push(client, store, plan_push(items, emu.project_id, emu.workflow_id))
    assert report.subjects == 100
    assert report.requests_per_subject <= 1.05


def done_rows(engine: Engine) -> int:
    with engine.connect() as connection:
        query = text("SELECT COUNT(*) FROM pushes WHERE status = 'done' AND NOT dry_run")
        return int(connection.execute(query).scalar_one())


def wait_for_done_rows(process: subprocess.Popen[Any], engine: Engine, start: int) -> None:
    """Block until the subprocess has finished an action (so the kill lands mid-push)."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if done_rows(engine) > start:
            return
        time.sleep(0.05)


PUSH_SCRIPT = """
import random, sys
from panoptes_sync.client import PanoptesCredentials, RetryPolicy, connect_panoptes
from panoptes_sync.push import PushItem, execute_push, plan_push, read_ranked_list
from panoptes_sync.store import (
    create_engine_for_url,
    list_pushes,
    session_scope,
    update_push,
    upgrade_database,
)
endpoint, url, project_id, workflow_id, folder = sys.argv[1:6]
engine = create_engine_for_url(url)
upgrade_database(engine)
client = connect_panoptes(endpoint, PanoptesCredentials("owner", "secret"),
                          policy=RetryPolicy(base_delay_s=0.01), rng=random.Random(0))
paths = sorted(__import__("pathlib").Path(folder).glob("*.png"))
items = [PushItem(priority=i / 10, image_path=str(p)) for i, p in enumerate(paths)]
plan = plan_push(items, int(project_id), int(workflow_id), image_roots=[folder])
execute_push(client, engine, plan)
print("finished", plan.batch_id)
"""


def test_push_killed_midway_and_rerun_makes_no_duplicates(
    tmp_path: Path, store: Engine, database_url: str
) -> None:
    images = write_images(tmp_path / "images", 25)
    settings = emulator_settings(
        tmp_path, faults=[FaultRule(route="*", kind="latency", rate=1.0, latency_s=0.03)]
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    rng = random.Random(7)
    with serve_emulator(settings) as emu:
        command = [
            sys.executable,
            "-c",
            PUSH_SCRIPT,
            emu.endpoint,
            database_url,
            str(emu.project_id),
            str(emu.workflow_id),
            str(tmp_path / "images"),
        ]
        progress: list[int] = []
        for _ in range(3):
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            wait_for_done_rows(process, store, done_rows(store))
            time.sleep(rng.uniform(0.0, 0.5))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            progress.append(done_rows(store))
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        assert "finished" in final.stdout, final.stderr[-2000:]
        batch_id = final.stdout.split()[-1]
        client = connect(emu.endpoint)
        created = [
            s
            for s in project_subjects(client, emu.project_id)
            if (s["metadata"] or {}).get("#push_key", "").startswith(batch_id)
        ]
        sets = [
            s
            for s in all_pages(client, "/subject_sets", "subject_sets", project_id=emu.project_id)
            if (s.get("metadata") or {}).get("push_batch") == batch_id
        ]
        members = set_members(client, int(sets[0]["id"]))
    total = len(images) + 3  # creates, the set, one link, the workflow link
    assert any(0 < n < total for n in progress), f"no kill landed mid-push: {progress}"
    keys = [s["metadata"]["#push_key"] for s in created]
    assert len(keys) == len(set(keys)) == len(images)
    assert len(sets) == 1
    assert set(members) == {int(s["id"]) for s in created}


def test_crash_between_create_and_journal_recovers_without_duplicate(
    tmp_path: Path, store: Engine
) -> None:
    images = write_images(tmp_path / "images", 3)
    with serve_emulator(emulator_settings(tmp_path)) as emu:
        client = connect(emu.endpoint)
        items = [PushItem(priority=float(i), image_path=str(p)) for i, p in enumerate(images)]
        plan = plan_push(items, emu.project_id, emu.workflow_id, image_roots=[tmp_path])
        first = execute_push(client, store, plan)
        with session_scope(store) as session:
            rows = list_pushes(session, batch_id=plan.batch_id)
            victim = next(r for r in rows if r["action"] == "create_subject")
            lost_id = victim["subject_id"]
            detail = {
                k: v
                for k, v in victim["detail"].items()
                if k not in ("created_subject_id", "upload_url")
            }
            # As if killed after Panoptes created the subject but before the journal said so.
            update_push(
                session,
                victim["id"],
                status="planned",
                subject_id=None,
                detail={**detail, "attempted": True},
            )
            for row in rows:
                if row["action"] in ("link_subjects", "link_subject_set"):
                    update_push(session, row["id"], status="planned")
        second = execute_push(client, store, plan)
        created = [
            s
            for s in project_subjects(client, emu.project_id)
            if (s["metadata"] or {}).get("#push_key", "").startswith(plan.batch_id)
        ]
        recovered = next(s for s in created if int(s["id"]) == lost_id)
        image = client.session.get(next(iter(recovered["locations"][0].values()))).content
        members = set_members(client, first.subject_set_id)
    assert second.created == 1 and len(created) == 3
    assert set(members) == {int(s["id"]) for s in created}
    index = int(recovered["metadata"]["#push_key"].split(":")[1])
    assert image == images[index].read_bytes()
    with session_scope(store) as session:
        after = next(
            r for r in list_pushes(session, batch_id=plan.batch_id) if r["id"] == victim["id"]
        )
    assert after["status"] == "done" and after["subject_id"] == lost_id


def test_read_ranked_list_csv(tmp_path: Path) -> None:
    write_images(tmp_path / "images", 1)
    ranked = tmp_path / "ranked.csv"
    ranked.write_text(
        "priority,subject_id,image_path,iauname\n0.5,,images/galaxy_0.png,J0843\n1.5,42,,\n"
    )
    items = read_ranked_list(ranked)
    assert items[0] == PushItem(
        0.5, None, str(tmp_path / "images/galaxy_0.png"), None, {"iauname": "J0843"}
    )
    assert items[1].subject_id == 42 and items[1].priority == 1.5
    ranked.write_text("priority,subject_id\nhigh,1\n")
    with pytest.raises(PushError, match="ranked.csv:2"):
        read_ranked_list(ranked)


def test_cli_push_dry_run_then_real(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_images(tmp_path / "images", 3)
    ranked = tmp_path / "ranked.csv"
    ranked.write_text(
        "priority,image_path\n" + "".join(f"{i / 10},images/galaxy_{i}.png\n" for i in range(3))
    )
    monkeypatch.setenv("ZOO_PANOPTES_USERNAME", "owner")
    monkeypatch.setenv("ZOO_PANOPTES_PASSWORD", "secret")
    with serve_emulator(emulator_settings(tmp_path)) as emu:
        common = [
            "--endpoint",
            emu.endpoint,
            "--database-url",
            database_url,
            "--project-id",
            str(emu.project_id),
            "--workflow-id",
            str(emu.workflow_id),
            "--ranked-csv",
            str(ranked),
            "--max-subjects",
            "2",
        ]
        client = connect(emu.endpoint)
        before = len(project_subjects(client, emu.project_id))
        assert main(["push", "--dry-run", *common]) == 0
        dry = json.loads(capsys.readouterr().out)
        after_dry = len(project_subjects(client, emu.project_id))
        assert main(["push", *common]) == 0
        real = json.loads(capsys.readouterr().out)
        after_real = len(project_subjects(client, emu.project_id))
    assert dry["dry_run"] and dry["plan"]["subjects"] == 2 and dry["plan"]["dropped_over_cap"] == 1
    assert after_dry == before
    assert real["created"] == 2 and after_real == before + 2
    assert real["requests_per_subject"] > 0


def test_request_cap_stops_push_and_rerun_resumes(tmp_path: Path, store: Engine) -> None:
    with serve_emulator(emulator_settings(tmp_path)) as emu:
        client = connect(emu.endpoint)
        client.get(f"/projects/{emu.project_id}")
        items = [
            PushItem(priority=float(i), image_url=f"{emu.endpoint}/x/{i}.png") for i in range(5)
        ]
        plan = plan_push(items, emu.project_id, emu.workflow_id)
        with pytest.raises(PushError, match="max_requests=3"):
            execute_push(client, store, plan, max_requests=3)
        report = execute_push(client, store, plan)
        created = [
            s
            for s in project_subjects(client, emu.project_id)
            if (s["metadata"] or {}).get("#push_key", "").startswith(plan.batch_id)
        ]
    assert report.created == 3 and report.skipped_done == 3
    assert len(created) == 5


def _push_cli(emu: Any, database_url: str, ranked: Path, *extra: str) -> list[str]:
    return [
        "push",
        "--endpoint",
        emu.endpoint,
        "--database-url",
        database_url,
        "--project-id",
        str(emu.project_id),
        "--workflow-id",
        str(emu.workflow_id),
        "--ranked-csv",
        str(ranked),
        *extra,
    ]


def test_images_outside_the_csv_folder_are_refused_before_any_request(
    tmp_path: Path,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "lists"
    write_images(folder / "images", 1)
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (folder / "images" / "link.png").symlink_to(secret)
    (folder / "images" / "notes.png").write_text("not an image\n")
    escape = "../" * (len(folder.parts) + 2) + str(secret).lstrip("/")
    cases = {
        "escape.csv": (escape, "outside the allowed image roots"),
        "absolute.csv": (str(secret), "outside the allowed image roots"),
        "symlink.csv": ("images/link.png", "outside the allowed image roots"),
        "text.csv": ("images/notes.png", "is not a readable image"),
    }
    monkeypatch.setenv("ZOO_PANOPTES_USERNAME", "owner")
    monkeypatch.setenv("ZOO_PANOPTES_PASSWORD", "secret")
    with serve_emulator(emulator_settings(tmp_path)) as emu:
        before = emu.query("SELECT COUNT(*) AS n FROM subjects")[0]["n"]
        for name, (image, message) in cases.items():
            ranked = folder / name
            ranked.write_text(f"priority,image_path\n0.1,images/galaxy_0.png\n0.2,{image}\n")
            for extra in (["--dry-run"], []):
                assert main(_push_cli(emu, database_url, ranked, *extra)) == 1, name
                err = capsys.readouterr().err
                assert "item 1" in err and message in err, (name, err)
        after = emu.query("SELECT COUNT(*) AS n FROM subjects")[0]["n"]
        outside = tmp_path / "elsewhere"
        write_images(outside, 1)
        ranked = folder / "rooted.csv"
        ranked.write_text(f"priority,image_path\n0.1,{outside / 'galaxy_0.png'}\n")
        assert main(_push_cli(emu, database_url, ranked, "--dry-run")) == 1
        capsys.readouterr()
        rooted = _push_cli(emu, database_url, ranked, "--dry-run", "--image-root", str(outside))
        assert main(rooted) == 0
    assert after == before
    with create_engine_for_url(database_url).connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM pushes")).scalar() == 4


def test_request_cap_is_exact_when_one_action_takes_several_requests(
    tmp_path: Path, store: Engine
) -> None:
    images = write_images(tmp_path / "images", 6)
    with serve_emulator(emulator_settings(tmp_path)) as emu:
        client = connect(emu.endpoint)
        client.get(f"/projects/{emu.project_id}")
        items = [PushItem(priority=float(i), image_path=str(p)) for i, p in enumerate(images)]
        plan = plan_push(items, emu.project_id, emu.workflow_id, image_roots=[tmp_path])
        for cap in (10, 3):
            before = client.request_count
            with pytest.raises(PushError, match=f"max_requests={cap}"):
                execute_push(client, store, plan, max_requests=cap)
            assert client.request_count - before == cap
        report = execute_push(client, store, plan)
        created = [
            s
            for s in project_subjects(client, emu.project_id)
            if (s["metadata"] or {}).get("#push_key", "").startswith(plan.batch_id)
        ]
    assert report.subjects == 6
    assert sorted(s["metadata"]["#push_key"] for s in created) == sorted(
        f"{plan.batch_id}:{i}" for i in range(6)
    )


def test_a_guard_stops_a_push_before_the_next_action_and_a_rerun_resumes(
    tmp_path: Path, store: Engine
) -> None:
    with serve_emulator(emulator_settings(tmp_path)) as emu:
        client = connect(emu.endpoint)
        client.get(f"/projects/{emu.project_id}")
        items = [
            PushItem(priority=float(i), image_url=f"{emu.endpoint}/x/{i}.png") for i in range(4)
        ]
        plan = plan_push(items, emu.project_id, emu.workflow_id)
        calls: list[int] = []

        def guard() -> None:
            calls.append(client.request_count)
            if len(calls) == 3:
                raise KeyboardInterrupt("stop asked")

        with pytest.raises(KeyboardInterrupt):
            execute_push(client, store, plan, guard=guard)
        statuses = [r["status"] for r in push_rows(store, plan.batch_id)]
        report = execute_push(client, store, plan)
    assert statuses[:2] == ["done", "done"] and set(statuses[2:]) == {"planned"}
    assert report.skipped_done == 2 and report.created == 3

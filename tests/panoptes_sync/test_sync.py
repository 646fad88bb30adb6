"""sync_classifications against the real emulator over HTTP, into a real store."""

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
from sqlalchemy import Engine, text

from panoptes_sync.client import PanoptesCredentials, connect_panoptes
from panoptes_sync.emulator import EmulatorSettings, FaultRule, serve_emulator
from panoptes_sync.retry import RetryPolicy
from panoptes_sync.store import create_engine_for_url, upgrade_database
from panoptes_sync.sync import sync_classifications, sync_state_key

REPO_ROOT = Path(__file__).resolve().parents[2]


def no_sleep(seconds: float) -> None:
    """Retries wait on a fake clock: the emulator's faults are the point, not the waiting."""


def connect(endpoint: str, **policy: Any) -> Any:
    settings = {"max_attempts": 8, "base_delay_s": 0.01, "timeout_s": 10.0, **policy}
    return connect_panoptes(
        endpoint,
        PanoptesCredentials(username="owner", password="secret"),
        policy=RetryPolicy(**settings),
        sleep=no_sleep,
        rng=random.Random(0),
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for_url(database_url)
    upgrade_database(engine)
    yield engine
    engine.dispose()


def stored_ids(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return [int(r[0]) for r in connection.execute(text("SELECT id FROM classifications"))]


def test_sync_under_faults_stores_exactly_the_emulators_classifications(
    tmp_path: Path, store: Engine
) -> None:
    faults = [
        FaultRule(route="classifications", status=503, rate=0.1),
        FaultRule(route="classifications", status=429, rate=0.1, retry_after_s=1),
        FaultRule(route="subjects", kind="html", status=502, rate=0.1),
        FaultRule(route="classifications", kind="expire", rate=0.1),
        FaultRule(route="classifications", kind="drop", rate=0.05),
    ]
    settings = EmulatorSettings(
        state_path=tmp_path / "emu.sqlite3", subjects=30, classifications=250, seed=1, faults=faults
    )
    with serve_emulator(settings) as emu:
        client = connect(emu.endpoint)
        report = sync_classifications(client, store, emu.project_id, page_size=20)
        expected = sorted(int(i) for i in emu.classification_ids())
        fired = emu.context.faults.fired
    assert all(count > 0 for count in fired), f"some fault never fired: {fired}"
    ids = stored_ids(store)
    assert sorted(ids) == expected
    assert len(ids) == len(set(ids))
    assert report.new_classifications == len(expected)
    assert report.last_id == max(expected)
    with store.connect() as connection:
        subject_count = connection.execute(text("SELECT COUNT(*) FROM subjects")).scalar_one()
        versions = connection.execute(text("SELECT COUNT(*) FROM workflow_versions")).scalar_one()
    assert subject_count == report.subjects_fetched > 0
    assert versions >= 1


def test_sync_is_incremental_and_fetches_subjects_in_batches(tmp_path: Path, store: Engine) -> None:
    settings = EmulatorSettings(
        state_path=tmp_path / "emu.sqlite3", subjects=40, classifications=120, seed=2
    )
    with serve_emulator(settings) as emu:
        client = connect(emu.endpoint)
        urls: list[str] = []
        client.session.hooks["response"].append(lambda r, *a, **k: urls.append(r.request.url))
        first = sync_classifications(client, store, emu.project_id, page_size=50, max_pages=1)
        rest = sync_classifications(client, store, emu.project_id, page_size=50)
        assert first.pages == 1
        assert first.new_classifications == 50
        emu.run_volunteers(15)
        later = sync_classifications(client, store, emu.project_id)
        again = sync_classifications(client, store, emu.project_id)
        expected = sorted(int(i) for i in emu.classification_ids())
    assert rest.new_classifications == 70
    assert later.new_classifications == 15
    assert again.new_classifications == 0
    assert sorted(stored_ids(store)) == expected
    subject_urls = [u for u in urls if "/api/subjects" in u]
    assert subject_urls, "subjects were never fetched"
    assert all("/api/subjects?" in u for u in subject_urls), "a subject was fetched one by one"
    assert len(subject_urls) <= first.pages + rest.pages + later.pages
    with store.connect() as connection:
        last = connection.execute(
            text("SELECT last_id FROM sync_state WHERE key = :k"),
            {"k": sync_state_key(settings.project_id)},
        ).scalar_one()
    assert last == max(expected)


def wait_for_progress(process: subprocess.Popen[Any], store: Engine, start: int) -> None:
    """Block until the subprocess has committed a page (so the kill lands mid-sync)."""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if len(stored_ids(store)) > start:
            return
        time.sleep(0.05)


def test_sync_killed_with_sigkill_at_random_points_ends_equal(
    tmp_path: Path, store: Engine, database_url: str
) -> None:
    settings = EmulatorSettings(
        state_path=tmp_path / "emu.sqlite3",
        subjects=30,
        classifications=400,
        seed=3,
        faults=[FaultRule(route="*", kind="latency", rate=1.0, latency_s=0.02)],
    )
    rng = random.Random(42)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "ZOO_PANOPTES_USERNAME": "owner",
        "ZOO_PANOPTES_PASSWORD": "secret",
    }
    progress: list[int] = []
    with serve_emulator(settings) as emu:
        command = [
            sys.executable,
            "-m",
            "panoptes_sync",
            "sync",
            "--endpoint",
            emu.endpoint,
            "--database-url",
            database_url,
            "--project-id",
            str(emu.project_id),
            "--page-size",
            "10",
        ]
        for _ in range(4):
            process = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            wait_for_progress(process, store, len(stored_ids(store)))
            time.sleep(rng.uniform(0.0, 0.4))
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            progress.append(len(stored_ids(store)))
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        expected = sorted(int(i) for i in emu.classification_ids())
    assert final.returncode == 0, final.stderr[-2000:]
    assert json.loads(final.stdout)["last_id"] == max(expected)
    assert any(0 < n < len(expected) for n in progress), f"no kill landed mid-sync: {progress}"
    ids = stored_ids(store)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == expected


def test_short_lived_tokens_are_refreshed_during_sync(tmp_path: Path, store: Engine) -> None:
    # 60 s tokens are inside panoptes-client's 2-minute expiry buffer: every call refreshes.
    settings = EmulatorSettings(
        state_path=tmp_path / "emu.sqlite3",
        subjects=10,
        classifications=45,
        seed=4,
        token_lifetime_s=60,
    )
    with serve_emulator(settings) as emu:
        report = sync_classifications(connect(emu.endpoint), store, emu.project_id, page_size=10)
        expected = emu.classification_ids()
        counters = emu.counters
    assert report.new_classifications == len(expected)
    assert counters.get("grant:refresh_token", 0) >= report.pages

"""The daemon soak (benchmarks/daemon_soak.py) in small: a few kills, every figure zero.

The full soak (20 kills, SQLite and PostgreSQL) is in BENCHMARKS.md; the fast check of the same
race (SIGTERM mid-push, a second instance at once) is in test_daemon.py.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.panoptes_sync.conftest import database_url  # noqa: F401 (the fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def _soak(tmp_path: Path, *extra: str) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "benchmarks" / "daemon_soak.py"),
            "--kills",
            "4",
            "--seed",
            "3",
            "--workdir",
            str(tmp_path),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=1100,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
            ),
        },
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    return json.loads(result.stdout)


def _check(figures: dict) -> None:
    assert figures["kills"] == 4
    assert figures["classifications_lost"] == 0
    assert figures["classifications_duplicated"] == 0
    assert figures["subjects_pushed_twice"] == 0
    assert figures["requests_repeated_for_batch_another_process_held"] == 0
    assert figures["push_writes"] > 0 and figures["push_writes_unattributed"] == 0


def test_soak_loses_and_repeats_nothing(tmp_path, database_url):  # noqa: F811
    _check(_soak(tmp_path / "soak", "--database-url", database_url))

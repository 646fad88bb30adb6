"""Every command line reports an unusable database in one line, password hidden, exit non-zero."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from panoptes_sync.cli import main as sync_main
from prioritiser.cli import main as prioritiser_main

PASSWORD = "hunter2-db"
URLS = {
    "unsupported": f"mysql://zoo:{PASSWORD}@localhost/zoo",
    "refused": f"postgresql+psycopg://zoo:{PASSWORD}@127.0.0.1:1/zoo",
    "missing_dir": "sqlite:////nonexistent-dir-for-tests/zoo.sqlite3",
}


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "zoo.toml"
    path.write_text(f'[panoptes_sync]\ndatabase_url = "{url}"\nproject_id = 1\nworkflow_id = 2\n')
    return path


def _assert_one_clean_line(err: str, url: str) -> None:
    assert "Traceback" not in err
    assert PASSWORD not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "StoreError" in lines[0] and "sqlalche.me" not in err
    assert "check the URL" in lines[0] or "use sqlite:///FILE" in lines[0], err
    if PASSWORD in url:
        assert "***" in lines[0]


@pytest.mark.parametrize("kind", sorted(URLS))
@pytest.mark.parametrize(
    "argv",
    [["status"], ["rollback", "--version", "1"], ["run", "--max-retrains", "0"]],
    ids=["status", "rollback", "run"],
)
def test_prioritiser_commands(tmp_path, capsys, kind, argv):
    url = URLS[kind]
    code = prioritiser_main([argv[0], "--config", str(_config(tmp_path, url)), *argv[1:]])
    assert code != 0
    _assert_one_clean_line(capsys.readouterr().err, url)


@pytest.mark.parametrize("kind", sorted(URLS))
@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["aggregate"],
        ["sync"],
        ["push", "--ranked-csv", "{csv}", "--dry-run"],
        ["backfill", "--classifications-csv", "{csv}"],
    ],
    ids=["status", "aggregate", "sync", "push", "backfill"],
)
def test_panoptes_sync_commands(tmp_path, capsys, kind, argv):
    url = URLS[kind]
    csv = tmp_path / "ranked.csv"
    csv.write_text("subject_id,priority\n1,1\n")
    args = [arg.format(csv=csv) for arg in argv]
    assert sync_main([args[0], "--config", str(_config(tmp_path, url)), *args[1:]]) != 0
    _assert_one_clean_line(capsys.readouterr().err, url)


def test_the_real_entry_point_exits_1(tmp_path):
    url = URLS["refused"]
    result = subprocess.run(
        [sys.executable, "-m", "prioritiser", "status", "--config", str(_config(tmp_path, url))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    _assert_one_clean_line(result.stderr, url)

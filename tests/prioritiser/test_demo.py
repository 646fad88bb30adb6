"""The demo's failure paths: a failing cycle, and a history with nothing to report."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(600)


def _demo(tmp_path, *extra):
    return subprocess.run(
        [sys.executable, "-m", "prioritiser", "demo", "--workdir", str(tmp_path), *extra],
        capture_output=True,
        text=True,
        timeout=500,
    )


def test_a_failing_cycle_makes_the_demo_exit_non_zero_naming_the_stage_and_the_error(tmp_path):
    result = _demo(tmp_path, "--subjects", "120", "--encoder", "no_such_encoder")
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: CycleFailed: cycle 1 failed in stage 'train'"), last
    assert "EncoderNotFoundError" in last and "no_such_encoder" in last, last
    assert "learning_curve" not in result.stderr
    assert not (tmp_path / "report.html").exists()
    assert not (tmp_path / "summary.json").exists()


def test_the_demo_writes_no_report_from_an_empty_history(tmp_path):
    result = _demo(tmp_path, "--subjects", "60", "--cycles", "1")
    assert result.returncode == 1, result.stderr[-2000:]
    assert "no model version was trained" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "report.html").exists()

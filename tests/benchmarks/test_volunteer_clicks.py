"""Smoke test of benchmarks/volunteer_clicks.py --quick: every arm runs, the outputs are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_json_and_png(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = ROOT / "benchmarks" / "volunteer_clicks.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--quick", "--out-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads((tmp_path / "volunteer_clicks.json").read_text())
    assert set(result["arms"]) == {"random_40", "mi_40", "kade", "swap", "combined"}
    for entry in result["arms"].values():
        assert set(entry["clicks_to_match"]) == {"whole_tree", "smooth-or-featured"}
    assert result["seeds"] == [0]
    assert (tmp_path / "volunteer_clicks.png").stat().st_size > 0
    assert "| combined |" in completed.stdout


def test_clicks_to_reach_interpolates() -> None:
    from volunteer_clicks import clicks_to_reach

    clicks = np.array([0.0, 1000.0, 2000.0])
    assert clicks_to_reach(clicks, np.array([3.0, 2.0, 1.0]), 1.5) == 1500.0
    assert clicks_to_reach(clicks, np.array([3.0, 2.0, 1.0]), 0.5) is None
    assert clicks_to_reach(clicks, np.array([1.0, 0.9, 0.8]), 1.0) == 0.0


def test_designator_serves_by_priority_under_the_cap() -> None:
    from click_stream import _serve

    priority = np.array([0.1, 0.9, 0.5, 0.7])
    available = np.array([True, True, True, False])
    votes = np.array([0, 39, 0, 0])
    served = _serve(priority, available, votes, cap=40, step=40, window=30)
    # galaxy 1 needs one more vote, then galaxy 2 (galaxy 3 is retired) takes the rest
    np.testing.assert_array_equal(np.bincount(served, minlength=4), [0, 1, 29, 0])

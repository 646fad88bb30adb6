"""Smoke test of benchmarks/volunteer_clicks.py --quick: every arm runs, the outputs are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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

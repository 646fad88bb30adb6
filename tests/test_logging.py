"""Entry points log through one timestamped handler, and print each message once."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TIMESTAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S+: ")

SCRIPT = textwrap.dedent(
    """
    import logging
    import sys

    from {module} import main

    import panoptes_client  # noqa: F401  (configures logging when imported, before main runs)

    assert main(sys.argv[2:]) == 0
    from zoobot.finetune import get_trainer

    get_trainer(sys.argv[1], max_epochs=1, accelerator="cpu")
    logging.getLogger("prioritiser.check").info("after the trainer")
    """
)


@pytest.mark.parametrize("module", ["prioritiser.cli", "panoptes_sync.cli"])
def test_one_timestamped_line_per_message(tmp_path: Path, module: str) -> None:
    url = f"sqlite:///{tmp_path / 'zoo.sqlite3'}"
    config = tmp_path / "zoo.toml"
    config.write_text(f'[panoptes_sync]\ndatabase_url = "{url}"\n')
    argv = ["status", "--config", str(config)]
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(module=module), str(tmp_path / "run"), *argv],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert [line for line in lines if "GPU available" in line] != []
    assert len([line for line in lines if "GPU available" in line]) == 1, result.stderr
    assert len([line for line in lines if "after the trainer" in line]) == 1, result.stderr
    assert "Tip:" not in result.stderr
    assert all(TIMESTAMPED.match(line) for line in lines), result.stderr


@pytest.mark.parametrize("module", ["prioritiser", "panoptes_sync.emulator"])
def test_an_unknown_log_level_is_a_usage_error(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--log-level", "LOUD", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "invalid choice: 'LOUD'" in result.stderr


def test_configure_logging_replaces_earlier_handlers_and_follows_stderr(capsys) -> None:
    import io
    import logging

    from zoobot.logs import configure_logging

    root = logging.getLogger()
    saved, saved_level = list(root.handlers), root.level
    try:
        earlier = io.StringIO()
        root.addHandler(logging.StreamHandler(earlier))
        configure_logging("info")
        assert len(root.handlers) == 1
        logging.getLogger("prioritiser.check").info("to the current stderr")
        err = capsys.readouterr().err
        assert TIMESTAMPED.match(err) and "to the current stderr" in err
        assert earlier.getvalue() == ""
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(saved_level)

"""The emulator's owner password: from the environment (not the process list), stored hashed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from panoptes_client import Panoptes
from panoptes_client.panoptes import PanoptesAPIException

from panoptes_sync.emulator import EmulatorSettings, serve_emulator
from panoptes_sync.emulator.cli import PASSWORD_ENV, build_parser, settings_from_args
from panoptes_sync.emulator.passwords import hash_password, verify_password
from tests.panoptes_sync.emulator_fixtures import reset_panoptes_client

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_password_comes_from_the_environment_or_the_flag() -> None:
    parse = build_parser().parse_args
    assert (
        settings_from_args(parse(["--user", "me"]), {PASSWORD_ENV: "env-pw"}).password == "env-pw"
    )
    assert settings_from_args(parse(["--user", "me"]), {}).password == "secret"
    assert settings_from_args(parse(["--user", "me"]), {PASSWORD_ENV: ""}).password == "secret"
    flagged = settings_from_args(parse(["--user", "me:flag-pw"]), {PASSWORD_ENV: "env-pw"})
    assert (flagged.login, flagged.password) == ("me", "flag-pw")
    assert PASSWORD_ENV in " ".join(build_parser().format_help().split())


def test_hashes_are_salted_and_checked() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert first != second and first.startswith("scrypt$") and "pw" not in first.split("$")
    assert verify_password("pw", first) and verify_password("pw", second)
    assert not verify_password("pW", first)
    assert not verify_password("pw", None) and not verify_password(None, first)


def test_the_state_file_holds_no_password(tmp_path: Path) -> None:
    password = "correct-horse-7"
    settings = EmulatorSettings(
        state_path=tmp_path / "state.sqlite3",
        subjects=2,
        classifications=2,
        answer_model="random",
        password=password,
        other_users=(("guest", "guest-pw-9"),),
    )
    with serve_emulator(settings) as emulator:
        reset_panoptes_client()
        Panoptes.connect(username="owner", password=password, endpoint=emulator.endpoint)
        reset_panoptes_client()
        with pytest.raises(PanoptesAPIException, match="Invalid login or password"):
            Panoptes.connect(username="owner", password="wrong", endpoint=emulator.endpoint)
        reset_panoptes_client()
        volunteer_grant = {
            "grant_type": "password",
            "client_id": settings.client_id,
            "login": "volunteer-001",
        }
        answer = requests.post(emulator.endpoint + "/oauth/token", data=volunteer_grant, timeout=10)
        assert answer.status_code in (400, 401), answer.text
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("state"))
    assert password.encode() not in raw and b"guest-pw-9" not in raw
    with sqlite3.connect(tmp_path / "state.sqlite3") as connection:
        stored = dict(connection.execute("SELECT login, password_hash FROM users").fetchall())
    assert stored["owner"].startswith("scrypt$") and stored["volunteer-001"] is None
    assert verify_password(password, stored["owner"])


def test_the_cli_takes_the_password_from_the_environment(tmp_path: Path) -> None:
    password = "env-only-pw-3"
    command = [
        sys.executable, "-m", "panoptes_sync.emulator", "--port", "0", "--subjects", "2",
        "--classifications", "2", "--user", "owner", "--answer-model", "random",
        "--state", str(tmp_path / "cli.sqlite3"),
    ]  # fmt: skip
    env = {**os.environ, PASSWORD_ENV: password}
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        cmdline = Path(f"/proc/{process.pid}/cmdline")
        if cmdline.exists():
            assert password.encode() not in cmdline.read_bytes()
        reset_panoptes_client()
        Panoptes.connect(username="owner", password=password, endpoint=endpoint)
        reset_panoptes_client()
    finally:
        process.terminate()
        process.wait(timeout=10)

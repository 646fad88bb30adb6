"""Pytest fixtures for tests that need a running Panoptes emulator.

Use from a test module with ``from tests.panoptes_sync.emulator_fixtures import *  # noqa: F403``
or list the names you need; ``pytest_plugins = ["tests.panoptes_sync.emulator_fixtures"]`` works
in the root conftest.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from panoptes_client import Panoptes

from panoptes_sync.emulator import EmulatorServer, EmulatorSettings, serve_emulator

__all__ = [
    "API_HEADERS",
    "emulator",
    "emulator_settings",
    "owner_client",
    "reset_panoptes_client",
    "small_settings",
]

#: The headers panoptes-client sends to ``/api`` (for raw ``requests`` calls).
API_HEADERS = {"Accept": "application/vnd.api+json; version=1", "Content-Type": "application/json"}


def small_settings(tmp_path: Path, **overrides: object) -> EmulatorSettings:
    """Tiny, fast emulator settings (20 subjects, 60 classifications, 16 px images)."""
    values: dict[str, object] = {
        "state_path": tmp_path / "emulator.sqlite3",
        "subjects": 20,
        "classifications": 60,
        "login": "owner",
        "password": "secret",
        "seed": 0,
        "image_size": 16,
        "volunteers": 10,
    }
    values.update(overrides)
    return EmulatorSettings(**values)  # type: ignore[arg-type]


def reset_panoptes_client() -> None:
    """Forget panoptes-client's thread-local connection (it is global state across tests)."""
    Panoptes._local = threading.local()


@pytest.fixture
def emulator_settings(tmp_path: Path) -> EmulatorSettings:
    """Settings of the ``emulator`` fixture; override this fixture to change them."""
    return small_settings(tmp_path)


@pytest.fixture
def emulator(emulator_settings: EmulatorSettings) -> Iterator[EmulatorServer]:
    """A running emulator on a free loopback port, with its own state file."""
    with serve_emulator(emulator_settings) as server:
        yield server


@pytest.fixture
def owner_client(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Panoptes]:
    """panoptes-client connected to the emulator as the project owner; reset afterwards."""
    for name in ("PANOPTES_ENDPOINT", "PANOPTES_USERNAME", "PANOPTES_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name in ("PANOPTES_CLIENT_ID", "PANOPTES_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    reset_panoptes_client()
    client = Panoptes.connect(
        username=emulator.settings.login,
        password=emulator.settings.password,
        endpoint=emulator.endpoint,
    )
    yield client
    reset_panoptes_client()

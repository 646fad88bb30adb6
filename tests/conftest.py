"""Fixtures shared by every test: a clean, offline environment and the location of ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# huggingface_hub reads this once, at import: set it before any test module imports timm.
os.environ["HF_HUB_OFFLINE"] = "1"

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def clean_environ(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No test downloads or reads the developer's settings: caches in a temp dir, hub offline."""
    cache = tmp_path_factory.getbasetemp() / "cache"
    for name in list(os.environ):
        if (
            name.startswith("ZOO_")
            and name != "ZOO_TEST_POSTGRES_URL"
            or name.lower().endswith("_proxy")
        ):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(cache / "torch"))
    monkeypatch.setenv("HF_HOME", str(cache / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, or a skip that says why."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip(f"real Galaxy Zoo images not found at {data} (../shared is absent)")
    return data

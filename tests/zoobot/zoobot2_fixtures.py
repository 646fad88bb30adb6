"""The Zoobot 2.9.0 fixture checkpoints and a hub cache laid out as the hub lays it out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zoobot29"
HUB_NAME = "hf_hub:mwalmsley/zoobot-encoder-test_efficientnet"
ARCHITECTURE = "test_efficientnet"


def write_hub_cache(
    cache: Path, repo_id: str = HUB_NAME.removeprefix("hf_hub:"), extra: tuple[Path, ...] = ()
) -> None:
    """config.json and model.safetensors of a tiny timm encoder, in the hub cache's layout.

    ``extra`` files (e.g. a finetuned ``FinetuneableZoobotClassifier.ckpt``) join the snapshot.
    """
    snapshot_id = "0" * 40
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / snapshot_id
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot_id)
    torch.manual_seed(0)
    model = timm.create_model(ARCHITECTURE, num_classes=0)
    (snapshot / "config.json").write_text(
        json.dumps({"architecture": ARCHITECTURE, "num_classes": 0})
    )
    save_file(model.state_dict(), str(snapshot / "model.safetensors"))
    for path in extra:
        (snapshot / path.name).write_bytes(path.read_bytes())


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An offline hub cache holding HUB_NAME, used by huggingface_hub for this test."""
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    write_hub_cache(cache)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="session")
def zoobot29_outputs() -> dict[str, torch.Tensor]:
    """Inputs and each 2.9 model's outputs on them, as zoobot 2.9.0 computed them."""
    return load_file(str(FIXTURES / "outputs.safetensors"))

"""The Zoobot 2.9.0 fixture checkpoints and a hub cache laid out as the hub lays it out."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file
from timm.models import save_for_hf

from tests.zoobot.hub_cache import lay_out_hub_cache

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "zoobot29"
HUB_NAME = "hf_hub:mwalmsley/zoobot-encoder-test_efficientnet"
ARCHITECTURE = "test_efficientnet"


def write_hub_cache(
    cache: Path, repo_id: str = HUB_NAME.removeprefix("hf_hub:"), extra: tuple[Path, ...] = ()
) -> None:
    """A tiny timm encoder in Zoobot's encoder repository layout, in a hub-shaped cache.

    ``extra`` files (e.g. a finetuned ``FinetuneableZoobotClassifier.ckpt``) join the snapshot.
    """
    source = cache.parent / f"source-{repo_id.replace('/', '--')}"
    torch.manual_seed(0)
    save_for_hf(
        timm.create_model(ARCHITECTURE, num_classes=0), str(source), safe_serialization=True
    )
    files = {path.name: path for path in (*source.iterdir(), *extra)}
    lay_out_hub_cache(cache, repo_id, files)


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

"""The shipped pretrained encoder, and the pretrain -> export -> reload round trip."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from zoobot.datasets.simulated import make_catalog
from zoobot.finetune import FinetuneableZoobotTree
from zoobot.models import create_encoder
from zoobot.models.pretrained import get_pretrained_weights, list_pretrained
from zoobot.pretrain import export_encoder, pretrain

from .conftest import TINY_ENCODER

SHIPPED = "zoobot-sim-atto"
MAX_SHIPPED_BYTES = 20 * 1024 * 1024


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """Sixteen simulated 32 px galaxies with DR5 vote counts."""
    return make_catalog(n=16, size=32, seed=3, out_dir=tmp_path_factory.mktemp("sims"))


def _images(catalog: pd.DataFrame, size: int) -> torch.Tensor:
    arrays = [
        np.asarray(Image.open(p).convert("RGB").resize((size, size)), dtype=np.float32) / 255
        for p in catalog["file_loc"]
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def _features(encoder: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    return encoder.eval()(images)


def test_shipped_encoder_is_listed_and_small() -> None:
    assert SHIPPED in list_pretrained()
    architecture, path = get_pretrained_weights(SHIPPED)
    assert architecture == "convnext_atto"
    assert 0 < path.stat().st_size <= MAX_SHIPPED_BYTES


def test_shipped_encoder_loads_by_name_offline(offline: None, sims: pd.DataFrame) -> None:
    _, path = get_pretrained_weights(SHIPPED)
    stored = load_file(str(path))
    encoder = create_encoder(SHIPPED)
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(value, stored[key].to(value.dtype), rtol=0, atol=0)
    torch.manual_seed(0)
    random_init = create_encoder("convnext_atto")
    images = _images(sims.head(4), 64)
    shipped_features = _features(encoder, images)
    random_features = _features(random_init, images)
    assert shipped_features.shape == random_features.shape == (4, encoder.num_features)
    assert not torch.allclose(shipped_features, random_features, atol=1e-3)


def test_finetuneable_tree_takes_shipped_encoder_by_name(offline: None) -> None:
    model = FinetuneableZoobotTree(name=SHIPPED, n_blocks=2)
    _, path = get_pretrained_weights(SHIPPED)
    stored = load_file(str(path))
    first_key = next(iter(stored))
    torch.testing.assert_close(
        model.encoder.state_dict()[first_key], stored[first_key], rtol=0, atol=0
    )
    assert model.hparams.architecture == "convnext_atto"
    trained = [p for p in model.encoder.parameters() if p.requires_grad]
    assert 0 < len(trained) < len(list(model.encoder.parameters()))


def test_pretrain_export_reload_gives_identical_features(
    sims: pd.DataFrame, tmp_path: Path
) -> None:
    model = pretrain(
        sims,
        "decals_dr5",
        tmp_path / "run",
        architecture=TINY_ENCODER,
        epochs=1,
        batch_size=8,
        resize_size=32,
        trainer_kwargs={
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
        },
    )
    path = export_encoder(model, tmp_path / "encoder.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        assert handle.metadata()["architecture"] == TINY_ENCODER
    reloaded = create_encoder(TINY_ENCODER, weights=path)
    images = _images(sims.head(4), 32)
    torch.testing.assert_close(
        _features(reloaded, images), _features(model.encoder, images), rtol=0, atol=0
    )
    torch.manual_seed(1)
    fresh = create_encoder(TINY_ENCODER)
    assert not torch.allclose(_features(fresh, images), _features(reloaded, images))

"""The one safe checkpoint loader: crafted pickles run nothing, on every path that loads a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from zoobot.checkpoints import load_checkpoint
from zoobot.errors import CheckpointNotFoundError, UnsafeCheckpointError
from zoobot.finetune import FinetuneableZoobotTree
from zoobot.models import create_encoder
from zoobot.pytorch.training import finetune as zoobot2_finetune

REPO = Path(__file__).resolve().parents[2]


class _MakesMarker:
    """Unpickling this calls os.system, which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    """A Lightning-shaped checkpoint whose hyper-parameters would run a shell command."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save(
        {
            "state_dict": {"encoder.x": torch.zeros(1)},
            "hyper_parameters": {"architecture": "test_resnet", "payload": _MakesMarker(marker)},
            "pytorch-lightning_version": "2.6.0",
        },
        path,
    )
    return path, marker


def test_the_crafted_file_would_run_code_if_unpickled(crafted: tuple[Path, Path]) -> None:
    path, marker = crafted
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    "load",
    [
        load_checkpoint,
        FinetuneableZoobotTree.load_from_checkpoint,
        FinetuneableZoobotTree.load_model,
        zoobot2_finetune.FinetuneableZoobotTree.load_from_checkpoint,
        zoobot2_finetune.load_pretrained_zoobot,
        lambda path: create_encoder("test_resnet", weights=path),
    ],
    ids=["load_checkpoint", "load_from_checkpoint", "load_model", "zoobot2", "pretrained", "enc"],
)
def test_crafted_checkpoint_is_refused_and_runs_nothing(crafted: tuple[Path, Path], load) -> None:
    path, marker = crafted
    with pytest.raises(UnsafeCheckpointError, match=r"evil\.ckpt.*posix\.system"):
        load(path)
    assert not marker.exists()


def test_the_environment_cannot_switch_unpickling_back_on(
    crafted: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, marker = crafted
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    with pytest.raises(UnsafeCheckpointError):
        FinetuneableZoobotTree.load_from_checkpoint(path)
    assert not marker.exists()


def test_weights_only_false_is_refused(crafted: tuple[Path, Path]) -> None:
    path, marker = crafted
    with pytest.raises(UnsafeCheckpointError, match="weights_only=False refused"):
        FinetuneableZoobotTree.load_from_checkpoint(path, weights_only=False)
    assert not marker.exists()


def test_missing_and_non_checkpoint_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointNotFoundError, match="nothing.ckpt"):
        load_checkpoint(tmp_path / "nothing.ckpt")
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(UnsafeCheckpointError, match="notes.ckpt"):
        load_checkpoint(text)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(UnsafeCheckpointError, match="holds a Tensor"):
        load_checkpoint(tensor)


def test_score_cli_refuses_a_crafted_checkpoint(crafted: tuple[Path, Path], tmp_path: Path) -> None:
    path, marker = crafted
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("id_str,file_loc\ng0,missing.png\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "prioritiser",
            "score",
            "--checkpoint",
            str(path),
            "--catalog",
            str(catalog),
            "--out",
            str(tmp_path / "ranked.csv"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode != 0
    assert not marker.exists()
    assert "evil.ckpt" in result.stderr

"""Hyper-parameters are plain data that every Lightning logger takes, with omegaconf or not."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from zoobot.finetune import FinetuneableZoobotTree, get_trainer
from zoobot.schemas import Schema, get_schema

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "project_session4"
CUSTOM = Schema.from_pairs("custom", {"ring": ["yes", "no"]}, {"ring": None})


def _rows(n_answers: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        {
            "image": torch.rand(3, 32, 32, generator=generator),
            "label": torch.full((n_answers,), 2.0),
        }
        for _ in range(4)
    ]


def _fit(model: FinetuneableZoobotTree, save_dir: Path, **kwargs) -> str:
    rows = _rows(len(model.schema.label_cols))
    trainer = get_trainer(
        save_dir,
        max_epochs=1,
        accelerator="cpu",
        limit_train_batches=2,
        limit_val_batches=1,
        enable_progress_bar=False,
        **kwargs,
    )
    trainer.fit(model, DataLoader(rows, batch_size=2), DataLoader(rows, batch_size=2))
    return trainer.checkpoint_callback.best_model_path


@pytest.mark.skipif(not importlib.util.find_spec("omegaconf"), reason="needs omegaconf (dev extra)")
@pytest.mark.parametrize("schema", [get_schema("rings"), CUSTOM], ids=["built-in", "custom"])
def test_tree_trains_with_the_default_logger_while_omegaconf_is_importable(
    schema: Schema, tmp_path: Path
) -> None:
    import omegaconf  # noqa: F401  (Lightning's CSVLogger takes its DictConfig path)

    model = FinetuneableZoobotTree(schema=schema, name="test_efficientnet", image_size=32)
    path = _fit(model, tmp_path)
    assert model.hparams_initial["schema"] == (
        "rings" if schema.name == "rings" else schema.to_dict()
    )
    reloaded = FinetuneableZoobotTree.load_from_checkpoint(path)
    assert reloaded.schema == schema
    hparams_yaml = (tmp_path / "logs" / "version_0" / "hparams.yaml").read_text()
    assert "ring" in hparams_yaml and "!!python" not in hparams_yaml


@pytest.mark.parametrize("logger", [CSVLogger, TensorBoardLogger])
def test_tree_hparams_survive_each_logger(logger: type, tmp_path: Path) -> None:
    if logger is TensorBoardLogger and not (
        importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")
    ):
        pytest.skip("TensorBoardLogger needs tensorboard or tensorboardX")
    model = FinetuneableZoobotTree(schema=CUSTOM, name="test_efficientnet", image_size=32)
    path = _fit(model, tmp_path, logger=logger(tmp_path, name="logs"))
    assert FinetuneableZoobotTree.load_from_checkpoint(path).schema == CUSTOM


def test_checkpoint_of_the_previous_code_still_loads() -> None:
    """Saved before this change (schema as Schema.to_dict in hparams): same outputs."""
    model = FinetuneableZoobotTree.load_model(OLD / "tree.ckpt").eval()
    expected = load_file(str(OLD / "outputs.safetensors"))
    assert model.schema.name == "two_questions"
    with torch.no_grad():
        assert torch.equal(model(expected["inputs"]), expected["tree"])

import pandas as pd
import pytest
import torch

from zoobot.data import CatalogDataModule
from zoobot.finetune import (
    FinetuneableZoobotClassifier,
    FinetuneableZoobotRegressor,
    FinetuneableZoobotTree,
    get_trainer,
)
from zoobot.predict import predict_on_catalog

from .conftest import IMAGE_SIZE, RINGS_VOTES_SCHEMA, TINY_ENCODER

FEATURED = "smooth-or-featured_featured-or-disk_fraction"


def _fixed_batch_loss(model, datamodule) -> float:
    model.eval()
    losses = []
    with torch.no_grad():
        for batch in datamodule.val_dataloader():
            losses.append(model.loss_per_galaxy(model(batch["image"]), batch["label"]))
    model.train()
    return torch.cat(losses).mean().item()


CASES = {
    "classifier": (FinetuneableZoobotClassifier, {"num_classes": 2}, ["ring"]),
    "regressor": (FinetuneableZoobotRegressor, {"unit_interval": True}, [FEATURED]),
    "tree": (
        FinetuneableZoobotTree,
        {"schema": RINGS_VOTES_SCHEMA.to_dict()},
        RINGS_VOTES_SCHEMA.label_cols,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_finetune_class_trains_on_real_rings_with_falling_loss(case, rings_catalog, tmp_path):
    cls, kwargs, label_cols = CASES[case]
    torch.manual_seed(0)
    subset = rings_catalog.sample(24, random_state=0).reset_index(drop=True)
    datamodule = CatalogDataModule(
        label_cols,
        train_catalog=subset,
        val_catalog=subset,
        batch_size=12,
        resize_size=IMAGE_SIZE,
        augment=False,
    )
    datamodule.setup("fit")
    model = cls(name=TINY_ENCODER, n_blocks=-1, learning_rate=3e-3, dropout_prob=0.0, **kwargs)
    before = _fixed_batch_loss(model, datamodule)
    trainer = get_trainer(tmp_path, max_epochs=8, accelerator="cpu", enable_progress_bar=False)
    trainer.fit(model, datamodule)
    after = _fixed_batch_loss(model, datamodule)
    assert after < before
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()


def test_checkpoint_reloads_to_identical_predictions(tiny_catalog, tmp_path):
    datamodule = CatalogDataModule(
        ["label"],
        train_catalog=tiny_catalog,
        val_catalog=tiny_catalog,
        batch_size=6,
        resize_size=32,
    )
    model = FinetuneableZoobotClassifier(name=TINY_ENCODER, num_classes=2, n_blocks=1)
    trainer = get_trainer(tmp_path, max_epochs=2, accelerator="cpu", enable_progress_bar=False)
    trainer.fit(model, datamodule)
    reloaded = FinetuneableZoobotClassifier.load_model(tmp_path / "checkpoints" / "best.ckpt")
    kwargs = {"resize_size": 32, "progress": False}
    first = predict_on_catalog(tiny_catalog, model, label_cols=["no", "yes"], **kwargs)
    second = predict_on_catalog(tiny_catalog, reloaded, label_cols=["no", "yes"], **kwargs)
    pd.testing.assert_frame_equal(first, second)
    assert list(first.columns) == ["id_str", "no_pred", "yes_pred"]


def test_fit_leaves_the_best_checkpoint_weights_in_the_model(tiny_catalog, tmp_path):
    datamodule = CatalogDataModule(
        ["label"],
        train_catalog=tiny_catalog,
        val_catalog=tiny_catalog,
        batch_size=6,
        resize_size=32,
    )
    model = FinetuneableZoobotClassifier(
        name=TINY_ENCODER, num_classes=2, learning_rate=0.05, n_blocks=-1
    )
    trainer = get_trainer(
        tmp_path, max_epochs=4, patience=10, accelerator="cpu", enable_progress_bar=False
    )
    trainer.fit(model, datamodule)
    best = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=False)["state_dict"]
    for key, value in model.state_dict().items():
        assert torch.equal(value, best[key]), key


def test_head_only_training_freezes_the_encoder_and_keeps_it_in_eval_mode():
    model = FinetuneableZoobotTree(name=TINY_ENCODER, schema="decals_dr5", n_blocks=0)
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert not model.encoder.training and model.head.training
    partial = FinetuneableZoobotTree(
        name=TINY_ENCODER, n_blocks=2, learning_rate=1e-3, layer_decay=0.5
    )
    groups = partial.configure_optimizers()["optimizer"].param_groups
    assert [g["lr"] for g in groups] == pytest.approx([1e-3, 5e-4, 2.5e-4])
    top = list(partial.blocks[-1].parameters())
    assert all(p.requires_grad for p in top)
    assert not any(p.requires_grad for p in partial.blocks[0].parameters())


def test_label_smoothing_and_class_weights_change_the_loss():
    outputs = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    labels = torch.tensor([0, 1])
    plain = FinetuneableZoobotClassifier(name=TINY_ENCODER).loss_per_galaxy(outputs, labels)
    smoothed = FinetuneableZoobotClassifier(name=TINY_ENCODER, label_smoothing=0.2).loss_per_galaxy(
        outputs, labels
    )
    weighted = FinetuneableZoobotClassifier(
        name=TINY_ENCODER, class_weights=[1.0, 3.0]
    ).loss_per_galaxy(outputs, labels)
    assert smoothed[0] > plain[0]
    assert weighted[1] == pytest.approx(3 * plain[1])

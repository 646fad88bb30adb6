"""Zoobot 2.9 drop-in: its checkpoints (made by real zoobot 2.9.0), names, batches and files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from tests.zoobot.conftest import write_tiny_images
from tests.zoobot.zoobot2_fixtures import ARCHITECTURE, FIXTURES, HUB_NAME, write_hub_cache
from zoobot import finetune as project
from zoobot.data import CatalogDataModule
from zoobot.pytorch.estimators import define_model
from zoobot.pytorch.predictions import predict_on_catalog
from zoobot.pytorch.training import finetune, representations
from zoobot.schemas import get_schema
from zoobot.shared import load_predictions, schemas
from zoobot.zoobot2.arguments import translate_kwargs

KINDS = {
    "classifier": finetune.FinetuneableZoobotClassifier,
    "regressor": finetune.FinetuneableZoobotRegressor,
    "tree": finetune.FinetuneableZoobotTree,
    "zoobot_tree": define_model.ZoobotTree,
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_zoobot29_checkpoints_load_with_identical_outputs(kind: str, zoobot29_outputs) -> None:
    model = KINDS[kind].load_from_checkpoint(FIXTURES / f"{kind}.ckpt").eval()
    inputs = zoobot29_outputs["inputs"]
    with torch.no_grad():
        assert torch.equal(model(inputs), zoobot29_outputs[kind])
        assert torch.equal(model.encoder(inputs), zoobot29_outputs[f"{kind}_features"])
    assert model.hparams["name"] == ARCHITECTURE  # rebuilt bare: no hub, no download


def test_zoobot29_checkpoints_load_into_the_projects_own_classes(zoobot29_outputs) -> None:
    tree = project.FinetuneableZoobotTree.load_from_checkpoint(FIXTURES / "tree.ckpt").eval()
    assert tree.schema == schemas.gz_rings_schema
    assert tree.hparams["schema"] == "gz_rings"
    classifier = project.FinetuneableZoobotClassifier.load_model(FIXTURES / "classifier.ckpt")
    with torch.no_grad():
        assert torch.equal(tree(zoobot29_outputs["inputs"]), zoobot29_outputs["tree"])
        logits = classifier.eval()(zoobot29_outputs["inputs"])
    assert torch.equal(logits, zoobot29_outputs["classifier"])
    assert classifier.hparams["label_col"] == "ring"


def test_load_from_name_finds_the_finetuned_checkpoint_in_the_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zoobot29_outputs
) -> None:
    import huggingface_hub.constants

    classifier = tmp_path / "FinetuneableZoobotClassifier.ckpt"
    classifier.write_bytes((FIXTURES / "classifier.ckpt").read_bytes())
    write_hub_cache(tmp_path / "hub", "mwalmsley/zoobot-finetuned-rings", extra=(classifier,))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    model = finetune.FinetuneableZoobotClassifier.load_from_name(
        "hf_hub:mwalmsley/zoobot-finetuned-rings"
    )
    with torch.no_grad():
        assert torch.equal(model.eval()(zoobot29_outputs["inputs"]), zoobot29_outputs["classifier"])


def test_checkpoint_of_an_in_memory_encoder_needs_it_again(
    tmp_path: Path, zoobot29_outputs
) -> None:
    """2.9 records no architecture for encoder=...; like 2.9, loading asks for the encoder."""
    import timm

    from zoobot.checkpoints import load_checkpoint
    from zoobot.errors import EncoderNotFoundError

    checkpoint = load_checkpoint(FIXTURES / "classifier.ckpt")
    checkpoint["hyper_parameters"]["name"] = None
    path = tmp_path / "in_memory.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(EncoderNotFoundError, match="pass encoder="):
        finetune.FinetuneableZoobotClassifier.load_from_checkpoint(path)
    encoder = timm.create_model(ARCHITECTURE, num_classes=0)
    model = finetune.FinetuneableZoobotClassifier.load_from_checkpoint(path, encoder=encoder)
    with torch.no_grad():
        assert torch.equal(model.eval()(zoobot29_outputs["inputs"]), zoobot29_outputs["classifier"])


def test_encoder_only_zoobot_tree_checkpoint(zoobot29_outputs) -> None:
    encoder = finetune.load_pretrained_zoobot(FIXTURES / "zoobot_tree.ckpt").eval()
    with torch.no_grad():
        features = encoder(zoobot29_outputs["inputs"])
    assert torch.equal(features, zoobot29_outputs["zoobot_tree_features"])
    assert define_model.get_encoder_dim(encoder) == features.shape[1]
    wrapped = representations.ZoobotEncoder(encoder=encoder)
    with torch.no_grad():
        assert torch.equal(wrapped(zoobot29_outputs["inputs"]), features)


def test_zoobot29_arguments_are_translated(hub_cache: Path) -> None:
    model = finetune.FinetuneableZoobotRegressor(
        name=HUB_NAME,
        label_col="fraction",
        loss="l1",
        unit_interval=True,
        training_mode="head_only",
        head_dropout_prob=0.3,
        greyscale=False,
        timm_kwargs={},
        scheduler_kwargs=None,
        seed=7,
        prog_bar=False,
    )
    hparams = dict(model.hparams)
    assert (hparams["loss"], hparams["n_blocks"], hparams["dropout_prob"]) == ("mae", 0, 0.3)
    assert hparams["label_col"] == "fraction"
    assert not {"training_mode", "head_dropout_prob", "seed", "greyscale"} & set(hparams)
    assert model(torch.rand(3, 3, 32, 32)).shape == (3,)
    assert translate_kwargs({"greyscale": True})["channels"] == 1
    assert translate_kwargs({"timm_kwargs": {"in_chans": 1}})["channels"] == 1
    assert (
        finetune.FinetuneableZoobotRegressor(name=HUB_NAME, loss="mean_squared_error").hparams[
            "loss"
        ]
        == "mse"
    )


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ({"timm_kwargs": {"drop_path_rate": 0.1}}, "drop_path_rate"),
        ({"scheduler_kwargs": {"name": "cosine"}}, "scheduler_kwargs"),
        ({"training_mode": "some"}, "training_mode"),
        ({"loss": "huber"}, "loss"),
    ],
)
def test_zoobot29_arguments_without_equivalent_are_refused(
    argument: dict, message: str, hub_cache: Path
) -> None:
    with pytest.raises(ValueError, match=message):
        finetune.FinetuneableZoobotRegressor(name=HUB_NAME, **argument)


def test_galaxy_datasets_batches_train_and_reload(tmp_path: Path, hub_cache: Path) -> None:
    """{"image", "id_str", <label columns>} batches, as galaxy-datasets' CatalogDataModule makes."""
    schema = schemas.Schema({"ring": ["_yes", "_no"]}, {"ring": None})
    rows = [
        {
            "image": torch.rand(3, 32, 32),
            "id_str": f"g{i}",
            "ring": i % 2,
            "ring_yes": float(i % 3),
            "ring_no": 2.0,
        }
        for i in range(8)
    ]
    models = [
        finetune.FinetuneableZoobotClassifier(name=HUB_NAME, num_classes=2, label_col="ring"),
        finetune.FinetuneableZoobotTree(name=HUB_NAME, schema=schema),
    ]
    for model in models:
        trainer = finetune.get_trainer(
            tmp_path / type(model).__name__,
            max_epochs=1,
            accelerator="cpu",
            logger=False,
            limit_train_batches=2,
            limit_val_batches=1,
            enable_progress_bar=False,
        )
        trainer.fit(model, DataLoader(rows, batch_size=4), DataLoader(rows, batch_size=4))
        reloaded = type(model).load_from_checkpoint(trainer.checkpoint_callback.best_model_path)
        expected = {**model.hparams, "name": ARCHITECTURE}  # rebuilt bare, weights from the file
        assert dict(reloaded.hparams) == expected
    assert models[1].hparams["schema"] == "gz_rings"


def test_batch_without_the_label_column_names_what_it_has(hub_cache: Path) -> None:
    model = finetune.FinetuneableZoobotClassifier(name=HUB_NAME, num_classes=2, label_col="ring")
    with pytest.raises(KeyError, match=r"\['ring'\].*id_str"):
        model.training_step({"image": torch.rand(2, 3, 32, 32), "id_str": ["a", "b"]}, 0)


def test_every_zoobot_schema_with_zoobot_column_names() -> None:
    assert len(schemas.__all__) == 22
    assert schemas.decals_dr5_ortho_schema.label_cols[0] == "smooth-or-featured-dr5_smooth"
    assert schemas.gz_candels_ortho_schema.question_index_groups[0] == (0, 2)
    for name in ("desi", "gz2_ortho", "gz_hubble_ortho", "euclid", "gz_evo_v1", "gz_rings"):
        assert get_schema(f"{name}") is getattr(schemas, f"{name}_schema")
    with pytest.raises(AttributeError):
        schemas.no_such_schema  # noqa: B018


def test_dr5_is_zoobots_dr5_ortho_without_the_suffix() -> None:
    from zoobot.schemas.zoobot2 import project_column_names

    ortho = schemas.decals_dr5_ortho_schema
    mapping = project_column_names(ortho, "-dr5")
    assert [mapping[col] for col in ortho.label_cols] == get_schema("decals_dr5").label_cols
    assert mapping["bar-dr5_total-votes"] == "bar_total-votes"


@pytest.fixture
def catalog(tmp_path: Path) -> pd.DataFrame:
    paths = write_tiny_images(tmp_path, 5)
    return pd.DataFrame({"id_str": [f"g{i}" for i in range(5)], "file_loc": paths})


def test_predict_writes_csv_and_hdf5(catalog: pd.DataFrame, tmp_path: Path) -> None:
    pytest.importorskip("h5py")
    model = finetune.FinetuneableZoobotTree.load_from_checkpoint(FIXTURES / "tree.ckpt")
    cols = model.schema.label_cols
    kwargs = {"datamodule_kwargs": {"batch_size": 2, "resize_after_crop": 32}}
    frame = predict_on_catalog.predict(catalog, model, tmp_path / "p.csv", cols, **kwargs)
    assert list(frame.columns) == [*cols, "id_str"] and (frame[cols] > 1).all().all()
    assert pd.read_csv(tmp_path / "p.csv").shape == (5, 3)
    predict_on_catalog.predict(catalog, model, str(tmp_path / "p.hdf5"), cols, **kwargs)
    loaded = load_predictions.single_forward_pass_hdf5s_to_df(str(tmp_path / "p.hdf5"))
    np.testing.assert_allclose(loaded[cols].to_numpy(), frame[cols].to_numpy())
    assert loaded["id_str"].tolist() == catalog["id_str"].tolist()


def test_predict_representations(catalog: pd.DataFrame, tmp_path: Path) -> None:
    encoder = finetune.load_pretrained_zoobot(FIXTURES / "zoobot_tree.ckpt")
    model = representations.ZoobotEncoder(encoder=encoder)
    cols = [f"feat_{n}" for n in range(define_model.get_encoder_dim(encoder))]
    frame = predict_on_catalog.predict(
        catalog, model, tmp_path / "r.csv", cols, datamodule_kwargs={"resize_after_crop": 32}
    )
    assert frame.shape == (5, len(cols) + 1)


def test_hdf5_without_h5py_is_refused_not_written_as_csv(
    catalog: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)
    model = finetune.FinetuneableZoobotTree.load_from_checkpoint(FIXTURES / "tree.ckpt")
    with pytest.raises(ImportError, match="needs h5py"):
        predict_on_catalog.predict(catalog, model, tmp_path / "p.hdf5", ["a", "b"])
    with pytest.raises(ValueError, match=r"\.csv or \.hdf5"):
        predict_on_catalog.predict(catalog, model, tmp_path / "p.txt", ["a", "b"])
    assert not list(tmp_path.glob("p.*"))


def test_datamodule_setup_without_a_stage(catalog: pd.DataFrame) -> None:
    datamodule = CatalogDataModule(predict_catalog=catalog, batch_size=2, resize_size=32)
    datamodule.setup()
    assert len(datamodule.predict_dataloader()) == 3

import numpy as np
import pandas as pd
import pytest
import torch

from zoobot.data import CatalogDataModule, GalaxyDataset, evaluation_transform
from zoobot.finetune import FinetuneableZoobotClassifier, FinetuneableZoobotTree, get_trainer
from zoobot.predict import predict_on_catalog, predict_posterior, vote_fractions_from_samples
from zoobot.schemas import decals_dr5_schema

from .conftest import TINY_ENCODER

SIZE = 32


def _images(catalog):
    dataset = GalaxyDataset(catalog, transform=evaluation_transform(SIZE))
    return torch.stack([dataset[i]["image"] for i in range(len(dataset))])


def _full_reruns(model, images, n_samples):
    """The Zoobot 2.x way: the whole network once per MC sample, dropout on."""
    model.eval()
    model.head.train()
    with torch.no_grad():
        return torch.stack([model(images) for _ in range(n_samples)], dim=1).numpy()


def test_encoder_once_sampling_equals_full_reruns(tiny_catalog):
    model = FinetuneableZoobotTree(name=TINY_ENCODER, schema="decals_dr5", dropout_prob=0.5)
    images = _images(tiny_catalog)
    model.eval()
    torch.manual_seed(3)
    with torch.no_grad():
        exact = model.sample_head(model.encoder(images), 40).numpy()
    torch.manual_seed(3)
    np.testing.assert_allclose(exact, _full_reruns(model, images, 40), rtol=1e-5)

    once = predict_posterior(model, tiny_catalog, n_samples=40, resize_size=SIZE, progress=False)
    assert once.shape == (12, 40, 34)
    torch.manual_seed(4)
    independent = _full_reruns(model, _images(tiny_catalog), 40)
    # same distribution: per-answer means agree within Monte Carlo error of 40 draws
    spread = once.std(axis=1) / np.sqrt(40)
    assert np.all(np.abs(once.mean(axis=1) - independent.mean(axis=1)) < 5 * spread + 1e-4)
    assert once.std(axis=1).mean() > 0


def test_ensemble_posterior_stacks_models_times_passes(tiny_catalog, tmp_path):
    models = [FinetuneableZoobotTree(name=TINY_ENCODER, schema="decals_dr5") for _ in range(3)]
    samples = predict_posterior(models, tiny_catalog, n_samples=5, resize_size=SIZE, progress=False)
    assert samples.shape == (12, 15, 34)
    assert np.all((samples > 1) & (samples < 101))
    frame = predict_on_catalog(
        tiny_catalog,
        models,
        n_samples=5,
        resize_size=SIZE,
        save_loc=tmp_path / "p.parquet",
        progress=False,
        batch_size=5,
    )
    streamed = pd.read_parquet(tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(frame, streamed)
    assert list(frame["id_str"]) == list(tiny_catalog["id_str"])
    fractions = frame[[f"{c}_fraction" for c in decals_dr5_schema.label_cols]].to_numpy()
    for answers in decals_dr5_schema.question_slices:
        np.testing.assert_allclose(fractions[:, answers].sum(axis=1), 1.0, rtol=1e-6)


def test_bf16_encoder_keeps_vote_fractions_and_float32_samples(tiny_catalog):
    model = FinetuneableZoobotTree(name=TINY_ENCODER, schema="decals_dr5")
    common = {"n_samples": 1, "resize_size": SIZE, "progress": False}
    exact = predict_posterior(model, tiny_catalog, **common)
    mixed = predict_posterior(model, tiny_catalog, precision="bf16-mixed", **common)
    assert mixed.dtype == np.float32
    assert not np.array_equal(mixed, exact)
    slices = decals_dr5_schema.question_slices
    shift = vote_fractions_from_samples(mixed, slices) - vote_fractions_from_samples(exact, slices)
    assert np.abs(shift).max() < 0.02


def test_unknown_precision_is_a_clear_error(tiny_catalog):
    model = FinetuneableZoobotTree(name=TINY_ENCODER, schema="decals_dr5")
    with pytest.raises(ValueError, match="precision 'fp8'"):
        predict_posterior(model, tiny_catalog, precision="fp8", progress=False)


def test_vote_fractions_average_each_samples_expected_fraction():
    samples = np.array([[[1.0, 3.0, 2.0, 2.0], [3.0, 1.0, 2.0, 6.0]]])
    fractions = vote_fractions_from_samples(samples, [slice(0, 2), slice(2, 4)])
    np.testing.assert_allclose(fractions, [[0.5, 0.5, 0.375, 0.625]])


@pytest.mark.timeout(300)
def test_ddp_with_two_cpu_processes_trains_and_predicts(tiny_catalog, tmp_path):
    datamodule = CatalogDataModule(
        ["label"],
        train_catalog=tiny_catalog,
        val_catalog=tiny_catalog,
        batch_size=3,
        resize_size=SIZE,
    )
    model = FinetuneableZoobotClassifier(
        name=TINY_ENCODER, num_classes=2, n_blocks=-1, learning_rate=1e-2
    )
    before = [p.detach().clone() for p in model.parameters()]
    trainer = get_trainer(
        tmp_path,
        max_epochs=1,
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        enable_progress_bar=False,
    )
    trainer.fit(model, datamodule)
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    trained = FinetuneableZoobotClassifier.load_model(tmp_path / "checkpoints" / "best.ckpt")
    assert any(not torch.equal(a, b) for a, b in zip(before, trained.parameters()))
    distributed = predict_on_catalog(
        tiny_catalog,
        trained,
        resize_size=SIZE,
        batch_size=4,
        trainer_kwargs={"accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn"},
    )
    local = predict_on_catalog(tiny_catalog, trained, resize_size=SIZE, progress=False)
    pd.testing.assert_frame_equal(distributed, local, rtol=1e-5)

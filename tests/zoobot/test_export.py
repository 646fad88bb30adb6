"""Tests for zoobot.export and ``python -m zoobot export``: onnxruntime reproduces torch."""

import json

import lightning as L
import numpy as np
import pytest
import torch

from zoobot.__main__ import main
from zoobot.errors import ExportError
from zoobot.export import export_onnx, sample_exported_head
from zoobot.finetune import FinetuneableZoobotClassifier, FinetuneableZoobotTree
from zoobot.finetune.heads import DirichletHead
from zoobot.schemas import decals_dr5_schema

onnxruntime = pytest.importorskip("onnxruntime", reason="the export extra is not installed")

SIZE = 32
#: float32 through two runtimes: concentrations in (1, 101) agree to float32 rounding (~1e-5 abs)
TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny tree model saved as a Lightning checkpoint, then exported by the command line."""
    folder = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    model = FinetuneableZoobotTree(schema=decals_dr5_schema, name="test_resnet", image_size=SIZE)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(folder / "tree.ckpt")
    return folder, FinetuneableZoobotTree.load_model(folder / "tree.ckpt").eval()


def _run(path, **inputs):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() for k, v in inputs.items()})[0]


def test_the_command_writes_model_encoder_and_head_that_reproduce_torch(exported, capsys):
    folder, model = exported
    out = folder / "model.onnx"
    assert main(["export", "--checkpoint", str(folder / "tree.ckpt"), "--out", str(out)]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written == {
        "model": str(out),
        "encoder": str(folder / "model.encoder.onnx"),
        "head": str(folder / "model.head.onnx"),
    }
    images = torch.randn(3, 3, SIZE, SIZE)  # a batch size other than the export's
    with torch.no_grad():
        features = model.encoder(images)
        expected = model.predictions(model.head(features))
    np.testing.assert_allclose(_run(out, images=images), expected.numpy(), **TOLERANCE)
    np.testing.assert_allclose(
        _run(written["encoder"], images=images), features.numpy(), **TOLERANCE
    )
    keep = torch.ones_like(features)
    np.testing.assert_allclose(
        _run(written["head"], features=features, keep=keep), expected.numpy(), **TOLERANCE
    )
    meta = onnxruntime.InferenceSession(out).get_modelmeta().custom_metadata_map
    assert meta == {"task": "tree", "dropout_prob": "0.5", "image_size": "32", "channels": "3"}


def test_the_exported_head_with_a_dropout_mask_is_one_mc_dropout_pass(exported, tmp_path):
    _, model = exported
    paths = export_onnx(model, tmp_path / "tree.onnx")
    features = torch.randn(4, model.encoder.num_features)
    keep = (torch.rand_like(features) >= 0.5).float() / 0.5
    with torch.no_grad():
        expected = model.head.linear(features * keep) + 0.0
        expected = 1.0 + 100.0 * torch.sigmoid(expected)
    got = _run(paths["head"], features=features, keep=keep)
    np.testing.assert_allclose(got, expected.numpy(), **TOLERANCE)
    samples = sample_exported_head(paths["head"], features.numpy(), n_samples=6, seed=1)
    assert samples.shape == (4, 6, len(decals_dr5_schema.label_cols))
    assert samples.std(axis=1).min() > 0  # every galaxy's passes differ
    np.testing.assert_array_equal(
        samples, sample_exported_head(paths["head"], features.numpy(), 6, seed=1)
    )
    with torch.no_grad():
        dropout_off = model.head(features).numpy()
    single = sample_exported_head(paths["head"], features.numpy(), n_samples=1)
    np.testing.assert_allclose(single[:, 0], dropout_off, **TOLERANCE)


def test_an_output_path_without_onnx_suffix_is_refused(exported, tmp_path):
    _, model = exported
    with pytest.raises(ExportError, match="must end in .onnx"):
        export_onnx(model, tmp_path / "model.pt")


def test_a_head_with_a_hidden_layer_is_refused(tmp_path):
    model = FinetuneableZoobotTree(schema=decals_dr5_schema, name="test_resnet", image_size=SIZE)
    model.head = DirichletHead(model.encoder.num_features, 34, hidden=8)
    with pytest.raises(ExportError, match="has a hidden layer"):
        export_onnx(model, tmp_path / "model.onnx")


def test_a_classifier_exports_its_class_probabilities(tmp_path):
    torch.manual_seed(1)
    model = FinetuneableZoobotClassifier(name="test_resnet", num_classes=3, image_size=SIZE).eval()
    paths = export_onnx(model, tmp_path / "classifier.onnx", task="classifier")
    images = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        expected = model.predictions(model(images)).numpy()
    got = _run(paths["model"], images=images)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


def test_an_unknown_command_prints_usage_and_exits_2(capsys):
    assert main(["convert"]) == 2
    assert "usage: python -m zoobot export" in capsys.readouterr().err

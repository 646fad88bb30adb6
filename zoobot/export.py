"""ONNX export of a finetuned model: the whole model, and its encoder and head apart for MC dropout.

``export_onnx`` writes three files beside each other (for ``--out model.onnx``):

- ``model.onnx``: images ``[batch, channels, size, size]`` (float32, normalised as
  :func:`zoobot.data.evaluation_transform` does) -> ``predictions`` ``[batch, n_outputs]``, dropout
  off: Dirichlet concentrations for a tree, class probabilities for a classifier, values for a
  regressor (what ``FinetuneableZoobot*.predictions`` returns);
- ``model.encoder.onnx``: images -> ``features`` ``[batch, n_features]``;
- ``model.head.onnx``: ``features`` and ``keep`` ``[batch, n_features]`` -> ``predictions``.
  ``keep`` is the head's inverted-dropout mask: 0 with the dropout probability, else
  1 / (1 - p); all ones gives the dropout-off output. One MC-dropout pass is one run with a fresh
  mask, as
  :func:`sample_exported_head` does, so T passes cost one encoder run and T head runs, as in
  :func:`zoobot.predict.iter_posterior`.

Every file carries its task, dropout probability, image size and channels as ONNX metadata. The
exporter is torch's (``torch.onnx.export``, dynamo), with a dynamic batch axis; onnxruntime
reproduces torch's outputs to float32 rounding (tested within 1e-4 relative).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from zoobot import strict_json
from zoobot.errors import ExportError
from zoobot.finetune import (
    FinetuneableZoobotAbstract,
    FinetuneableZoobotClassifier,
    FinetuneableZoobotRegressor,
    FinetuneableZoobotTree,
)
from zoobot.logs import configure_logging

__all__ = ["TASKS", "export_onnx", "sample_exported_head"]

TASKS: dict[str, type[FinetuneableZoobotAbstract]] = {
    "tree": FinetuneableZoobotTree,
    "classifier": FinetuneableZoobotClassifier,
    "regressor": FinetuneableZoobotRegressor,
}
"""Task name -> the finetuned model class whose checkpoints ``--task`` loads."""


class _Whole(nn.Module):
    def __init__(self, model: FinetuneableZoobotAbstract) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.predictions(self.model.head(self.model.encoder(images)))


class _MaskedHead(nn.Module):
    """The head with its dropout replaced by an explicit inverted-dropout mask."""

    def __init__(self, model: FinetuneableZoobotAbstract) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        head = self.model.head
        return self.model.predictions(head.output(head.linear(head.body(features) * keep)))


def export_onnx(
    model: FinetuneableZoobotAbstract, out: str | Path, task: str = "tree"
) -> dict[str, Path]:
    """Write the model, its encoder and its head as ONNX files (see the module docstring).

    Args:
        model: a finetuned model with a zoobot head (dropout then a linear layer).
        out: the whole model's path, ending in ``.onnx``; the encoder and head go beside it.
        task: recorded in the files' metadata (a key of :data:`TASKS`).

    Returns:
        ``{"model": ..., "encoder": ..., "head": ...}`` paths written.

    Raises:
        ExportError: if ``out`` does not end in ``.onnx`` or the head has a hidden layer.
    """
    out = Path(out)
    if out.suffix != ".onnx":
        raise ExportError(f"the ONNX output path must end in .onnx, got {out}")
    head = model.head
    if not isinstance(getattr(head, "body", None), nn.Identity):
        raise ExportError(
            f"{type(head).__name__} has a hidden layer: only dropout + linear heads export"
        )
    model = model.cpu().eval()
    channels, size = int(model.hparams.channels), int(model.hparams.image_size)
    images = torch.zeros(2, channels, size, size)
    with torch.no_grad():
        features = model.encoder(images)
    metadata = {
        "task": task,
        "dropout_prob": str(float(head.dropout.p)),
        "image_size": str(size),
        "channels": str(channels),
    }
    paths = {
        "model": out,
        "encoder": out.with_suffix(".encoder.onnx"),
        "head": out.with_suffix(".head.onnx"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    _export(_Whole(model), (images,), ["images"], paths["model"], metadata)
    _export(model.encoder, (images,), ["images"], paths["encoder"], metadata, "features")
    _export(
        _MaskedHead(model),
        (features, torch.ones_like(features)),
        ["features", "keep"],
        paths["head"],
        metadata,
    )
    return paths


def _export(
    module: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    input_names: list[str],
    path: Path,
    metadata: dict[str, str],
    output_name: str = "predictions",
) -> None:
    """One module to ONNX with a dynamic batch axis, then its metadata written in."""
    import onnx

    batch = torch.export.Dim("batch")
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        # the exporter reports progress on stdout, and a shared batch axis draws a warning
        warnings.filterwarnings("ignore", message=".*shares the same shape constraints.*")
        program = torch.onnx.export(
            module.eval(),
            inputs,
            input_names=input_names,
            output_names=[output_name],
            dynamic_shapes=tuple({0: batch} for _ in inputs),
            dynamo=True,
            verbose=False,
        )
    program.save(str(path))
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, metadata)
    onnx.save(proto, str(path))


def sample_exported_head(
    head_path: str | Path, features: np.ndarray, n_samples: int, seed: int = 0
) -> np.ndarray:
    """MC-dropout samples of an exported head, with onnxruntime: a fresh mask per galaxy and pass.

    Args:
        head_path: the ``*.head.onnx`` file :func:`export_onnx` wrote.
        features: [batch, n_features] float32 output of the exported encoder.
        n_samples: passes T (1 with dropout off when ``n_samples == 1``, as zoobot.predict).
        seed: seeds the masks (numpy).

    Returns:
        [batch, n_samples, n_outputs] predictions.

    Raises:
        ExportError: if the file has no ``dropout_prob`` metadata.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(str(head_path), providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    if "dropout_prob" not in props:
        raise ExportError(f"{head_path} carries no dropout_prob: not a head export_onnx wrote")
    probability = float(props["dropout_prob"]) if n_samples > 1 else 0.0
    features = np.asarray(features, dtype=np.float32)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_samples):
        keep = (rng.random(features.shape) >= probability) / (1.0 - probability)
        inputs = {"features": features, "keep": keep.astype(np.float32)}
        samples.append(session.run(None, inputs)[0])
    return np.stack(samples, axis=1)


def main(argv: list[str] | None = None) -> int:
    """``python -m zoobot export``: a checkpoint to ONNX; the paths written, as JSON, on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m zoobot export", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="finetuned .ckpt")
    parser.add_argument("--out", required=True, type=Path, help="the whole model's .onnx path")
    parser.add_argument("--task", default="tree", choices=list(TASKS), help="the model's task")
    args = parser.parse_args(argv)
    configure_logging("INFO")
    if args.out.suffix != ".onnx":
        parser.error(f"--out must end in .onnx, got {args.out}")
    model = TASKS[args.task].load_model(args.checkpoint)
    paths = export_onnx(model, args.out, args.task)
    print(strict_json.dumps({name: str(path) for name, path in paths.items()}))
    return 0

"""Finetuning on vote counts over a whole decision tree, with the Dirichlet-multinomial loss."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from zoobot.finetune.base import FinetuneableZoobotAbstract
from zoobot.finetune.heads import DirichletHead
from zoobot.losses import tree_nll
from zoobot.schemas import Schema, get_schema
from zoobot.schemas.builtin import plain_schema

__all__ = ["FinetuneableZoobotTree"]


class FinetuneableZoobotTree(FinetuneableZoobotAbstract):
    """Predict Dirichlet concentrations for every answer of a schema; labels are vote counts.

    The loss of a galaxy is the sum of its questions' Dirichlet-multinomial losses, as in
    pretraining (no hidden 1/n_questions scaling, unlike Zoobot 2.x finetuning).

    Args:
        schema: a :class:`Schema`, the name of a built-in one, or a :meth:`Schema.to_dict` dict.
        **kwargs: see :class:`FinetuneableZoobotAbstract`.
    """

    def __init__(self, schema: Schema | str | dict[str, Any] = "decals_dr5", **kwargs: Any) -> None:
        self.schema = _resolve_schema(schema)
        # save_hyperparameters reads this frame's ``schema``: plain data that every logger takes
        schema = plain_schema(self.schema)
        super().__init__(**kwargs)

    def label_columns(self) -> list[str]:
        """A batch without ``label`` carries one vote-count column per answer."""
        return self.schema.label_cols

    def create_head(self, in_features: int, dropout_prob: float) -> nn.Module:
        return DirichletHead(in_features, len(self.schema.label_cols), dropout_prob)

    def loss_per_question(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """[batch, n_questions] losses."""
        return tree_nll(labels, outputs, self.schema.question_slices)

    def loss_per_galaxy(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.loss_per_question(outputs, labels).sum(dim=1)

    def log_metrics(self, outputs: torch.Tensor, labels: torch.Tensor, stage: str) -> None:
        if stage == "train":
            return
        per_question = self.loss_per_question(outputs, labels).mean(dim=0)
        for name, value in zip(self.schema.question_names, per_question):
            self.log(f"{stage}/{name}_loss", value, batch_size=len(outputs), sync_dist=True)

    def predictions(self, outputs: torch.Tensor) -> torch.Tensor:
        """Dirichlet concentrations, [batch, n_answers]."""
        return outputs


def _resolve_schema(schema: Schema | str | dict[str, Any]) -> Schema:
    if isinstance(schema, Schema):
        return schema
    if isinstance(schema, str):
        return get_schema(schema)
    return Schema.from_dict(schema)

"""Zoobot 2.x's ``zoobot.pytorch.training.finetune`` (compatibility; see :mod:`zoobot.zoobot2`)."""

from zoobot.finetune.base import FinetuneableZoobotAbstract
from zoobot.zoobot2.models import (
    FinetuneableZoobotClassifier,
    FinetuneableZoobotRegressor,
    FinetuneableZoobotTree,
    LinearHead,
    download_from_name,
    get_trainer,
    load_pretrained_zoobot,
)

__all__ = [
    "FinetuneableZoobotAbstract",
    "FinetuneableZoobotClassifier",
    "FinetuneableZoobotRegressor",
    "FinetuneableZoobotTree",
    "LinearHead",
    "download_from_name",
    "get_trainer",
    "load_pretrained_zoobot",
]

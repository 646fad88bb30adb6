"""Finetune pretrained Zoobot encoders: classifiers, regressors and whole decision trees."""

from zoobot.finetune.base import FinetuneableZoobotAbstract
from zoobot.finetune.classifier import FinetuneableZoobotClassifier
from zoobot.finetune.regressor import FinetuneableZoobotRegressor
from zoobot.finetune.trainer import RestoreBestWeights, get_trainer
from zoobot.finetune.tree import FinetuneableZoobotTree
from zoobot.predict import predict_on_catalog

__all__ = [
    "FinetuneableZoobotAbstract",
    "FinetuneableZoobotClassifier",
    "FinetuneableZoobotRegressor",
    "FinetuneableZoobotTree",
    "RestoreBestWeights",
    "get_trainer",
    "predict_on_catalog",
]

"""Zoobot 2.x's ``zoobot.pytorch.predictions.predict_on_catalog`` (compatibility)."""

from zoobot.zoobot2.predictions import predict

__all__ = ["predict"]

"""Zoobot 2.x's ``zoobot.pytorch.training.representations`` (compatibility)."""

from zoobot.zoobot2.models import ZoobotEncoder

__all__ = ["ZoobotEncoder"]

"""Zoobot 2.x's ``zoobot.pytorch.estimators.define_model`` (compatibility)."""

from zoobot.zoobot2.models import ZoobotTree, get_encoder_dim

__all__ = ["ZoobotTree", "get_encoder_dim"]

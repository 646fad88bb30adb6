"""Encoders for Zoobot models."""

from zoobot.models.encoders import create_encoder, get_encoder_blocks, load_encoder_state
from zoobot.models.pretrained import get_pretrained_weights, list_pretrained

__all__ = [
    "create_encoder",
    "get_encoder_blocks",
    "get_pretrained_weights",
    "list_pretrained",
    "load_encoder_state",
]

"""Zoobot: decision trees, the Dirichlet-multinomial loss, finetuning and prediction for Galaxy Zoo.

Importing ``zoobot`` loads only the torch-free schemas; the torch parts live in submodules
(``zoobot.finetune``, ``zoobot.predict``, ``zoobot.losses``, ``zoobot.models``, ``zoobot.data``).
"""

from zoobot.errors import ZoobotError
from zoobot.schemas import Schema, decals_dr5_schema, gz2_schema, rings_schema

__all__ = ["Schema", "ZoobotError", "decals_dr5_schema", "gz2_schema", "rings_schema"]

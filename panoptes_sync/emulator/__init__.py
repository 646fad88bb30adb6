"""A faithful local Panoptes (Zooniverse API) emulator: HTTP, SQLite state, simulated volunteers."""

from panoptes_sync.emulator.answers import AnswerModel, RandomTreeAnswerModel
from panoptes_sync.emulator.app import create_app
from panoptes_sync.emulator.database import EmulatorClock
from panoptes_sync.emulator.server import EmulatorServer, serve_emulator
from panoptes_sync.emulator.settings import EmulatorSettings, FaultRule, parse_fault_rule

__all__ = [
    "AnswerModel",
    "EmulatorClock",
    "EmulatorServer",
    "EmulatorSettings",
    "FaultRule",
    "RandomTreeAnswerModel",
    "create_app",
    "parse_fault_rule",
    "serve_emulator",
]

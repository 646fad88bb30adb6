"""Logging of the command lines: one stderr handler with timestamps, each message printed once.

Entry points call `configure_logging` first thing. It replaces whatever an import configured
before (``panoptes_client`` calls ``logging.basicConfig`` when imported, without timestamps).
Lightning gives its ``lightning`` logger a handler of its own when imported, so its lines would be
printed twice; `route_lightning_logs`, called where the project builds a Trainer, sends them
through the root handler only. Lightning's advertising tips are dropped.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["LOG_FORMAT", "LOG_LEVELS", "configure_logging", "route_lightning_logs"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""Every entry point's log line: time, level, logger, message."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""Level names an entry point's ``--log-level`` accepts (any case)."""

_LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
_ADVERTISING = "💡 Tip:"


class _DropAdvertising(logging.Filter):
    """Drops Lightning's tips that advertise its cloud products."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_ADVERTISING)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (tests and daemons replace it)."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(_DropAdvertising())
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    @property
    def stream(self):  # noqa: D102
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def configure_logging(level: str | int = "INFO") -> None:
    """One stderr handler with timestamps on the root logger, replacing any earlier set-up.

    Args:
        level: a level name (``"INFO"``, any case) or number.

    Raises:
        ValueError: for an unknown level name.
    """
    root = logging.getLogger()
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.addHandler(_StderrHandler())
    route_lightning_logs()


def route_lightning_logs() -> None:
    """Send Lightning's log lines through the root handler only (call after importing lightning).

    Idempotent; without a root handler (a library used without `configure_logging`) it leaves
    Lightning's own handlers in place, so its lines are still shown.
    """
    root_handlers = logging.getLogger().handlers
    if not root_handlers:
        return
    for handler in root_handlers:
        if not any(isinstance(f, _DropAdvertising) for f in handler.filters):
            handler.addFilter(_DropAdvertising())
    for name in _LIGHTNING_LOGGERS:
        lightning_logger = logging.getLogger(name)
        for handler in list(lightning_logger.handlers):
            lightning_logger.removeHandler(handler)
        lightning_logger.propagate = True

"""Errors raised by the prioritiser.

Hierarchy::

    PrioritiserError
    ├── AcquisitionInputError(ValueError)     samples, scores or weights: bad shape or value
    ├── UnknownAcquisitionError(LookupError)  an acquisition name is not registered
    ├── SelectionError(ValueError)            a selection request cannot be met as asked
    ├── DaemonLockedError(RuntimeError)       another live daemon instance holds the lock
    ├── CycleStopped                          a stop was asked; the cycle ended at a safe point
    └── CycleFailed                           a cycle failed (its stage and the error)

``ConfigError`` is panoptes_sync's, re-exported: one class for an invalid setting, config file or
command-line value in either package (both resolve settings through one resolver).
"""

from __future__ import annotations

from panoptes_sync.errors import ConfigError

__all__ = [
    "AcquisitionInputError",
    "ConfigError",
    "CycleFailed",
    "CycleStopped",
    "DaemonLockedError",
    "PrioritiserError",
    "SelectionError",
    "UnknownAcquisitionError",
]


class PrioritiserError(Exception):
    """Root of every error the prioritiser raises on purpose."""


class AcquisitionInputError(PrioritiserError, ValueError):
    """Posterior samples, per-question scores or question weights have a bad shape or value."""


class UnknownAcquisitionError(PrioritiserError, LookupError):
    """An acquisition function was requested by a name that is not registered."""


class SelectionError(PrioritiserError, ValueError):
    """A batch selection was asked with an invalid size, method or fraction."""


class DaemonLockedError(PrioritiserError, RuntimeError):
    """Another live instance of the daemon holds the lock."""


class CycleStopped(PrioritiserError):
    """A stop (SIGTERM, SIGINT) was asked; the running cycle ended at a safe point."""


class CycleFailed(PrioritiserError):
    """A cycle failed; the message names its stage and the underlying error.

    Attributes:
        cycle_id: the cycle's row.
        stage: the stage that failed.
    """

    def __init__(self, cycle_id: int, stage: str, recorded: str, error: str) -> None:
        super().__init__(
            f"cycle {cycle_id} failed in stage {stage!r} (after {recorded!r}): {error}"
        )
        self.cycle_id = cycle_id
        self.stage = stage

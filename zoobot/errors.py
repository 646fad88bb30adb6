"""Errors and warnings raised by zoobot.

Hierarchy::

    ZoobotError
    ├── SchemaError(ValueError)            a decision tree or its label columns are inconsistent
    ├── CatalogError(ValueError)           a catalogue lacks columns or holds bad values
    ├── ImageLoadError(OSError)            images are missing or unreadable (names every file)
    ├── EncoderNotFoundError(LookupError)  an encoder name or checkpoint cannot be resolved
    ├── CheckpointNotFoundError(FileNotFoundError)
    ├── UnsafeCheckpointError(ValueError)  a checkpoint holds objects outside the allow-list
    ├── HubUnavailableError(ConnectionError)  hf_hub weights requested while offline
    └── ExportError(ValueError)            a model cannot be exported to ONNX as asked

    ZoobotWarning(UserWarning)
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "CheckpointNotFoundError",
    "EncoderNotFoundError",
    "ExportError",
    "HubUnavailableError",
    "ImageLoadError",
    "SchemaError",
    "UnsafeCheckpointError",
    "ZoobotError",
    "ZoobotWarning",
]


class ZoobotError(Exception):
    """Root of every error zoobot raises on purpose."""


class SchemaError(ZoobotError, ValueError):
    """A decision tree, or the label columns built from it, is inconsistent."""


class CatalogError(ZoobotError, ValueError):
    """A catalogue lacks required columns or holds invalid values."""


class ImageLoadError(ZoobotError, OSError):
    """One or more images are missing or cannot be decoded.

    Attributes:
        problems: ``{path: reason}`` for every image that failed.
    """

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = dict(problems)
        listed = "\n".join(f"  {path}: {reason}" for path, reason in self.problems.items())
        super().__init__(
            f"{len(self.problems)} image(s) missing or unreadable:\n{listed}\n"
            "fix or remove these rows of the catalogue (column 'file_loc')"
        )


class EncoderNotFoundError(ZoobotError, LookupError):
    """An encoder name is neither a timm architecture nor a known checkpoint."""


class CheckpointNotFoundError(ZoobotError, FileNotFoundError):
    """A checkpoint path does not exist."""


class UnsafeCheckpointError(ZoobotError, ValueError):
    """A checkpoint holds objects outside the allow-list; it was not unpickled."""


class HubUnavailableError(ZoobotError, ConnectionError):
    """Weights were requested from the Hugging Face hub, which cannot be reached."""


class ExportError(ZoobotError, ValueError):
    """A model cannot be exported as asked, or a file is not one ``zoobot.export`` wrote."""


class ZoobotWarning(UserWarning):
    """Something the user should know about, that does not stop the work."""

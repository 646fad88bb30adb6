"""The one loader for every user-given checkpoint: ``weights_only`` plus an explicit allow-list.

Nothing in a checkpoint is ever unpickled with arbitrary globals. ``torch.load(weights_only=True)``
admits tensors, containers and primitives; the only other globals admitted are the three classes
that Zoobot 2.x pickles into a ``FinetuneableZoobotTree``'s hyper-parameters
(``zoobot.shared.schemas.Schema``/``Question``/``Answer``). Those names are mapped to inert record
classes defined here (their pickled attributes are stored, no code of theirs runs) and turned into
plain data by :func:`plain_schema_description`. A file that names anything else fails with
:class:`~zoobot.errors.UnsafeCheckpointError`, naming the file and the refused global, before any
of its objects is built.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import torch

from zoobot.errors import CheckpointNotFoundError, UnsafeCheckpointError

__all__ = ["ZOOBOT2_SCHEMA_GLOBALS", "load_checkpoint", "plain_schema_description"]

logger = logging.getLogger(__name__)


class _PickledRecord:
    """An inert stand-in for a pickled object: holds its attributes, runs none of its code."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise UnsafeCheckpointError(f"unexpected pickled state {type(state).__name__}")
        self.__dict__.update(state)


class PickledZoobot2Schema(_PickledRecord):
    """Stands in for ``zoobot.shared.schemas.Schema`` (Zoobot 2.x) while loading."""


class PickledZoobot2Question(_PickledRecord):
    """Stands in for ``zoobot.shared.schemas.Question`` (Zoobot 2.x) while loading."""


class PickledZoobot2Answer(_PickledRecord):
    """Stands in for ``zoobot.shared.schemas.Answer`` (Zoobot 2.x) while loading."""


#: The only non-torch globals a checkpoint may name, each mapped to an inert record class.
ZOOBOT2_SCHEMA_GLOBALS = [
    (PickledZoobot2Schema, "zoobot.shared.schemas.Schema"),
    (PickledZoobot2Question, "zoobot.shared.schemas.Question"),
    (PickledZoobot2Answer, "zoobot.shared.schemas.Answer"),
]


def load_checkpoint(source: str | Path | IO[bytes], map_location: Any = "cpu") -> dict[str, Any]:
    """Load a checkpoint (Lightning ``.ckpt`` or a ``torch.save`` file) without running its code.

    Args:
        source: the file, or an open binary stream.
        map_location: as for :func:`torch.load`.

    Returns:
        The checkpoint's contents; Zoobot 2.x pickled schemas come back as inert records (see
        :func:`plain_schema_description`).

    Raises:
        CheckpointNotFoundError: there is no file at ``source``.
        UnsafeCheckpointError: the file names a global outside the allow-list, or is not a
            checkpoint at all.
    """
    where = source if isinstance(source, (str, Path)) else getattr(source, "name", "<stream>")
    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise CheckpointNotFoundError(f"no checkpoint at {source}; check the path")
    try:
        with torch.serialization.safe_globals(ZOOBOT2_SCHEMA_GLOBALS):
            checkpoint = torch.load(source, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as error:
        reason = _refusal_reason(error)
        raise UnsafeCheckpointError(
            f"refused to load {where}: it is not a checkpoint of plain tensors and data "
            f"({reason}). Checkpoints are never unpickled with arbitrary code; if you trust this "
            "file, re-save its state_dict and hyper-parameters as plain data"
        ) from None
    if not isinstance(checkpoint, dict):
        raise UnsafeCheckpointError(
            f"{where} holds a {type(checkpoint).__name__}, not a checkpoint dictionary"
        )
    return checkpoint


def _refusal_reason(error: BaseException) -> str:
    """The unpickler's own line (which global it refused), without torch's advice to unpickle."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line or "WeightsUnpickler error:" in line or "reduce" in line:
            return line.removeprefix("WeightsUnpickler error:").strip()
    return lines[-1] if lines else type(error).__name__


def plain_schema_description(record: PickledZoobot2Schema) -> dict[str, Any]:
    """Zoobot 2.x's pickled ``Schema`` as plain data: question-answer pairs and dependencies.

    Args:
        record: the stand-in :func:`load_checkpoint` built for a pickled 2.x schema.

    Returns:
        ``{"question_answer_pairs": {...}, "dependencies": {...}}`` in Zoobot 2.x's own form
        (answer suffixes such as ``"_smooth"``).

    Raises:
        UnsafeCheckpointError: the record lacks those two plain mappings.
    """
    pairs = getattr(record, "question_answer_pairs", None)
    dependencies = getattr(record, "dependencies", None)
    if not isinstance(pairs, Mapping) or not isinstance(dependencies, Mapping):
        raise UnsafeCheckpointError(
            "a pickled Zoobot 2.x schema lacks question_answer_pairs/dependencies mappings"
        )
    plain_pairs = {str(q): [str(a) for a in answers] for q, answers in pairs.items()}
    plain_dependencies = {
        str(q): None if parent is None else str(parent) for q, parent in dependencies.items()
    }
    return {"question_answer_pairs": plain_pairs, "dependencies": plain_dependencies}

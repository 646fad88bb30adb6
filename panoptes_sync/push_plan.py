"""Planning a push: the ranked list read and checked, and every write it will make, in order.

Nothing here talks to Zooniverse; `panoptes_sync.push.execute_push` carries a plan out. Local
images are checked while planning, before any request (dry runs included): each must resolve,
symlinks followed, inside one of the allowed image roots (the ranked CSV's folder, or a root the
caller names) and must decode as an image.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from panoptes_sync.errors import PushError

__all__ = [
    "LINK_BATCH",
    "MODES",
    "PushAction",
    "PushItem",
    "PushPlan",
    "plan_push",
    "read_ranked_list",
]

MODES = ("new_set", "reprioritise")
LINK_BATCH = 100


@dataclass(frozen=True)
class PushItem:
    """One ranked galaxy to push.

    Attributes:
        priority: Set-member priority; Designator serves lower values first.
        subject_id: An existing Panoptes subject, or None to create one.
        image_path: Local image to upload when creating a subject.
        image_url: Remote image URL to use (no upload) when creating a subject.
        metadata: Extra subject metadata for a created subject.
    """

    priority: float
    subject_id: int | None = None
    image_path: str | None = None
    image_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PushAction:
    """One planned write; ``step`` is its stable identity within the batch."""

    step: str
    action: str
    subject_id: int | None = None
    subject_set_id: int | None = None
    priority: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PushPlan:
    """Everything a push will do, in order."""

    batch_id: str
    project_id: int
    workflow_id: int
    mode: str
    actions: tuple[PushAction, ...]
    subjects: int
    dropped: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for ``--dry-run`` output."""
        return {
            "batch_id": self.batch_id,
            "project_id": self.project_id,
            "workflow_id": self.workflow_id,
            "mode": self.mode,
            "subjects": self.subjects,
            "dropped_over_cap": self.dropped,
            "actions": [asdict(a) for a in self.actions],
        }


def read_ranked_list(path: str | Path) -> list[PushItem]:
    """Read a ranked list CSV: one row per galaxy, most important first.

    Columns: ``priority`` (required) and at least one of ``subject_id``, ``image_path``,
    ``image_url``; any other column becomes subject metadata of created subjects. Relative
    image paths are resolved against the CSV's folder (the one image root `plan_push` then
    allows by default, with any the caller adds).

    Args:
        path: The CSV file.

    Returns:
        The items, in file order.

    Raises:
        PushError: The file is missing or a row is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise PushError(f"ranked list {path} does not exist; pass a CSV with a priority column")
    known = {"priority", "subject_id", "image_path", "image_url"}
    items = []
    with path.open(newline="") as handle:
        for line, row in enumerate(csv.DictReader(handle), start=2):
            try:
                priority = float(row["priority"])
                subject_id = int(row["subject_id"]) if row.get("subject_id") else None
            except (KeyError, TypeError, ValueError) as error:
                raise PushError(
                    f"{path}:{line}: needs a numeric priority and an integer subject_id or none"
                ) from error
            image_path = row.get("image_path") or None
            if image_path and not Path(image_path).is_absolute():
                image_path = str(path.parent / image_path)
            metadata = {
                k: v for k, v in row.items() if k not in known and k and v not in (None, "")
            }
            items.append(
                PushItem(priority, subject_id, image_path, row.get("image_url") or None, metadata)
            )
    return items


def _batch_id(payload: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
    return "push-" + digest.hexdigest()[:16]


def _chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def check_image(index: int, image_path: str, roots: Sequence[Path]) -> None:
    """Refuse an image outside every root (symlinks followed) or one that does not decode.

    Raises:
        PushError: naming the item and the path.
    """
    path = Path(image_path).resolve()
    if not any(path.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(root) for root in roots) or "none given"
        raise PushError(
            f"item {index}: image {image_path} resolves to {path}, outside the allowed image "
            f"roots ({allowed}); keep images beside the ranked CSV or name their root"
        )
    if not path.is_file():
        raise PushError(f"item {index}: image {image_path} does not exist")
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise PushError(f"item {index}: {image_path} is not a readable image ({error})") from error


def _validate(
    items: Sequence[PushItem], mode: str, subject_set_id: int | None, roots: Sequence[Path]
) -> None:
    if mode not in MODES:
        raise PushError(f"push mode {mode!r} is unknown; use one of {', '.join(MODES)}")
    if mode == "reprioritise" and subject_set_id is None:
        raise PushError("mode 'reprioritise' needs subject_set_id (the set whose members change)")
    for index, item in enumerate(items):
        if item.subject_id is None and mode == "reprioritise":
            raise PushError(f"item {index} has no subject_id; reprioritise needs existing ids")
        if item.subject_id is None and not (item.image_path or item.image_url):
            raise PushError(f"item {index} has neither subject_id, image_path nor image_url")
        if item.image_path:
            check_image(index, item.image_path, roots)
    ids = [i.subject_id for i in items if i.subject_id is not None]
    if len(ids) != len(set(ids)):
        raise PushError("the ranked list names a subject_id twice; deduplicate it first")


def _new_set_actions(kept: Sequence[PushItem], workflow_id: int, name: str) -> Iterator[PushAction]:
    yield PushAction("set", "create_subject_set", detail={"display_name": name})
    for index, item in enumerate(kept):
        if item.subject_id is None:
            detail = {
                "item": index,
                "image_path": item.image_path,
                "image_url": item.image_url,
                "metadata": item.metadata,
            }
            yield PushAction(
                f"subject:{index}", "create_subject", priority=item.priority, detail=detail
            )
    indexed = [[index, item.subject_id] for index, item in enumerate(kept)]
    for number, chunk in enumerate(_chunks(indexed, LINK_BATCH)):
        yield PushAction(f"link:{number}", "link_subjects", detail={"items": list(chunk)})
    yield PushAction("workflow", "link_subject_set", detail={"workflow_id": workflow_id})


def _update_actions(
    kept: Sequence[PushItem],
    subject_set_id: int | None,
    retire_subject_ids: Sequence[int],
    workflow_id: int,
) -> Iterator[PushAction]:
    for item in kept:
        if item.subject_id is not None:
            yield PushAction(
                f"priority:{item.subject_id}",
                "set_priority",
                subject_id=item.subject_id,
                subject_set_id=subject_set_id,
                priority=item.priority,
            )
    for number, chunk in enumerate(_chunks(list(retire_subject_ids), LINK_BATCH)):
        detail = {"subject_ids": [int(s) for s in chunk], "workflow_id": workflow_id}
        yield PushAction(f"retire:{number}", "retire", detail=detail)


def plan_push(
    items: Sequence[PushItem],
    project_id: int,
    workflow_id: int,
    mode: str = "new_set",
    subject_set_id: int | None = None,
    retire_subject_ids: Sequence[int] = (),
    max_subjects: int = 100,
    set_name: str | None = None,
    batch_id: str | None = None,
    image_roots: Sequence[str | Path] = (),
) -> PushPlan:
    """Plan a push; the top ``max_subjects`` items of the ranked list are kept.

    Args:
        items: Ranked galaxies, most important first.
        project_id: Panoptes project.
        workflow_id: Workflow the subjects are served in.
        mode: ``new_set`` or ``reprioritise``.
        subject_set_id: The set to reprioritise (mode ``reprioritise``).
        retire_subject_ids: Subjects to retire from the workflow.
        max_subjects: Cap on subjects per push; the rest of the list is dropped.
        set_name: Display name of the new subject set (default: derived from the batch id).
        batch_id: Identity of the push; by default a hash of the plan's inputs, so re-running
            the same push resumes it.
        image_roots: Folders local images must resolve inside (the ranked CSV's folder, say);
            every ``image_path`` is checked against them and decoded, before any request.

    Returns:
        The plan.

    Raises:
        PushError: The request is empty or malformed, or names a missing, escaping or
            undecodable image.
    """
    if max_subjects < 1:
        raise PushError(f"max_subjects={max_subjects} must be >= 1")
    if not items and not retire_subject_ids:
        raise PushError("nothing to push: the ranked list and the retire list are empty")
    _validate(items, mode, subject_set_id, [Path(root).resolve() for root in image_roots])
    kept = list(items[:max_subjects])
    batch_id = batch_id or _batch_id(
        {
            "project": project_id,
            "workflow": workflow_id,
            "mode": mode,
            "set": subject_set_id,
            "items": [asdict(i) for i in kept],
            "retire": list(retire_subject_ids),
        }
    )
    actions: list[PushAction] = []
    if mode == "new_set" and kept:
        name = set_name or f"priority batch {batch_id}"
        actions += _new_set_actions(kept, workflow_id, name)
    actions += _update_actions(kept, subject_set_id, retire_subject_ids, workflow_id)
    return PushPlan(
        batch_id,
        project_id,
        workflow_id,
        mode,
        tuple(actions),
        subjects=len(kept),
        dropped=max(0, len(items) - len(kept)),
    )

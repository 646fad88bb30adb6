"""Push a ranked list of galaxies to Zooniverse as prioritised subjects, resumably.

Two modes, both planned first (`plan_push`) and then executed (`execute_push`):

- ``new_set``: create a subject set for the batch, create the subjects that do not exist
  yet (media upload, ``#priority`` in their metadata), link every subject of the batch with
  one ``POST /subject_sets/{id}/links/subjects`` per 100 (which copies ``#priority`` into
  the set-member priority), link the set to the workflow, and PUT the set-member priority
  of pre-existing subjects, whose metadata ``#priority`` is stale.
- ``reprioritise``: PUT a new priority on existing members of a subject set (If-Match).

Either mode can retire subjects. Every action is recorded in the ``pushes`` table as
``planned`` before it is sent and ``done`` after, with the requests it cost; creating a
subject also records that it was attempted and the id it got. A re-run of the same plan
(same ``batch_id``) skips what is done and, for a create that crashed in flight, finds
the subject by its ``#push_key`` metadata instead of creating it twice. ``dry_run`` records
the plan (``dry_run=True``) and sends nothing to Zooniverse.

Designator serves the **lowest** priority first; callers choose the priority values.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from panoptes_sync.client import ResilientPanoptes
from panoptes_sync.errors import PanoptesSyncError, PushError
from panoptes_sync.push_steps import PushRun
from panoptes_sync.store import list_pushes, record_push, session_scope

logger = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class PushReport:
    """Outcome of `execute_push`."""

    batch_id: str
    dry_run: bool
    subjects: int
    created: int
    skipped_done: int
    subject_set_id: int | None
    requests: int

    @property
    def requests_per_subject(self) -> float:
        """HTTP requests (uploads and retries included) per pushed subject."""
        return self.requests / self.subjects if self.subjects else 0.0


def read_ranked_list(path: str | Path) -> list[PushItem]:
    """Read a ranked list CSV: one row per galaxy, most important first.

    Columns: ``priority`` (required) and at least one of ``subject_id``, ``image_path``,
    ``image_url``; any other column becomes subject metadata of created subjects. Relative
    image paths are resolved against the CSV's folder.

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


def _validate(items: Sequence[PushItem], mode: str, subject_set_id: int | None) -> None:
    if mode not in MODES:
        raise PushError(f"push mode {mode!r} is unknown; use one of {', '.join(MODES)}")
    if mode == "reprioritise" and subject_set_id is None:
        raise PushError("mode 'reprioritise' needs subject_set_id (the set whose members change)")
    for index, item in enumerate(items):
        if item.subject_id is None and mode == "reprioritise":
            raise PushError(f"item {index} has no subject_id; reprioritise needs existing ids")
        if item.subject_id is None and not (item.image_path or item.image_url):
            raise PushError(f"item {index} has neither subject_id, image_path nor image_url")
        if item.image_path and not Path(item.image_path).is_file():
            raise PushError(f"item {index}: image {item.image_path} does not exist")
    ids = [i.subject_id for i in items if i.subject_id is not None]
    if len(ids) != len(set(ids)):
        raise PushError("the ranked list names a subject_id twice; deduplicate it first")


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

    Returns:
        The plan.

    Raises:
        PushError: The request is empty, malformed or names a missing image.
    """
    if max_subjects < 1:
        raise PushError(f"max_subjects={max_subjects} must be >= 1")
    if not items and not retire_subject_ids:
        raise PushError("nothing to push: the ranked list and the retire list are empty")
    _validate(items, mode, subject_set_id)
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
        actions.append(PushAction("set", "create_subject_set", detail={"display_name": name}))
        for index, item in enumerate(kept):
            if item.subject_id is None:
                actions.append(
                    PushAction(
                        f"subject:{index}",
                        "create_subject",
                        priority=item.priority,
                        detail={
                            "item": index,
                            "image_path": item.image_path,
                            "image_url": item.image_url,
                            "metadata": item.metadata,
                        },
                    )
                )
        indexed = [[index, item.subject_id] for index, item in enumerate(kept)]
        for number, chunk in enumerate(_chunks(indexed, LINK_BATCH)):
            actions.append(
                PushAction(f"link:{number}", "link_subjects", detail={"items": list(chunk)})
            )
        actions.append(
            PushAction("workflow", "link_subject_set", detail={"workflow_id": workflow_id})
        )
    for item in kept:
        if item.subject_id is not None:
            actions.append(
                PushAction(
                    f"priority:{item.subject_id}",
                    "set_priority",
                    subject_id=item.subject_id,
                    subject_set_id=subject_set_id,
                    priority=item.priority,
                )
            )
    for number, chunk in enumerate(_chunks(list(retire_subject_ids), LINK_BATCH)):
        actions.append(
            PushAction(
                f"retire:{number}",
                "retire",
                detail={"subject_ids": [int(s) for s in chunk], "workflow_id": workflow_id},
            )
        )
    return PushPlan(
        batch_id,
        project_id,
        workflow_id,
        mode,
        tuple(actions),
        subjects=len(kept),
        dropped=max(0, len(items) - len(kept)),
    )


def _load_rows(engine: Engine, plan: PushPlan, dry_run: bool) -> dict[str, dict[str, Any]]:
    """Record every action as planned (once per batch), then return rows by step."""
    with session_scope(engine) as session:
        existing = {
            (r["detail"] or {}).get("step"): r
            for r in list_pushes(session, batch_id=plan.batch_id)
            if bool(r["dry_run"]) == dry_run
        }
        for action in plan.actions:
            if action.step in existing:
                continue
            record_push(
                session,
                batch_id=plan.batch_id,
                action=action.action,
                subject_id=action.subject_id,
                subject_set_id=action.subject_set_id,
                priority=action.priority,
                status="planned",
                dry_run=dry_run,
                request_count=0,
                detail={**action.detail, "step": action.step},
            )
        rows = list_pushes(session, batch_id=plan.batch_id)
        return {
            (r["detail"] or {}).get("step"): {
                "id": r["id"],
                "status": r["status"],
                "subject_id": r["subject_id"],
                "subject_set_id": r["subject_set_id"],
                "detail": dict(r["detail"] or {}),
            }
            for r in rows
            if bool(r["dry_run"]) == dry_run
        }


def execute_push(
    client: ResilientPanoptes | None,
    engine: Engine,
    plan: PushPlan,
    dry_run: bool = False,
    max_requests: int | None = None,
) -> PushReport:
    """Carry out (or, with ``dry_run``, only record) a plan; safe to re-run after a crash.

    Args:
        client: A logged-in client (project owner or collaborator); unused with ``dry_run``.
        engine: The store; the ``pushes`` table is the journal.
        plan: From `plan_push`.
        dry_run: Record the plan with ``dry_run=True`` and send nothing to Zooniverse.
        max_requests: Stop (raising `PushError`) before an action once this many HTTP
            requests were sent; what is left stays ``planned`` and a re-run resumes it.

    Returns:
        What was done and what it cost in HTTP requests.

    Raises:
        PanoptesRequestError: A write failed after retries; its row is marked failed and a
            re-run resumes from there.
        PushError: The request cap was reached, or no client was given for a real push.
    """
    rows = _load_rows(engine, plan, dry_run)
    n_subjects = plan.subjects
    if dry_run:
        logger.info(
            "push dry run batch_id=%s actions=%d subjects=%d",
            plan.batch_id,
            len(plan.actions),
            n_subjects,
        )
        return PushReport(plan.batch_id, True, n_subjects, 0, 0, None, 0)
    if client is None:
        raise PushError("a real push needs a logged-in client; pass one or use dry_run=True")
    run = PushRun(client=client, engine=engine, plan=plan, rows=rows)
    requests_before = client.request_count
    skipped = created = 0
    for action in plan.actions:
        row = rows[action.step]
        if row["status"] == "done":
            skipped += 1
            run.remember(action, row)
            continue
        before = client.request_count
        if max_requests is not None and before - requests_before >= max_requests:
            raise PushError(
                f"push {plan.batch_id} stopped after {before - requests_before} requests "
                f"(cap max_requests={max_requests}); re-run to resume or raise the cap"
            )
        try:
            result = run.perform(action, row)
        except (PanoptesSyncError, OSError) as error:  # journalled, then re-raised
            run.finish(
                row,
                "failed",
                client.request_count - before,
                {"error": f"{type(error).__name__}: {error}"[:500]},
            )
            raise
        created += action.action == "create_subject"
        run.finish(row, "done", client.request_count - before, result)
    report = PushReport(
        plan.batch_id,
        False,
        n_subjects,
        created,
        skipped,
        run.subject_set_id,
        client.request_count - requests_before,
    )
    logger.info(
        "push complete batch_id=%s subjects=%d created=%d skipped=%d requests=%d "
        "requests_per_subject=%.3f",
        plan.batch_id,
        report.subjects,
        created,
        skipped,
        report.requests,
        report.requests_per_subject,
    )
    return report

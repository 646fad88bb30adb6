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

Planning (`plan_push`, `read_ranked_list`) is in `panoptes_sync.push_plan`, the HTTP of each
action in `panoptes_sync.push_steps`; this module executes a plan against the journal. A
``guard`` given to `execute_push` runs before every action (a daemon stopping, or one that lost
its lock, stops there); a request cap is exact: the request over it is never sent.

Designator serves the **lowest** priority first; callers choose the priority values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from panoptes_sync.client import ResilientPanoptes
from panoptes_sync.errors import PanoptesSyncError, PushError, RequestCapError
from panoptes_sync.push_plan import (
    LINK_BATCH,
    MODES,
    PushAction,
    PushItem,
    PushPlan,
    plan_push,
    read_ranked_list,
)
from panoptes_sync.push_steps import PushRun
from panoptes_sync.store import list_pushes, record_push, session_scope

__all__ = [
    "LINK_BATCH",
    "MODES",
    "PushAction",
    "PushItem",
    "PushPlan",
    "PushReport",
    "execute_push",
    "plan_push",
    "read_ranked_list",
]

logger = logging.getLogger(__name__)


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


def _perform(run: PushRun, action: PushAction, row: dict[str, Any]) -> None:
    """Send one action and journal it ``done``, or ``failed`` (then re-raise)."""
    client = run.client
    before = client.request_count
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
    run.finish(row, "done", client.request_count - before, result)


def _run_actions(
    run: PushRun,
    guard: Callable[[], None] | None,
    max_requests: int | None,
) -> tuple[int, int]:
    """Carry out every action not yet done; returns (created, skipped)."""
    skipped = created = 0
    with run.client.request_cap(max_requests):
        for action in run.plan.actions:
            row = run.rows[action.step]
            if row["status"] == "done":
                skipped += 1
                run.remember(action, row)
                continue
            if guard is not None:
                guard()
            _perform(run, action, row)
            created += action.action == "create_subject"
    return created, skipped


def execute_push(
    client: ResilientPanoptes | None,
    engine: Engine,
    plan: PushPlan,
    dry_run: bool = False,
    max_requests: int | None = None,
    guard: Callable[[], None] | None = None,
) -> PushReport:
    """Carry out (or, with ``dry_run``, only record) a plan; safe to re-run after a crash.

    Args:
        client: A logged-in client (project owner or collaborator); unused with ``dry_run``.
        engine: The store; the ``pushes`` table is the journal.
        plan: From `plan_push`.
        dry_run: Record the plan with ``dry_run=True`` and send nothing to Zooniverse.
        max_requests: Send at most this many HTTP requests (retries and uploads included),
            then raise `PushError`; what is left stays ``planned`` (or ``failed``, for the
            action the cap cut short) and a re-run resumes it.
        guard: Called before every action that is not done yet; whatever it raises stops the
            push there, with nothing of that action sent.

    Returns:
        What was done and what it cost in HTTP requests.

    Raises:
        PanoptesRequestError: A write failed after retries; its row is marked failed and a
            re-run resumes from there.
        PushError: The request cap was reached, or no client was given for a real push.
    """
    rows = _load_rows(engine, plan, dry_run)
    if dry_run:
        logger.info(
            "push dry run batch_id=%s actions=%d subjects=%d",
            plan.batch_id,
            len(plan.actions),
            plan.subjects,
        )
        return PushReport(plan.batch_id, True, plan.subjects, 0, 0, None, 0)
    if client is None:
        raise PushError("a real push needs a logged-in client; pass one or use dry_run=True")
    run = PushRun(client=client, engine=engine, plan=plan, rows=rows)
    requests_before = client.request_count
    try:
        created, skipped = _run_actions(run, guard, max_requests)
    except RequestCapError as error:
        raise PushError(
            f"push {plan.batch_id} stopped after {client.request_count - requests_before} "
            f"requests (cap max_requests={max_requests}); re-run to resume or raise the cap"
        ) from error
    report = PushReport(
        plan.batch_id,
        False,
        plan.subjects,
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

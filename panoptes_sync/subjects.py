"""The workflow's subject pool: every subject in its linked sets, and which are retired.

Classification sync only learns of subjects someone has classified; prioritisation also needs
the ones nobody has seen yet. Both lists are page-numbered indexes, fetched page by page with
retries (``iterate_pages``), 100 subjects per request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, update

from panoptes_sync.client import ResilientPanoptes, iterate_pages
from panoptes_sync.errors import PanoptesResponseError
from panoptes_sync.store import Subject, session_scope, upsert_subjects
from panoptes_sync.sync import subject_row

__all__ = ["SubjectSyncReport", "sync_workflow_subjects"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubjectSyncReport:
    """Outcome of `sync_workflow_subjects`."""

    subject_sets: int
    subjects: int
    retired: int


def sync_workflow_subjects(
    client: ResilientPanoptes, engine: Engine, workflow_id: int
) -> SubjectSyncReport:
    """Store every subject of the workflow's linked sets and mark the retired ones.

    Args:
        client: A logged-in client.
        engine: The store (already migrated).
        workflow_id: The workflow whose pool is wanted.

    Returns:
        How many sets and subjects were seen and how many are retired.
    """
    body, _ = client.get(f"/workflows/{workflow_id}")
    workflows = (body or {}).get("workflows") or []
    if not workflows:
        raise PanoptesResponseError(
            f"workflow {workflow_id} was not returned by /workflows/{workflow_id}"
        )
    workflow = workflows[0]
    set_ids = [int(s) for s in workflow.get("links", {}).get("subject_sets", [])]
    seen = 0
    rows_seen: list[dict] = []
    for set_id in set_ids:
        rows = [
            subject_row(raw)
            for raw in iterate_pages(client, "/subjects", "subjects", {"subject_set_id": set_id})
        ]
        with session_scope(engine) as session:
            upsert_subjects(session, rows)
        seen += len(rows)
        rows_seen += rows
    statuses = iterate_pages(
        client,
        "/subject_workflow_statuses",
        "subject_workflow_statuses",
        {"workflow_id": workflow_id},
    )
    retired = {int(s["links"]["subject"]) for s in statuses if s.get("retired_at")}
    pool = {int(row["id"]) for row in rows_seen}
    with session_scope(engine) as session:
        if retired:
            session.execute(update(Subject).where(Subject.id.in_(retired)).values(retired=True))
        unretired = pool - retired
        if unretired:
            session.execute(update(Subject).where(Subject.id.in_(unretired)).values(retired=False))
    logger.info(
        "workflow subjects synced workflow_id=%d subject_sets=%d subjects=%d retired=%d",
        workflow_id,
        len(set_ids),
        seen,
        len(retired),
    )
    return SubjectSyncReport(subject_sets=len(set_ids), subjects=seen, retired=len(retired))

"""Incremental, crash-safe sync of a project's classifications from Panoptes into the store.

Pages come from ``Classification.where(scope='project', project_id=P, last_id=L,
page_size=100)``, one ``where`` per page: the stock paginator's next-page GETs are never
used, so every page goes through `ResilientPanoptes`' retries. Each page's rows, the
subjects they name (fetched in batches with ``GET /subjects?id=1,2,...``), any new workflow
versions and the new ``last_id`` are committed in one transaction, so a crash or a failed
page resumes from the stored ``last_id`` with nothing lost and nothing stored twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from panoptes_client import Classification
from sqlalchemy import Engine, bindparam, text
from sqlalchemy.orm import Session

from panoptes_sync.client import ResilientPanoptes, iterate_pages
from panoptes_sync.errors import PanoptesResponseError
from panoptes_sync.store import (
    get_sync_state,
    insert_classifications,
    session_scope,
    set_sync_state,
    upsert_projects,
    upsert_subjects,
    upsert_workflow_versions,
    upsert_workflows,
)

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class SyncReport:
    """Outcome of one `sync_classifications` run.

    Attributes:
        project_id: Panoptes project synced.
        new_classifications: Rows stored by this run (duplicates excluded).
        pages: Non-empty pages committed.
        last_id: Stored ``last_id`` at the end.
        subjects_fetched: Subjects fetched and stored.
        requests: HTTP requests sent, retries and logins included.
        duration_s: Wall-clock seconds.
    """

    project_id: int
    new_classifications: int
    pages: int
    last_id: int
    subjects_fetched: int
    requests: int
    duration_s: float


def sync_state_key(project_id: int) -> str:
    """The ``sync_state`` key of a project's classification sync."""
    return f"classifications:project:{project_id}"


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def classification_row(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn one API classification resource into a ``classifications`` row.

    Args:
        raw: The resource as served by ``/classifications/project``.

    Returns:
        The row; annotations and metadata are kept verbatim.
    """
    links = raw.get("links", {})
    subject_ids = [int(s) for s in links.get("subjects") or []]
    metadata = raw.get("metadata") or {}
    return {
        "id": int(raw["id"]),
        "project_id": int(links["project"]),
        "workflow_id": int(links["workflow"]),
        "workflow_version": str(metadata.get("workflow_version", "")),
        "subject_id": subject_ids[0] if subject_ids else None,
        "subject_ids": subject_ids,
        "user_id": _optional_int(links.get("user")),
        "user_name": None,
        "created_at": _parse_time(raw.get("created_at")),
        "annotations": raw.get("annotations") or [],
        "metadata": metadata,
        "source": "api",
        "annotation_format": "index",
    }


def subject_row(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn one API subject resource into a ``subjects`` row (``retired`` left to the store)."""
    locations = raw.get("locations") or []
    first_url = next(iter(locations[0].values()), None) if locations else None
    return {
        "id": int(raw["id"]),
        "project_id": _optional_int(raw.get("links", {}).get("project")),
        "metadata": raw.get("metadata") or {},
        "locations": locations,
        "image_url": first_url,
    }


def _workflow_version_rows(client: ResilientPanoptes, workflow_id: int) -> list[dict[str, Any]]:
    versions = iterate_pages(
        client, "/workflow_versions", "workflow_versions", {"workflow_id": workflow_id}
    )
    return [
        {
            "workflow_id": workflow_id,
            "major": int(version["major_number"]),
            "minor": int(version["minor_number"]),
            "first_task": version.get("first_task"),
            "tasks": version.get("tasks") or {},
            "strings": version.get("strings") or {},
        }
        for version in versions
    ]


def sync_project_metadata(
    client: ResilientPanoptes, engine: Engine, project_id: int
) -> set[tuple[int, str]]:
    """Store the project, its workflows and all their versions.

    Args:
        client: A logged-in client.
        engine: The store.
        project_id: Panoptes project id.

    Returns:
        The ``(workflow_id, "major.minor")`` versions now stored.
    """
    body, _ = client.get(f"/projects/{project_id}")
    project = body["projects"][0]
    workflows = list(
        iterate_pages(client, "/workflows", "workflows", {"project_id": project_id}, 25)
    )
    version_rows = [
        row for workflow in workflows for row in _workflow_version_rows(client, int(workflow["id"]))
    ]
    with session_scope(engine) as session:
        upsert_projects(
            session,
            [
                {
                    "id": int(project["id"]),
                    "slug": project.get("slug"),
                    "display_name": project.get("display_name"),
                }
            ],
        )
        upsert_workflows(
            session,
            [
                {
                    "id": int(w["id"]),
                    "project_id": project_id,
                    "display_name": w.get("display_name"),
                    "version": str(w.get("version", "")),
                    "prioritized": bool(w.get("prioritized", False)),
                }
                for w in workflows
            ],
        )
        upsert_workflow_versions(session, version_rows)
    return {(r["workflow_id"], f"{r['major']}.{r['minor']}") for r in version_rows}


def _stored_subject_ids(session: Session, subject_ids: Iterable[int]) -> set[int]:
    ids = sorted(set(subject_ids))
    if not ids:
        return set()
    query = text("SELECT id FROM subjects WHERE id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    )
    return {int(row[0]) for row in session.execute(query, {"ids": ids})}


def fetch_subjects(client: ResilientPanoptes, subject_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Fetch subjects in batches of 100 with ``GET /subjects?id=1,2,...`` (never one per id).

    Args:
        client: A logged-in client.
        subject_ids: Ids to fetch.

    Returns:
        The subject resources found (ids Panoptes does not return are skipped).
    """
    ids = sorted(set(subject_ids))
    found: list[dict[str, Any]] = []
    for start in range(0, len(ids), MAX_PAGE_SIZE):
        batch = ids[start : start + MAX_PAGE_SIZE]
        body, _ = client.get(
            "/subjects",
            params={"id": ",".join(str(i) for i in batch), "page_size": MAX_PAGE_SIZE},
        )
        found.extend((body or {}).get("subjects", []))
    return found


def fetch_classification_page(
    client: ResilientPanoptes, project_id: int, last_id: int, page_size: int
) -> list[dict[str, Any]]:
    """One page of classifications with id > ``last_id``, in id order.

    Args:
        client: A logged-in client.
        project_id: Panoptes project id.
        last_id: Highest id already stored (0 at first).
        page_size: Up to 100.

    Returns:
        The raw classification resources (empty when caught up).
    """
    with client:
        paginator = Classification.where(
            scope="project", project_id=project_id, last_id=last_id, page_size=page_size
        )
    return list(paginator.object_list)


def _page_max(client: ResilientPanoptes, rows: list[dict[str, Any]], last_id: int) -> int:
    """The highest id of a page, checked to be above ``last_id``."""
    page_max = max(row["id"] for row in rows)
    if page_max <= last_id:
        raise PanoptesResponseError(
            f"page after last_id={last_id} ended at id {page_max}; ids must increase",
            method="GET",
            url=f"{client.endpoint}/api/classifications/project",
            status=200,
        )
    return page_max


def _store_page(
    client: ResilientPanoptes,
    engine: Engine,
    key: str,
    rows: list[dict[str, Any]],
    page_max: int,
    known_versions: set[tuple[int, str]],
) -> tuple[int, int]:
    """Store one page with its new subjects and workflow versions, and its ``last_id``, at once.

    Args:
        client: A logged-in client (fetches the subjects and versions not stored yet).
        engine: The store.
        key: The ``sync_state`` key.
        rows: The page's ``classifications`` rows.
        page_max: The page's highest classification id (checked by `_page_max`): the new
            ``last_id``.
        known_versions: ``(workflow_id, "major.minor")`` versions stored; updated in place.

    Returns:
        Rows newly stored, and subjects fetched.
    """
    new_versions = {(r["workflow_id"], r["workflow_version"]) for r in rows} - known_versions
    version_rows = [
        v
        for workflow_id in sorted({w for w, _ in new_versions})
        for v in _workflow_version_rows(client, workflow_id)
    ]
    with session_scope(engine) as session:
        wanted = {s for row in rows for s in row["subject_ids"]}
        missing = wanted - _stored_subject_ids(session, wanted)
    subjects = [subject_row(raw) for raw in fetch_subjects(client, missing)]
    with session_scope(engine) as session:
        if version_rows:
            upsert_workflow_versions(session, version_rows)
        if subjects:
            upsert_subjects(session, subjects)
        stored = insert_classifications(session, rows)
        set_sync_state(session, key, page_max)
    known_versions |= {(v["workflow_id"], f"{v['major']}.{v['minor']}") for v in version_rows}
    known_versions |= new_versions
    return stored, len(subjects)


def sync_classifications(
    client: ResilientPanoptes,
    engine: Engine,
    project_id: int,
    page_size: int = MAX_PAGE_SIZE,
    max_pages: int | None = None,
    sync_metadata: bool = True,
) -> SyncReport:
    """Sync classifications newer than the stored ``last_id``, one transaction per page.

    Args:
        client: A logged-in `ResilientPanoptes` (a collaborator on the project, or the
            endpoint answers an empty list).
        engine: The store (already migrated).
        project_id: Panoptes project id.
        page_size: Classifications per request, at most 100.
        max_pages: Stop after this many pages (None: until caught up).
        sync_metadata: Also store the project, its workflows and their versions first.

    Returns:
        What was synced.

    Raises:
        PanoptesRequestError: A page failed after all retries; the next run resumes.
        PanoptesResponseError: A page came back unusable.
    """
    started = time.monotonic()
    requests_before = client.request_count
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    known_versions = sync_project_metadata(client, engine, project_id) if sync_metadata else set()
    key = sync_state_key(project_id)
    with session_scope(engine) as session:
        last_id = get_sync_state(session, key) or 0
    new_rows = pages = subjects_fetched = 0
    while max_pages is None or pages < max_pages:
        raw_page = fetch_classification_page(client, project_id, last_id, page_size)
        if not raw_page:
            break
        rows = [classification_row(raw) for raw in raw_page]
        page_max = _page_max(client, rows, last_id)
        stored, n_subjects = _store_page(client, engine, key, rows, page_max, known_versions)
        new_rows += stored
        last_id = page_max
        pages += 1
        subjects_fetched += n_subjects
        logger.debug(
            "sync page committed project_id=%d last_id=%d rows=%d", project_id, last_id, len(rows)
        )
    if pages == 0 and last_id == 0:
        logger.warning(
            "sync found no classifications project_id=%d; Panoptes answers an empty list "
            "(not an error) when the account is not an owner or collaborator of the project",
            project_id,
        )
    report = SyncReport(
        project_id=project_id,
        new_classifications=new_rows,
        pages=pages,
        last_id=last_id,
        subjects_fetched=subjects_fetched,
        requests=client.request_count - requests_before,
        duration_s=time.monotonic() - started,
    )
    logger.info(
        "sync complete project_id=%d new_classifications=%d pages=%d last_id=%d requests=%d "
        "duration_s=%.2f",
        project_id,
        new_rows,
        pages,
        last_id,
        report.requests,
        report.duration_s,
    )
    return report

"""The HTTP side of a push: one method per action kind, journalled in the ``pushes`` table.

Used by `panoptes_sync.push.execute_push`. Writes that are not idempotent (creating a subject
set or a subject) first journal ``attempted``; a re-run that finds an attempted action without
a result looks the object up by the marker it carries (``#push_key`` metadata, or the set's
``push_batch`` metadata) before creating anything.
"""

from __future__ import annotations

import logging
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from panoptes_sync.client import ResilientPanoptes, iterate_pages
from panoptes_sync.errors import (
    PanoptesPreconditionError,
    PanoptesRequestError,
    PanoptesResponseError,
)
from panoptes_sync.push_plan import PushAction, PushPlan
from panoptes_sync.store import session_scope, update_push

logger = logging.getLogger(__name__)

RETIREMENT_REASON = "other"


def guess_media_type(path: str) -> str:
    """MIME type of a local image from its suffix (``image/png`` when unknown)."""
    return mimetypes.guess_type(path)[0] or "image/png"


def recover_created_subject(
    client: ResilientPanoptes, project_id: int, push_key: str
) -> dict[str, Any] | None:
    """Find a subject that a crashed push created, by its ``#push_key`` metadata.

    Scans the project's subjects (100 per request); only needed after a crash in the
    instant between sending a create and journalling its result.

    Args:
        client: A logged-in client.
        project_id: Panoptes project.
        push_key: The marker, ``<batch_id>:<item index>``.

    Returns:
        The subject resource, or None if the create never reached Panoptes.
    """
    for subject in iterate_pages(client, "/subjects", "subjects", {"project_id": project_id}):
        if (subject.get("metadata") or {}).get("#push_key") == push_key:
            return subject
    return None


@dataclass
class PushRun:
    """State of one `execute_push` run: ids learned so far and the journal rows."""

    client: ResilientPanoptes
    engine: Engine
    plan: PushPlan
    rows: dict[str, dict[str, Any]]
    subject_set_id: int | None = None
    item_subject_ids: dict[int, int] = field(default_factory=dict)
    _members: dict[int, int] | None = None

    def journal(self, row: dict[str, Any], **fields: Any) -> None:
        """Write fields (``detail`` merged) to a journal row now, in its own transaction."""
        if "detail" in fields:
            row["detail"] = {**row["detail"], **fields["detail"]}
            fields["detail"] = row["detail"]
        row.update({k: v for k, v in fields.items() if k != "detail"})
        with session_scope(self.engine) as session:
            update_push(session, row["id"], **fields)

    def finish(
        self, row: dict[str, Any], status: str, requests: int, result: dict[str, Any]
    ) -> None:
        """Mark an action done or failed, with its request count and results."""
        detail = {k: v for k, v in result.items() if k not in ("subject_id", "subject_set_id")}
        fields = {k: result[k] for k in ("subject_id", "subject_set_id") if k in result}
        self.journal(row, status=status, request_count=requests, detail=detail, **fields)

    def remember(self, action: PushAction, row: dict[str, Any]) -> None:
        """Learn ids from an action a previous run completed."""
        if action.action == "create_subject_set":
            self.subject_set_id = row["subject_set_id"]
        elif action.action == "create_subject":
            self.item_subject_ids[int(action.detail["item"])] = int(row["subject_id"])

    def perform(self, action: PushAction, row: dict[str, Any]) -> dict[str, Any]:
        """Send one action; returns the fields to journal with ``done``."""
        handler = getattr(self, f"_do_{action.action}")
        return handler(action, row)

    def _do_create_subject_set(self, action: PushAction, row: dict[str, Any]) -> dict[str, Any]:
        if row["detail"].get("attempted"):
            for found in iterate_pages(
                self.client, "/subject_sets", "subject_sets", {"project_id": self.plan.project_id}
            ):
                if (found.get("metadata") or {}).get("push_batch") == self.plan.batch_id:
                    self.subject_set_id = int(found["id"])
                    return {"subject_set_id": self.subject_set_id, "recovered": True}
        self.journal(row, detail={"attempted": True})
        body, _ = self.client.post(
            "/subject_sets",
            json={
                "subject_sets": {
                    "display_name": action.detail["display_name"],
                    "metadata": {"push_batch": self.plan.batch_id},
                    "links": {"project": str(self.plan.project_id)},
                }
            },
        )
        self.subject_set_id = int(body["subject_sets"][0]["id"])
        return {"subject_set_id": self.subject_set_id}

    def _do_create_subject(self, action: PushAction, row: dict[str, Any]) -> dict[str, Any]:
        detail = action.detail
        index = int(detail["item"])
        key = f"{self.plan.batch_id}:{index}"
        image_path = detail.get("image_path")
        media_type = guess_media_type(image_path or detail.get("image_url") or "")
        subject_id = row["subject_id"] or row["detail"].get("created_subject_id")
        upload_url = row["detail"].get("upload_url")
        if subject_id is None and row["detail"].get("attempted"):
            found = recover_created_subject(self.client, self.plan.project_id, key)
            if found is not None:
                subject_id, upload_url = int(found["id"]), None
                logger.warning("push recovered subject_id=%d push_key=%s", subject_id, key)
        if subject_id is None:
            self.journal(row, detail={"attempted": True})
            location: Any = (
                {media_type: detail["image_url"]} if detail.get("image_url") else (media_type)
            )
            metadata = {
                **detail.get("metadata", {}),
                "#priority": action.priority,
                "#push_key": key,
            }
            body, _ = self.client.post(
                "/subjects",
                json={
                    "subjects": {
                        "locations": [location],
                        "metadata": metadata,
                        "links": {"project": str(self.plan.project_id)},
                    }
                },
            )
            created = body["subjects"][0]
            subject_id = int(created["id"])
            upload_url = next(iter(created["locations"][0].values())) if image_path else None
            self.journal(
                row,
                subject_id=subject_id,
                detail={"created_subject_id": subject_id, "upload_url": upload_url},
            )
        if image_path:
            self._upload(int(subject_id), upload_url, image_path, media_type)
        self.item_subject_ids[index] = int(subject_id)
        return {"subject_id": int(subject_id), "upload_url": None}

    def _upload(self, subject_id: int, url: str | None, image_path: str, media_type: str) -> None:
        data = Path(image_path).read_bytes()
        if url is not None:
            try:
                self.client.upload_media(url, data, media_type)
                return
            except PanoptesRequestError as error:
                if error.status is None or error.status >= 500:
                    raise
                logger.warning(
                    "push upload URL refused status=%s; asking for a fresh one", error.status
                )
        _, etag = self.client.get(f"/subjects/{subject_id}")
        body, _ = self.client.put(
            f"/subjects/{subject_id}", json={"subjects": {"locations": [media_type]}}, etag=etag
        )
        fresh = next(iter(body["subjects"][0]["locations"][0].values()))
        self.client.upload_media(fresh, data, media_type)

    def _do_link_subjects(self, action: PushAction, row: dict[str, Any]) -> dict[str, Any]:
        if self.subject_set_id is None:
            raise PanoptesResponseError(
                "no subject set to link into; the set step did not run",
                method="POST",
                url="/subject_sets",
                status=None,
            )
        ids = [
            str(existing if existing is not None else self.item_subject_ids[int(index)])
            for index, existing in action.detail["items"]
        ]
        self.client.post(
            f"/subject_sets/{self.subject_set_id}/links/subjects", json={"subjects": ids}
        )
        return {"subject_set_id": self.subject_set_id, "subject_ids": [int(i) for i in ids]}

    def _do_link_subject_set(self, action: PushAction, row: dict[str, Any]) -> dict[str, Any]:
        workflow_id = int(action.detail["workflow_id"])
        set_id = str(self.subject_set_id)
        try:
            self.client.post(
                f"/workflows/{workflow_id}/links/subject_sets", json={"subject_sets": [set_id]}
            )
        except PanoptesRequestError as error:
            if error.status is None or error.status >= 500:
                raise
            body, _ = self.client.get(f"/workflows/{workflow_id}")
            if set_id not in [str(s) for s in body["workflows"][0]["links"]["subject_sets"]]:
                raise
        return {"subject_set_id": self.subject_set_id}

    def _member_ids(self, subject_set_id: int) -> dict[int, int]:
        if self._members is None:
            self._members = {
                int(member["links"]["subject"]): int(member["id"])
                for member in iterate_pages(
                    self.client,
                    "/set_member_subjects",
                    "set_member_subjects",
                    {"subject_set_id": subject_set_id},
                )
            }
        return self._members

    def _do_set_priority(self, action: PushAction, row: dict[str, Any]) -> dict[str, Any]:
        set_id = action.subject_set_id or self.subject_set_id
        members = self._member_ids(int(set_id)) if set_id is not None else {}
        if action.subject_id not in members:
            raise PanoptesResponseError(
                f"subject {action.subject_id} is not a member of subject set {set_id}",
                method="GET",
                url="/set_member_subjects",
                status=200,
            )
        member_id = members[int(action.subject_id)]
        body = {"set_member_subjects": {"priority": action.priority}}
        for attempt in range(2):
            _, etag = self.client.get(f"/set_member_subjects/{member_id}")
            try:
                self.client.put(f"/set_member_subjects/{member_id}", json=body, etag=etag)
                break
            except PanoptesPreconditionError:
                if attempt == 1:
                    raise
        return {
            "subject_id": action.subject_id,
            "subject_set_id": int(set_id),
            "set_member_subject_id": member_id,
        }

    def _do_retire(self, action: PushAction, row: dict[str, Any]) -> dict[str, Any]:
        workflow_id = int(action.detail["workflow_id"])
        self.client.post(
            f"/workflows/{workflow_id}/retired_subjects",
            json={
                "subject_ids": action.detail["subject_ids"],
                "retirement_reason": RETIREMENT_REASON,
            },
        )
        return {}

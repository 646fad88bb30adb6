"""Serialisers: database rows to the JSON resources Panoptes' serializers produce."""

from __future__ import annotations

import sqlite3
from typing import Any

from panoptes_sync.emulator.context import get_context, public_url
from panoptes_sync.emulator.database import loads

__all__ = [
    "serialize_classification",
    "serialize_media",
    "serialize_project",
    "serialize_set_member_subject",
    "serialize_subject",
    "serialize_subject_set",
    "serialize_subject_workflow_status",
    "serialize_user",
    "serialize_workflow",
    "serialize_workflow_version",
    "workflow_version_string",
]


def _ids(rows: list[sqlite3.Row], column: str = "id") -> list[str]:
    return [str(row[column]) for row in rows]


def serialize_user(row: sqlite3.Row, private: bool = False) -> dict[str, Any]:
    """A user; ``private`` adds what only the user themself sees."""
    user: dict[str, Any] = {
        "id": str(row["id"]),
        "login": row["login"],
        "display_name": row["display_name"],
        "credited_name": row["display_name"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "type": "users",
        "href": f"/users/{row['id']}",
        "links": {},
    }
    if private:
        user.update(
            email=f"{row['login']}@example.org",
            admin=bool(row["admin"]),
            max_subjects=get_context().settings.subject_upload_limit,
            uploaded_subjects_count=row["uploaded_subjects_count"],
            global_email_communication=False,
            project_email_communication=False,
            beta_email_communication=False,
            login_prompt=False,
            private_profile=True,
        )
    return user


_PROJECT_MEDIA_LINKS = (
    ("avatar", "avatars"),
    ("background", "backgrounds"),
    ("attached_images", "attached_images"),
    ("classifications_export", "classifications_exports"),
    ("subjects_export", "subjects_exports"),
    ("pages", "project_pages"),
    ("project_contents", "project_contents"),
    ("project_roles", "project_roles"),
)


def serialize_project(row: sqlite3.Row) -> dict[str, Any]:
    """A project (the attributes of ProjectSerializer the client and sync use)."""
    database = get_context().database
    workflows = database.query(
        "SELECT id, active FROM workflows WHERE project_id = ?", (row["id"],)
    )
    sets = database.query("SELECT id FROM subject_sets WHERE project_id = ?", (row["id"],))
    owner = database.query_one("SELECT * FROM users WHERE id = ?", (row["owner_id"],))
    counts = database.query_one(
        "SELECT (SELECT COUNT(*) FROM classifications WHERE project_id = :p) AS classifications, "
        "(SELECT COUNT(*) FROM subjects WHERE project_id = :p) AS subjects",
        {"p": row["id"]},  # type: ignore[arg-type]
    )
    return {
        "id": str(row["id"]),
        "display_name": row["display_name"],
        "title": row["display_name"],
        "slug": row["slug"],
        "description": "Classify galaxies by their shapes (local Panoptes emulator).",
        "introduction": "",
        "classifications_count": counts["classifications"] if counts else 0,
        "subjects_count": counts["subjects"] if counts else 0,
        "retired_subjects_count": 0,
        "classifiers_count": 0,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "available_languages": ["en"],
        "primary_language": "en",
        "private": bool(row["private"]),
        "live": bool(row["live"]),
        "configuration": loads(row["configuration"]),
        "launch_approved": True,
        "beta_approved": False,
        "state": "live" if row["live"] else "development",
        "tags": [],
        "urls": [],
        "migrated": False,
        "redirect": "",
        "launch_requested": True,
        "launch_date": None,
        "beta_requested": False,
        "workflow_description": "",
        "researcher_quote": "",
        "mobile_friendly": True,
        "featured": False,
        "activity": 0,
        "completeness": 0.0,
        "experimental_tools": [],
        "href": f"/projects/{row['id']}",
        "links": {
            **{
                name: {"href": f"/projects/{row['id']}/{name}", "type": kind}
                for name, kind in _PROJECT_MEDIA_LINKS
            },
            "workflows": _ids(workflows),
            "active_workflows": [str(w["id"]) for w in workflows if w["active"]],
            "subject_sets": _ids(sets),
            "owner": {
                "id": str(row["owner_id"]),
                "display_name": owner["display_name"] if owner else None,
                "type": "users",
                "href": f"/users/{row['owner_id']}",
            },
        },
    }


def workflow_version_string(row: sqlite3.Row) -> str:
    """``"<major>.<minor>"``, the ``workflow_version`` stamped on classifications."""
    return f"{row['major']}.{row['minor']}"


def serialize_workflow(row: sqlite3.Row) -> dict[str, Any]:
    """A workflow (WorkflowSerializer attributes)."""
    database = get_context().database
    sets = database.query(
        "SELECT subject_set_id FROM workflow_subject_sets WHERE workflow_id = ? "
        "ORDER BY subject_set_id",
        (row["id"],),
    )
    statuses = database.query_one(
        "SELECT COUNT(*) AS n, SUM(retired_at IS NOT NULL) AS retired "
        "FROM subject_workflow_statuses WHERE workflow_id = ?",
        (row["id"],),
    )
    classifications = database.query_one(
        "SELECT COUNT(*) AS n FROM classifications WHERE workflow_id = ?", (row["id"],)
    )
    return {
        "id": str(row["id"]),
        "display_name": row["display_name"],
        "tasks": loads(row["tasks"]),
        "steps": [],
        "classifications_count": classifications["n"] if classifications else 0,
        "subjects_count": statuses["n"] if statuses else 0,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "finished_at": None,
        "first_task": row["first_task"],
        "primary_language": row["primary_language"],
        "version": workflow_version_string(row),
        "content_language": row["primary_language"],
        "prioritized": bool(row["prioritized"]),
        "grouped": bool(row["grouped"]),
        "pairwise": bool(row["pairwise"]),
        "retirement": loads(row["retirement"]),
        "retired_set_member_subjects_count": (statuses["retired"] or 0) if statuses else 0,
        "href": f"/workflows/{row['id']}",
        "active": bool(row["active"]),
        "mobile_friendly": bool(row["mobile_friendly"]),
        "configuration": loads(row["configuration"]),
        "public_gold_standard": False,
        "completeness": 0.0,
        "aggregation": {},
        "links": {
            "project": str(row["project_id"]),
            "subject_sets": _ids(sets, "subject_set_id"),
            "tutorial_subject": None,
            "attached_images": {"href": f"/workflows/{row['id']}/attached_images", "type": "media"},
        },
    }


def serialize_workflow_version(row: sqlite3.Row) -> dict[str, Any]:
    """A workflow version (tasks and strings at one major.minor)."""
    return {
        "id": str(row["id"]),
        "major_number": row["major"],
        "minor_number": row["minor"],
        "first_task": row["first_task"],
        "tasks": loads(row["tasks"]),
        "strings": loads(row["strings"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "href": f"/workflow_versions/{row['id']}",
        "links": {"workflow": str(row["workflow_id"])},
    }


def subject_location_urls(row: sqlite3.Row, for_upload: bool) -> list[dict[str, str]]:
    """Each ``{mime: url}``: signed PUT URLs after create/update, public GET URLs otherwise."""
    from panoptes_sync.emulator.blobs import signed_url

    urls = []
    for location in loads(row["locations"]):
        ((mime, target),) = location.items()
        if target.startswith("/"):
            target = signed_url(target, "cw") if for_upload else public_url(target)
        urls.append({mime: target})
    return urls


def serialize_subject(row: sqlite3.Row, for_upload: bool = False) -> dict[str, Any]:
    """A subject; ``for_upload`` gives signed PUT URLs as Panoptes does after create/update."""
    database = get_context().database
    sets = database.query(
        "SELECT subject_set_id FROM set_member_subjects WHERE subject_id = ? "
        "ORDER BY subject_set_id",
        (row["id"],),
    )
    return {
        "id": str(row["id"]),
        "metadata": loads(row["metadata"]),
        "locations": subject_location_urls(row, for_upload),
        "zooniverse_id": None,
        "external_id": None,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "href": f"/subjects/{row['id']}",
        "links": {
            "project": str(row["project_id"]),
            "collections": [],
            "subject_sets": _ids(sets, "subject_set_id"),
        },
    }


def serialize_subject_set(row: sqlite3.Row) -> dict[str, Any]:
    """A subject set."""
    database = get_context().database
    count = database.query_one(
        "SELECT COUNT(*) AS n FROM set_member_subjects WHERE subject_set_id = ?", (row["id"],)
    )
    workflows = database.query(
        "SELECT workflow_id FROM workflow_subject_sets WHERE subject_set_id = ? ORDER BY 1",
        (row["id"],),
    )
    return {
        "id": str(row["id"]),
        "display_name": row["display_name"],
        "set_member_subjects_count": count["n"] if count else 0,
        "metadata": loads(row["metadata"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "href": f"/subject_sets/{row['id']}",
        "completeness": {},
        "links": {"project": str(row["project_id"]), "workflows": _ids(workflows, "workflow_id")},
    }


def serialize_set_member_subject(row: sqlite3.Row) -> dict[str, Any]:
    """A set member subject (the subject's place and priority in one set)."""
    return {
        "id": str(row["id"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "priority": row["priority"],
        "href": f"/set_member_subjects/{row['id']}",
        "links": {
            "subject": str(row["subject_id"]),
            "subject_set": str(row["subject_set_id"]),
            "retired_workflows": [],
        },
    }


def serialize_subject_workflow_status(row: sqlite3.Row) -> dict[str, Any]:
    """Retirement status of one (subject, workflow) pair."""
    return {
        "id": str(row["id"]),
        "classifications_count": row["classifications_count"],
        "retired_at": row["retired_at"],
        "retirement_reason": row["retirement_reason"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "href": f"/subject_workflow_statuses/{row['id']}",
        "links": {"subject": str(row["subject_id"]), "workflow": str(row["workflow_id"])},
    }


def serialize_classification(row: sqlite3.Row) -> dict[str, Any]:
    """A classification (ClassificationSerializer; metadata carries ``workflow_version``)."""
    metadata = loads(row["metadata"])
    metadata["workflow_version"] = row["workflow_version"]
    return {
        "id": str(row["id"]),
        "annotations": loads(row["annotations"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "metadata": metadata,
        "href": f"/classifications/{row['id']}",
        "links": {
            "project": str(row["project_id"]),
            "user": None if row["user_id"] is None else str(row["user_id"]),
            "user_group": None,
            "workflow": str(row["workflow_id"]),
            "subjects": [str(s) for s in loads(row["subject_ids"])],
        },
    }


def serialize_media(row: sqlite3.Row, src: str) -> dict[str, Any]:
    """An export medium."""
    linked = f"/{row['linked_type']}/{row['linked_id']}"
    return {
        "id": str(row["id"]),
        "href": f"{linked}/{row['media_type'].split('_', 1)[1]}",
        "src": src,
        "content_type": row["content_type"],
        "media_type": row["media_type"],
        "external_link": False,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "metadata": loads(row["metadata"]),
        "links": {
            "linked": {"href": linked, "id": str(row["linked_id"]), "type": row["linked_type"]}
        },
    }

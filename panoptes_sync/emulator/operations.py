"""State changes shared by the routes, the seeding and the simulated volunteers."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from panoptes_sync.emulator.database import EmulatorDatabase, dumps, loads

__all__ = [
    "RETIREMENT_REASONS",
    "bump_version",
    "count_and_retire",
    "create_subject_set",
    "ensure_statuses",
    "insert_subject",
    "link_subjects",
    "member_priority",
    "normalise_metadata",
    "retire_subjects",
    "task_strings",
    "touch",
    "unretire_subjects",
    "workflow_set_subject_ids",
]

#: Valid ``retirement_reason`` values (``blank`` is the client-side alias of ``nothing_here``).
RETIREMENT_REASONS = (
    "classification_count",
    "flagged",
    "nothing_here",
    "consensus",
    "other",
    "human",
)

#: Subject metadata keys Panoptes downcases (SubjectsController::RESERVED_METADATA_KEYS).
_RESERVED_METADATA_KEYS = ("#priority", "#training_subject")


def normalise_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Downcase reserved keys such as ``#Priority``, as Panoptes does on create and update."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        out[key.lower() if key.lower() in _RESERVED_METADATA_KEYS else key] = value
    return out


def touch(database: EmulatorDatabase, table: str, row_id: int) -> None:
    """Bump ``updated_at`` and ``lock_version`` (so the ETag changes)."""
    database.execute(
        f"UPDATE {table} SET updated_at = ?, lock_version = lock_version + 1 WHERE id = ?",
        (database.clock.iso(), row_id),
    )


def task_strings(tasks: Mapping[str, Any]) -> dict[str, str]:
    """The translatable strings of a workflow's tasks, keyed as Panoptes stores them."""
    strings: dict[str, str] = {}
    for key, task in tasks.items():
        for field in ("question", "instruction", "help"):
            if isinstance(task.get(field), str):
                strings[f"{key}.{field}"] = task[field]
        for index, answer in enumerate(task.get("answers") or []):
            if isinstance(answer, Mapping) and isinstance(answer.get("label"), str):
                strings[f"{key}.answers.{index}.label"] = answer["label"]
    return strings


def bump_version(database: EmulatorDatabase, workflow: sqlite3.Row, major: bool) -> None:
    """Record the workflow's current tasks as a new (major or minor) version."""
    new_major = workflow["major"] + (1 if major else 0)
    new_minor = workflow["minor"] + (0 if major else 1)
    now = database.clock.iso()
    with database.transaction() as connection:
        connection.execute(
            "UPDATE workflows SET major = ?, minor = ? WHERE id = ?",
            (new_major, new_minor, workflow["id"]),
        )
        current = connection.execute(
            "SELECT * FROM workflows WHERE id = ?", (workflow["id"],)
        ).fetchone()
        connection.execute(
            "INSERT INTO workflow_versions (id, workflow_id, major, minor, first_task, tasks, "
            "strings, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                database.next_id("workflow_versions"),
                workflow["id"],
                new_major,
                new_minor,
                current["first_task"],
                current["tasks"],
                dumps(task_strings(loads(current["tasks"]))),
                now,
                now,
            ),
        )


def insert_subject(
    database: EmulatorDatabase,
    project_id: int,
    metadata: Mapping[str, Any],
    locations: list[dict[str, str]],
    uploader_id: int | None,
) -> int:
    """Insert a subject; ``locations`` are ``{mime: blob path or external URL}``."""
    subject_id = database.next_id("subjects")
    now = database.clock.iso()
    database.execute(
        "INSERT INTO subjects (id, project_id, metadata, locations, uploader_id, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            subject_id,
            project_id,
            dumps(normalise_metadata(metadata)),
            dumps(locations),
            uploader_id,
            now,
            now,
        ),
    )
    return subject_id


def create_subject_set(
    database: EmulatorDatabase, project_id: int, display_name: str, metadata: Mapping[str, Any]
) -> int:
    """Insert a subject set and return its id."""
    set_id = database.next_id("subject_sets")
    now = database.clock.iso()
    database.execute(
        "INSERT INTO subject_sets (id, project_id, display_name, metadata, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        (set_id, project_id, display_name, dumps(dict(metadata)), now, now),
    )
    return set_id


def ensure_statuses(
    database: EmulatorDatabase, workflow_id: int, subject_ids: Iterable[int]
) -> None:
    """Create missing subject_workflow_statuses rows (Panoptes does it on every link)."""
    now = database.clock.iso()
    with database.transaction() as connection:
        for subject_id in subject_ids:
            exists = connection.execute(
                "SELECT 1 FROM subject_workflow_statuses WHERE subject_id = ? AND workflow_id = ?",
                (subject_id, workflow_id),
            ).fetchone()
            if exists is None:
                connection.execute(
                    "INSERT INTO subject_workflow_statuses (id, subject_id, workflow_id, "
                    "created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                    (
                        database.next_id("subject_workflow_statuses"),
                        subject_id,
                        workflow_id,
                        now,
                        now,
                    ),
                )


def member_priority(metadata: dict[str, Any]) -> float | None:
    """``#priority`` metadata as the set member's priority (None: absent or not a number)."""
    try:
        value = metadata.get("#priority")
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def link_subjects(
    database: EmulatorDatabase, set_id: int, subject_ids: Iterable[int], rng: random.Random
) -> None:
    """Add subjects to a set, copying ``#priority`` into the new members' priority.

    This is SubjectMetadataWorker's copy, which runs only at link time: later metadata updates
    do not reach ``set_member_subjects.priority``.
    """
    now = database.clock.iso()
    subject_ids = list(subject_ids)
    with database.transaction() as connection:
        for subject_id in subject_ids:
            subject = connection.execute(
                "SELECT metadata FROM subjects WHERE id = ?", (subject_id,)
            ).fetchone()
            priority = member_priority(loads(subject["metadata"]))
            connection.execute(
                "INSERT INTO set_member_subjects (id, subject_set_id, subject_id, priority, "
                "random, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (subject_set_id, subject_id) DO NOTHING",
                (
                    database.next_id("set_member_subjects"),
                    set_id,
                    subject_id,
                    priority,
                    rng.random(),
                    now,
                    now,
                ),
            )
        workflows = connection.execute(
            "SELECT workflow_id FROM workflow_subject_sets WHERE subject_set_id = ?", (set_id,)
        ).fetchall()
        for workflow in workflows:
            ensure_statuses(database, workflow["workflow_id"], subject_ids)
        touch(database, "subject_sets", set_id)


def workflow_set_subject_ids(database: EmulatorDatabase, workflow_id: int) -> list[int]:
    """Ids of every subject in the sets linked to a workflow."""
    rows = database.query(
        "SELECT DISTINCT sms.subject_id FROM set_member_subjects sms "
        "JOIN workflow_subject_sets wss ON wss.subject_set_id = sms.subject_set_id "
        "WHERE wss.workflow_id = ? ORDER BY sms.subject_id",
        (workflow_id,),
    )
    return [int(row["subject_id"]) for row in rows]


def retire_subjects(
    database: EmulatorDatabase, workflow_id: int, subject_ids: Iterable[int], reason: str
) -> None:
    """Mark subjects retired in a workflow (already retired ones keep their first reason)."""
    subject_ids = list(subject_ids)
    ensure_statuses(database, workflow_id, subject_ids)
    now = database.clock.iso()
    with database.transaction() as connection:
        for subject_id in subject_ids:
            connection.execute(
                "UPDATE subject_workflow_statuses SET retired_at = ?, retirement_reason = ?, "
                "updated_at = ? WHERE subject_id = ? AND workflow_id = ? AND retired_at IS NULL",
                (now, reason, now, subject_id, workflow_id),
            )


def unretire_subjects(
    database: EmulatorDatabase, workflow_id: int, subject_ids: Iterable[int]
) -> None:
    """Clear retirement of subjects in a workflow."""
    now = database.clock.iso()
    with database.transaction() as connection:
        for subject_id in subject_ids:
            connection.execute(
                "UPDATE subject_workflow_statuses SET retired_at = NULL, "
                "retirement_reason = NULL, updated_at = ? WHERE subject_id = ? "
                "AND workflow_id = ?",
                (now, subject_id, workflow_id),
            )


def count_and_retire(database: EmulatorDatabase, workflow: sqlite3.Row, subject_id: int) -> None:
    """Count one more classification of a subject; retire it at the workflow's count criterion."""
    ensure_statuses(database, workflow["id"], [subject_id])
    database.execute(
        "UPDATE subject_workflow_statuses "
        "SET classifications_count = classifications_count + 1, updated_at = ? "
        "WHERE subject_id = ? AND workflow_id = ?",
        (database.clock.iso(), subject_id, workflow["id"]),
    )
    retirement = loads(workflow["retirement"]) or {}
    if retirement.get("criteria", "classification_count") != "classification_count":
        return
    limit = int((retirement.get("options") or {}).get("count", 15))
    status = database.query_one(
        "SELECT classifications_count FROM subject_workflow_statuses "
        "WHERE subject_id = ? AND workflow_id = ?",
        (subject_id, workflow["id"]),
    )
    if status is not None and status["classifications_count"] >= limit:
        retire_subjects(database, workflow["id"], [subject_id], "classification_count")

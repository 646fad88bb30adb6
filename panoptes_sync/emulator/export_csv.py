"""The classification export CSV in Panoptes' 14-column format (answer labels, ``task_label``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from datetime import UTC, datetime
from typing import Any

from panoptes_sync.emulator.database import EmulatorDatabase, loads
from panoptes_sync.exports import EXPORT_COLUMNS
from panoptes_sync.workflow_versions import answer_label

__all__ = ["classification_export_csv", "labelled_annotations"]

UNKNOWN_LABEL = "unknown answer label"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _answer_label(task: dict[str, Any], index: Any) -> str | None:
    if index is None:
        return None
    label = answer_label(task, index)
    return UNKNOWN_LABEL if label is None else label


def labelled_annotations(
    annotations: list[dict[str, Any]], tasks: dict[str, Any]
) -> list[dict[str, Any]]:
    """Replace answer indices by labels and add ``task_label``, as AnnotationForCsv#simple does."""
    out = []
    for annotation in annotations:
        task = tasks.get(str(annotation.get("task")), {})
        value = annotation.get("value")
        if isinstance(value, list):
            labelled: Any = [_answer_label(task, v) for v in value]
        else:
            labelled = _answer_label(task, value)
        out.append(
            {"task": annotation.get("task"), "task_label": task.get("question"), "value": labelled}
        )
    return out


def _ruby_time(iso: str) -> str:
    """``2019-03-29T18:38:10.824Z`` -> ``2019-03-29 18:38:10 UTC`` (Ruby ``Time#to_s``)."""
    moment = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def classification_export_csv(
    database: EmulatorDatabase, linked_type: str, linked_id: int, seed: int
) -> str:
    """The export of a project's, workflow's or subject set's classifications.

    Only classifications of active workflows are included, ordered by id.

    Args:
        database: the emulator state.
        linked_type: ``projects``, ``workflows`` or ``subject_sets``.
        linked_id: the id of that resource.
        seed: seeds the per-run ``user_ip`` pseudonyms.

    Returns:
        The CSV text.
    """
    condition = {
        "projects": "c.project_id = :id",
        "workflows": "c.workflow_id = :id",
        "subject_sets": "EXISTS (SELECT 1 FROM json_each(c.subject_ids) j JOIN set_member_subjects "
        "sms ON sms.subject_id = j.value WHERE sms.subject_set_id = :id)",
    }[linked_type]
    rows = database.query(
        "SELECT c.*, w.display_name AS workflow_name, u.login AS login FROM classifications c "
        "JOIN workflows w ON w.id = c.workflow_id LEFT JOIN users u ON u.id = c.user_id "
        f"WHERE w.active = 1 AND {condition} ORDER BY c.id",
        {"id": linked_id},  # type: ignore[arg-type]
    )
    versions = {
        (row["workflow_id"], f"{row['major']}.{row['minor']}"): loads(row["tasks"])
        for row in database.query("SELECT * FROM workflow_versions")
    }
    rng = random.Random(f"{seed}:export:{database.get_meta('export_runs')}")
    user_ips: dict[str, str] = {}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        metadata = loads(row["metadata"])
        metadata["workflow_version"] = row["workflow_version"]
        session = str(metadata.get("session", row["id"]))
        identity = row["login"] or "anon-" + hashlib.md5(session.encode()).hexdigest()[:20]
        user_ips.setdefault(identity, f"{rng.getrandbits(80):020x}")
        tasks = versions.get((row["workflow_id"], row["workflow_version"]), {})
        subject_ids = loads(row["subject_ids"])
        writer.writerow(
            [
                row["id"],
                row["login"] or f"not-logged-in-{identity[5:]}",
                "" if row["user_id"] is None else row["user_id"],
                user_ips[identity],
                row["workflow_id"],
                row["workflow_name"],
                row["workflow_version"],
                _ruby_time(row["created_at"]),
                "",
                "",
                _json(metadata),
                _json(labelled_annotations(loads(row["annotations"]), tasks)),
                _json(_subject_data(database, subject_ids, row["workflow_id"])),
                ";".join(str(s) for s in subject_ids),
            ]
        )
    return buffer.getvalue()


def _subject_data(
    database: EmulatorDatabase, subject_ids: list[int], workflow_id: int
) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for subject_id in subject_ids:
        subject = database.query_one("SELECT metadata FROM subjects WHERE id = ?", (subject_id,))
        status = database.query_one(
            "SELECT * FROM subject_workflow_statuses WHERE subject_id = ? AND workflow_id = ? "
            "AND retired_at IS NOT NULL",
            (subject_id, workflow_id),
        )
        retired = None
        if status is not None:
            retired = {
                "id": status["id"],
                "workflow_id": workflow_id,
                "subject_id": subject_id,
                "classifications_count": status["classifications_count"],
                "retired_at": status["retired_at"],
                "retirement_reason": status["retirement_reason"],
                "created_at": status["created_at"],
                "updated_at": status["updated_at"],
            }
        data[str(subject_id)] = {
            "retired": retired,
            **(loads(subject["metadata"]) if subject else {}),
        }
    return data

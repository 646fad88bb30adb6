"""Backfill the store from Panoptes export CSVs (classifications, and workflow versions).

The classification export is streamed in blocks by `panoptes_sync.exports.read_export` and
inserted in chunks with the same idempotent insert the API sync uses, keyed by classification id,
so a classification seen by both paths is stored once. Annotations are kept verbatim (answer
labels, ``annotation_format='label'``); aggregation turns labels back into answer indices through
the workflow version's tasks. Malformed rows (non-UTF-8 ones included) are quarantined with their
line number and id; nothing else is lost.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from panoptes_sync.exports import read_export
from panoptes_sync.store import (
    insert_classifications,
    session_scope,
    upsert_workflow_versions,
)
from panoptes_sync.workflow_versions import parse_workflow_version, read_workflows_csv

__all__ = ["BackfillReport", "MalformedRow", "backfill_export", "backfill_workflow_versions"]

logger = logging.getLogger(__name__)

#: Example malformed rows kept in a report.
MAX_MALFORMED_KEPT = 100


@dataclass(frozen=True, order=True)
class MalformedRow:
    """A skipped export row: its first line in the file, its id (if readable) and why."""

    line: int
    classification_id: str
    reason: str


@dataclass
class BackfillReport:
    """Rows read, stored and skipped by one backfill."""

    rows: int = 0
    inserted: int = 0
    already_stored: int = 0
    malformed: int = 0
    malformed_rows: list[MalformedRow] = field(default_factory=list)

    def add_malformed(self, line: int, classification_id: str, reason: str) -> None:
        """Count a quarantined row, keeping the `MAX_MALFORMED_KEPT` first by line."""
        self.malformed += 1
        bisect.insort(self.malformed_rows, MalformedRow(line, classification_id, reason))
        del self.malformed_rows[MAX_MALFORMED_KEPT:]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "rows": self.rows,
            "inserted": self.inserted,
            "already_stored": self.already_stored,
            "malformed": self.malformed,
            "malformed_rows": [row.__dict__ for row in self.malformed_rows],
        }


def export_row_to_classification(row: dict[str, str], project_id: int | None) -> dict[str, Any]:
    """One export CSV row as a ``classifications`` row.

    Raises:
        ValueError: naming the first field that cannot be read.
    """
    try:
        subject_ids = [int(s) for s in row["subject_ids"].split(";") if s.strip()]
    except ValueError:
        raise ValueError(f"subject_ids {row['subject_ids']!r} are not ;-joined integers") from None
    if not subject_ids:
        raise ValueError("no subject_ids")
    parse_workflow_version(row["workflow_version"])
    annotations = json.loads(row["annotations"])
    if not isinstance(annotations, list):
        raise ValueError("annotations are not a JSON list")
    metadata = json.loads(row["metadata"]) if row["metadata"] else {}
    return {
        "id": int(row["classification_id"]),
        "project_id": project_id,
        "workflow_id": int(row["workflow_id"]),
        "workflow_version": row["workflow_version"].strip(),
        "subject_id": subject_ids[0],
        "subject_ids": subject_ids,
        "user_id": int(row["user_id"]) if row["user_id"].strip() else None,
        "user_name": row["user_name"] or None,
        "created_at": row["created_at"],
        "annotations": annotations,
        "metadata": metadata,
        "source": "export",
        "annotation_format": "label",
    }


def _read_rows(path: Path, report: BackfillReport, project_id: int | None) -> Iterator[dict]:
    def quarantine(line: int, classification_id: str, reason: str) -> None:
        report.rows += 1
        report.add_malformed(line, classification_id, reason)

    for rows, lines in read_export(path, quarantine, newlines_in_values=True):
        report.rows += rows.num_rows
        for row, line in zip(rows.to_pylist(), lines.tolist(), strict=True):
            try:
                yield export_row_to_classification(row, project_id)
            except (ValueError, KeyError, TypeError) as error:
                report.add_malformed(line, row["classification_id"], str(error))


def backfill_export(
    engine: Engine, path: str | Path, project_id: int | None = None, chunk_size: int = 5_000
) -> BackfillReport:
    """Store every classification of an export CSV not stored yet.

    Args:
        engine: the store (already migrated).
        path: the classification export CSV.
        project_id: the project the export belongs to (exports do not say).
        chunk_size: rows inserted per transaction.

    Returns:
        What was read, stored, already there and skipped.

    Raises:
        ExportFormatError: if the file is missing or not a classification export.
    """
    path = Path(path)
    report = BackfillReport()
    chunk: list[dict[str, Any]] = []
    for row in _read_rows(path, report, project_id):
        chunk.append(row)
        if len(chunk) >= chunk_size:
            _insert(engine, chunk, report)
            chunk = []
    if chunk:
        _insert(engine, chunk, report)
    if report.malformed:
        logger.warning(
            "export rows quarantined file=%s rows=%d lines=%s",
            path,
            report.malformed,
            [row.line for row in report.malformed_rows[:5]],
        )
    logger.info(
        "backfill complete file=%s rows=%d inserted=%d already_stored=%d malformed=%d",
        path,
        report.rows,
        report.inserted,
        report.already_stored,
        report.malformed,
    )
    return report


def _insert(engine: Engine, chunk: list[dict[str, Any]], report: BackfillReport) -> None:
    with session_scope(engine) as session:
        new = insert_classifications(session, chunk)
    report.inserted += new
    report.already_stored += len(chunk) - new


def backfill_workflow_versions(
    engine: Engine, path: str | Path, workflow_id: int | None = None
) -> int:
    """Store the workflow versions of a workflows export CSV (tasks with strings injected).

    Returns:
        The number of versions written.

    Raises:
        ExportFormatError: if the file is missing or not a workflows export.
    """
    versions = read_workflows_csv(path, workflow_id)
    with session_scope(engine) as session:
        return upsert_workflow_versions(
            session,
            [
                {
                    "workflow_id": v.workflow_id,
                    "major": v.major,
                    "minor": v.minor,
                    "first_task": v.first_task,
                    "tasks": dict(v.tasks),
                    "strings": {},
                }
                for v in versions
            ],
        )

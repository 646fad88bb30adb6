"""Malformed export rows, non-UTF-8 ones included, are quarantined with their line numbers."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from panoptes_sync.aggregate import aggregate_export_files
from panoptes_sync.backfill import backfill_export
from panoptes_sync.cli import main
from panoptes_sync.store import Classification, session_scope, upgrade_database
from tests.panoptes_sync.synthetic import (
    PROJECT_ID,
    WORKFLOW_ID,
    generate,
    write_export,
    write_workflows,
)

#: Rows (0-based data rows) given a non-UTF-8 byte: in the annotations, and in the user name.
BAD_ANNOTATION, BAD_USER = 3, 11


def corrupt(path: Path, rows: list[dict[str, str]]) -> Path:
    """Replace one annotation label and one user name with Latin-1 bytes (not UTF-8)."""
    raw = path.read_bytes()
    label = json.loads(rows[BAD_ANNOTATION]["annotations"])[0]["value"]
    line = raw.split(b"\r\n")[BAD_ANNOTATION + 1]
    assert label.encode() in line
    raw = raw.replace(line, line.replace(label.encode(), b"Caf\xe9 " + label.encode(), 1), 1)
    name = rows[BAD_USER]["user_name"].encode()
    line = raw.split(b"\r\n")[BAD_USER + 1]
    raw = raw.replace(line, line.replace(name, b"Jos\xe9", 1), 1)
    path.write_bytes(raw)
    return path


@pytest.fixture
def rows() -> list[dict[str, str]]:
    return generate(n=60, seed=31).export_rows


def test_non_utf8_rows_quarantined_rest_aggregated(
    tmp_path: Path, rows: list[dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    """One bad byte used to reject the whole export, blaming its columns and naming no line."""
    workflows = write_workflows(tmp_path / "w.csv")
    export = corrupt(write_export(tmp_path / "e.csv", rows), rows)
    with caplog.at_level(logging.WARNING, logger="panoptes_sync"):
        table, report = aggregate_export_files(export, workflows, WORKFLOW_ID)
    clean = [row for n, row in enumerate(rows) if n not in (BAD_ANNOTATION, BAD_USER)]
    expected, _ = aggregate_export_files(write_export(tmp_path / "c.csv", clean), workflows, 6122)
    pd.testing.assert_frame_equal(table, expected)
    lines = [BAD_ANNOTATION + 2, BAD_USER + 2]  # line 1 is the header
    assert (report.quarantined, report.quarantined_lines) == (2, lines)
    assert report.to_dict()["quarantined_lines"] == lines
    assert report.classifications == 60
    warning = [r.getMessage() for r in caplog.records if "quarantined" in r.getMessage()]
    assert warning and "rows=2" in warning[0] and "lines=[5, 13]" in warning[0]


def test_first_only_skips_the_same_rows(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    workflows = write_workflows(tmp_path / "w.csv")
    export = corrupt(write_export(tmp_path / "e.csv", rows), rows)
    table, report = aggregate_export_files(export, workflows, WORKFLOW_ID, first_only=True)
    clean = [row for n, row in enumerate(rows) if n not in (BAD_ANNOTATION, BAD_USER)]
    expected, _ = aggregate_export_files(
        write_export(tmp_path / "c.csv", clean), workflows, WORKFLOW_ID, first_only=True
    )
    pd.testing.assert_frame_equal(table, expected)
    assert report.quarantined == 2


def test_structural_rows_quarantined_with_lines(tmp_path: Path, rows: list[dict[str, str]]) -> None:
    """Wrong field counts, ids that are not numbers and unreadable versions: each with its line."""
    rows[4]["workflow_version"] = "banana"
    rows[7]["classification_id"] = "x7"
    export = write_export(tmp_path / "e.csv", rows, extra_lines=["abc,too,few", "77,x"])
    _, report = aggregate_export_files(export, write_workflows(tmp_path / "w.csv"), WORKFLOW_ID)
    assert report.quarantined == 4
    assert report.quarantined_lines == [6, 9, 62, 63]


def test_first_quarantined_lines_kept_in_file_order(
    tmp_path: Path, rows: list[dict[str, str]]
) -> None:
    """A short row in mid-file is reported with the rows around it, in line order."""
    for number in (2, 40, 41, 42, 50):
        rows[number]["subject_ids"] = "none"
    export = write_export(tmp_path / "e.csv", rows)
    raw = export.read_bytes().split(b"\r\n")
    raw.insert(9, b"5,short")  # becomes line 10
    export.write_bytes(b"\r\n".join(raw))
    _, report = aggregate_export_files(export, write_workflows(tmp_path / "w.csv"), WORKFLOW_ID)
    assert report.quarantined == 6
    assert report.quarantined_lines == [4, 10, 43, 44, 45]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = upgrade_database(database_url)
    yield engine
    engine.dispose()


def test_backfill_quarantines_non_utf8_rows(
    tmp_path: Path, rows: list[dict[str, str]], engine: Engine
) -> None:
    export = corrupt(write_export(tmp_path / "e.csv", rows), rows)
    report = backfill_export(engine, export, project_id=PROJECT_ID, chunk_size=7)
    assert (report.rows, report.inserted, report.malformed) == (60, 58, 2)
    ids = [r["classification_id"] for r in rows]
    found = [(row.line, row.classification_id) for row in report.malformed_rows]
    assert found == [(BAD_ANNOTATION + 2, ids[BAD_ANNOTATION]), (BAD_USER + 2, ids[BAD_USER])]
    assert all("UTF-8" in row.reason for row in report.malformed_rows)
    with session_scope(engine) as session:
        stored = set(session.scalars(select(Classification.id)))
    assert stored == {int(i) for n, i in enumerate(ids) if n not in (BAD_ANNOTATION, BAD_USER)}


def test_cli_summary_reports_quarantine(
    tmp_path: Path, rows: list[dict[str, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    export = corrupt(write_export(tmp_path / "e.csv", rows), rows)
    arguments = [
        "aggregate",
        "--classifications-csv",
        str(export),
        "--workflows-csv",
        str(write_workflows(tmp_path / "w.csv")),
        "--workflow-id",
        str(WORKFLOW_ID),
        "--out",
        str(tmp_path / "counts.csv"),
    ]
    assert main(arguments) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["quarantined"], summary["quarantined_lines"]) == (2, [5, 13])

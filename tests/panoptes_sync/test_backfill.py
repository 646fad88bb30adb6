"""Export backfill: streaming, idempotent, equal to the API path, malformed rows reported."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from panoptes_sync.aggregate import aggregate_store, stored_vote_table
from panoptes_sync.backfill import backfill_export, backfill_workflow_versions
from panoptes_sync.cli import main
from panoptes_sync.errors import ExportFormatError
from panoptes_sync.store import (
    Classification,
    WorkflowVersion,
    insert_classifications,
    session_scope,
    upgrade_database,
)
from tests.panoptes_sync.synthetic import (
    PROJECT_ID,
    WORKFLOW_ID,
    generate,
    write_export,
    write_workflows,
)

sync = pytest.importorskip("panoptes_sync.sync", reason="the API-path row builder lives in sync.py")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = upgrade_database(database_url)
    yield engine
    engine.dispose()


def stored(engine: Engine) -> dict[int, Classification]:
    with session_scope(engine) as session:
        return {c.id: c for c in session.scalars(select(Classification))}


def counts_table(engine: Engine, name: str = "workflow-6122") -> pd.DataFrame:
    columns = [f"T{t}_{i}" for t in range(12) for i in range(7)]
    table = stored_vote_table(engine, name, columns, None)
    return table.loc[:, (table != 0).any(axis=0)]


def reference_table(reference: dict[int, Counter]) -> pd.DataFrame:
    frame = pd.DataFrame.from_dict(reference, orient="index").fillna(0).astype("int64")
    frame.index.name = "subject_id"
    return frame.sort_index()


def test_backfill_stores_each_row_once(tmp_path: Path, engine: Engine) -> None:
    data = generate(n=120, seed=7)
    export = write_export(tmp_path / "export.csv", data.export_rows)
    first = backfill_export(engine, export, project_id=PROJECT_ID, chunk_size=50)
    again = backfill_export(engine, export, project_id=PROJECT_ID, chunk_size=50)
    assert (first.rows, first.inserted, first.already_stored, first.malformed) == (120, 120, 0, 0)
    assert (again.inserted, again.already_stored) == (0, 120)
    rows = stored(engine)
    assert len(rows) == 120
    one = rows[int(data.export_rows[0]["classification_id"])]
    assert (one.source, one.annotation_format, one.project_id) == ("export", "label", PROJECT_ID)
    assert one.annotations[0]["task"] == "T0" and isinstance(one.annotations[0]["value"], str)
    assert one.created_at.tzinfo is not None
    assert one.subject_ids == [int(data.export_rows[0]["subject_ids"])]


def test_malformed_rows_reported_with_line_and_id(tmp_path: Path, engine: Engine) -> None:
    data = generate(n=10, seed=8)
    data.export_rows[2]["annotations"] = "[{broken"
    data.export_rows[5]["subject_ids"] = "abc"
    data.export_rows[7]["metadata"] = '{"note":\n"spans"\n}'  # a field over three lines
    export = write_export(tmp_path / "e.csv", data.export_rows, extra_lines=["999,only,three"])
    report = backfill_export(engine, export, project_id=PROJECT_ID)
    assert report.rows == 11
    assert report.malformed == 3
    found = {(row.line, row.classification_id) for row in report.malformed_rows}
    ids = [r["classification_id"] for r in data.export_rows]
    assert found == {(4, ids[2]), (7, ids[5]), (14, "999")}
    assert report.inserted == 8
    assert set(stored(engine)) == {int(i) for n, i in enumerate(ids) if n not in (2, 5)}


def test_backfill_and_api_path_store_once_and_count_the_same(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    data = generate(n=200, seed=9)
    with session_scope(engine) as session:
        insert_classifications(session, [sync.classification_row(c) for c in data.api[:120]])
    report = backfill_export(engine, write_export(tmp_path / "e.csv", data.export_rows), PROJECT_ID)
    assert (report.inserted, report.already_stored) == (80, 120)
    rows = stored(engine)
    assert len(rows) == 200
    assert Counter(r.source for r in rows.values()) == {"api": 120, "export": 80}
    assert backfill_workflow_versions(engine, write_workflows(tmp_path / "w.csv"), WORKFLOW_ID) == 3
    aggregate_store(engine, WORKFLOW_ID)
    pd.testing.assert_frame_equal(
        counts_table(engine).set_index("subject_id"),
        reference_table(data.reference)[counts_table(engine).columns[1:]],
        check_dtype=False,
        check_like=True,
    )


def test_backfill_after_aggregation_triggers_rebuild(tmp_path: Path, engine: Engine) -> None:
    data = generate(n=150, seed=10)
    backfill_workflow_versions(engine, write_workflows(tmp_path / "w.csv"))
    with session_scope(engine) as session:
        insert_classifications(session, [sync.classification_row(c) for c in data.api[100:]])
    aggregate_store(engine, WORKFLOW_ID)
    backfill_export(engine, write_export(tmp_path / "e.csv", data.export_rows[:100]), PROJECT_ID)
    aggregate_store(engine, WORKFLOW_ID)
    table = counts_table(engine).set_index("subject_id")
    pd.testing.assert_frame_equal(
        table, reference_table(data.reference)[table.columns], check_dtype=False
    )


def test_workflow_versions_stored_with_labels(tmp_path: Path, engine: Engine) -> None:
    backfill_workflow_versions(engine, write_workflows(tmp_path / "w.csv"))
    with session_scope(engine) as session:
        total = session.scalar(select(func.count()).select_from(WorkflowVersion))
        version = session.get(WorkflowVersion, (WORKFLOW_ID, 66, 1))
    assert total == 3
    assert version.tasks["T0"]["answers"][0]["label"] == "Smooth"


def test_not_an_export(tmp_path: Path, engine: Engine) -> None:
    bogus = tmp_path / "bogus.csv"
    bogus.write_text("a,b\n1,2\n")
    with pytest.raises(ExportFormatError, match="lacks"):
        backfill_export(engine, bogus)
    with pytest.raises(ExportFormatError, match="no classification export"):
        backfill_export(engine, tmp_path / "missing.csv")


def test_cli_backfill_then_status(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = generate(n=30, seed=13)
    export = write_export(tmp_path / "e.csv", data.export_rows)
    workflows = write_workflows(tmp_path / "w.csv")
    arguments = ["--database-url", database_url, "--project-id", str(PROJECT_ID)]
    code = main(
        [
            "backfill",
            *arguments,
            "--classifications-csv",
            str(export),
            "--workflows-csv",
            str(workflows),
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["inserted"], result["workflow_versions"]) == (30, 3)
    assert main(["status", "--database-url", database_url]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["rows"]["classifications"] == 30
    assert main(["backfill", "--database-url", database_url]) == 2
    assert main(["backfill", "--database-url", database_url, "--classifications-csv", "x.csv"]) == 1
    assert "ExportFormatError" in capsys.readouterr().err


def test_module_runs_as_a_subprocess(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    result = subprocess.run(
        [sys.executable, "-m", "panoptes_sync", "status", "--database-url", url],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"]["classifications"] == 0

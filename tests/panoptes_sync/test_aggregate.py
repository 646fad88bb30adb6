"""Vote aggregation equals a plain-Python count of seeded classifications, in every format."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from panoptes_sync.aggregate import (
    aggregate_export_files,
    aggregate_store,
    first_classification_mask,
    stored_vote_table,
    user_keys,
)
from panoptes_sync.annotation_votes import explode_annotations
from panoptes_sync.backfill import backfill_workflow_versions
from panoptes_sync.cli import main
from panoptes_sync.counting import AggregationReport, count_votes
from panoptes_sync.errors import AggregationError, ExportFormatError
from panoptes_sync.store import insert_classifications, session_scope, upgrade_database
from panoptes_sync.workflow_versions import AnswerMapping, read_workflows_csv
from tests.panoptes_sync.synthetic import (
    WORKFLOW_ID,
    generate,
    write_export,
    write_workflows,
)
from zoobot.schemas import decals_dr5_schema, gz2_schema

sync = pytest.importorskip("panoptes_sync.sync", reason="the API-path row builder lives in sync.py")


def reference_table(reference: dict[int, Counter], columns: list[str]) -> pd.DataFrame:
    rows = [
        {"subject_id": s, **{c: counts.get(c, 0) for c in columns}}
        for s, counts in reference.items()
    ]
    return pd.DataFrame(rows).sort_values("subject_id").reset_index(drop=True)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    data = generate(n=400, seed=3)
    return write_export(tmp_path / "export.csv", data.export_rows), write_workflows(
        tmp_path / "wf.csv"
    )


def test_export_counts_equal_reference(files: tuple[Path, Path]) -> None:
    export, workflows = files
    table, report = aggregate_export_files(export, workflows, WORKFLOW_ID, block_size=4096)
    expected = reference_table(generate(n=400, seed=3).reference, list(table.columns[1:]))
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert report.problems == {}
    assert report.classifications == 400


def test_first_only_equals_reference(files: tuple[Path, Path]) -> None:
    export, workflows = files
    table, report = aggregate_export_files(export, workflows, WORKFLOW_ID, first_only=True)
    expected = reference_table(generate(n=400, seed=3).reference_first, list(table.columns[1:]))
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert report.filtered > 0


def test_schema_columns_and_totals(files: tuple[Path, Path]) -> None:
    export, workflows = files
    table, report = aggregate_export_files(export, workflows, WORKFLOW_ID, schema=decals_dr5_schema)
    reference = generate(n=400, seed=3).reference
    mapping = decals_dr5_schema.panoptes_mapping
    for subject, counts in list(reference.items())[:5]:
        row = table.set_index("subject_id").loc[subject]
        for (task, index), column in mapping.items():
            assert row[column] == counts.get(f"{task}_{index}", 0)
        smooth = [f"smooth-or-featured_{a}" for a in ("smooth", "featured-or-disk", "artifact")]
        assert row["smooth-or-featured_total-votes"] == row[smooth].sum()
    assert report.issues["unmapped_answer"] > 0  # T10 is not a schema question
    assert report.problems == {}


def test_index_and_label_formats_count_the_same(files: tuple[Path, Path]) -> None:
    data = generate(n=200, seed=5)
    mapping = AnswerMapping(read_workflows_csv(files[1], WORKFLOW_ID))
    ids = np.array([int(c["id"]) for c in data.api])
    subjects = np.array([int(c["links"]["subjects"][0]) for c in data.api])
    majors = np.array([int(c["metadata"]["workflow_version"].split(".")[0]) for c in data.api])
    from_api, _ = count_votes(
        ids, subjects, majors, [json.dumps(c["annotations"]) for c in data.api], mapping
    )
    from_labels, _ = count_votes(
        ids, subjects, majors, [r["annotations"] for r in data.export_rows], mapping
    )
    pd.testing.assert_frame_equal(from_api, from_labels)


def test_version_mapping_bridges_major_versions(files: tuple[Path, Path]) -> None:
    mapping = AnswerMapping(read_workflows_csv(files[1], WORKFLOW_ID))
    assert mapping.target_major == 66
    smooth_65 = mapping.resolve(65, {"task": "T0", "value": 2})
    assert [mapping.columns[c] for c in smooth_65.columns] == ["T0_0"]
    assert mapping.resolve(65, {"task": "T0", "value": "Smooth"}).columns == smooth_65.columns
    assert (
        mapping.resolve(66, {"task": "T1", "value": "In-between"}).columns
        == mapping.resolve(66, {"task": "T1", "value": 1}).columns
    )
    older = AnswerMapping(read_workflows_csv(files[1], WORKFLOW_ID), target_major=65)
    assert [older.columns[c] for c in older.resolve(66, {"task": "T0", "value": 0}).columns] == [
        "T0_2"
    ]


def test_multiple_choice_counts_each_answer_once() -> None:
    mapping = AnswerMapping(read_workflows_csv(write_workflows(Path("/tmp") / "unused.csv")))
    resolution = mapping.resolve(66, {"task": "T10", "value": [6, 1, 6]})
    assert sorted(mapping.columns[c] for c in resolution.columns) == ["T10_1", "T10_6"]
    assert mapping.resolve(66, {"task": "T10", "value": []}).issue == "no_answer"
    assert mapping.resolve(66, {"task": "T0", "value": [1]}).issue == "malformed_annotation"


def test_malformed_rows_and_annotations_reported_and_skipped(tmp_path: Path) -> None:
    data = generate(n=50, seed=1)
    rows = data.export_rows
    rows[0]["annotations"] = "not json"
    rows[1]["annotations"] = json.dumps(
        [{"task": "T99", "value": 0}, {"task": "T0", "value": "Smooth"}]
    )
    rows[2]["annotations"] = json.dumps([{"task": "T0", "value": "Definitely a cat"}])
    rows[3]["annotations"] = json.dumps([{"task": "T0", "value": 1}, {"task": "T0", "value": 2}])
    rows[4]["workflow_version"] = "banana"
    rows[5]["annotations"] = json.dumps(["just a string"])
    export = write_export(tmp_path / "e.csv", rows, extra_lines=["abc,too,few", "77,x"])
    table, report = aggregate_export_files(export, write_workflows(tmp_path / "w.csv"), WORKFLOW_ID)
    ids = [int(r["classification_id"]) for r in rows]
    assert {ids[0], ids[4], 77} <= set(report.examples["malformed_row"])
    assert report.issues["malformed_row"] == 4
    assert report.examples["unknown_task"] == [ids[1]]
    assert report.examples["unknown_answer"] == [ids[2]]
    assert report.examples["duplicate_task"] == [ids[3]]
    assert report.examples["malformed_annotation"] == [ids[5]]
    assert table.set_index("subject_id")["T0_0"].sum() >= 1  # ids[1]'s valid T0 still counts


def test_duplicate_classifications_counted_once(tmp_path: Path) -> None:
    data = generate(n=60, seed=2)
    export = write_export(tmp_path / "e.csv", data.export_rows + data.export_rows[:10])
    table, report = aggregate_export_files(
        export, write_workflows(tmp_path / "w.csv"), WORKFLOW_ID, block_size=2048
    )
    expected = reference_table(data.reference, list(table.columns[1:]))
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert report.issues["duplicate_classification"] == 10


def test_other_workflows_filtered(tmp_path: Path) -> None:
    data = generate(n=40, seed=4)
    data.export_rows[0]["workflow_id"] = "1"
    export = write_export(tmp_path / "e.csv", data.export_rows)
    _, report = aggregate_export_files(export, write_workflows(tmp_path / "w.csv"), WORKFLOW_ID)
    assert report.filtered == 1


def test_missing_files_and_bad_schema_raise(tmp_path: Path, files: tuple[Path, Path]) -> None:
    with pytest.raises(ExportFormatError, match="no classification export"):
        aggregate_export_files(tmp_path / "nope.csv", files[1], WORKFLOW_ID)
    with pytest.raises(AggregationError, match="panoptes_mapping"):
        aggregate_export_files(files[0], files[1], WORKFLOW_ID, schema=gz2_schema)
    with pytest.raises(AggregationError, match="no workflow versions"):
        aggregate_export_files(files[0], files[1], 999)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(st.sampled_from(["T0", "T1", "T10"]), st.integers(0, 3), st.booleans()),
            max_size=5,
        ),
        min_size=1,
        max_size=30,
    ),
    st.booleans(),
)
def test_explode_and_count_match_python(
    classifications: list[list[tuple[str, int, bool]]], spaced: bool
) -> None:
    """Random annotations (compact or spaced JSON): count_votes equals a plain loop."""
    workflows = read_workflows_csv(write_workflows(Path("/tmp") / "hypothesis_wf.csv"))
    mapping = AnswerMapping(workflows)
    texts, expected = [], Counter()
    for row, drawn in enumerate(classifications):
        items, done = [], set()
        for task, index, as_list in drawn:
            value = [index] if task == "T10" and as_list else index
            items.append({"task": task, "value": value})
            n_answers = 7 if task == "T10" else 3
            if task in done:  # only a task's first annotation in a classification counts
                continue
            done.add(task)
            if index < n_answers:
                expected[(row % 4, f"{task}_{index}")] += 1
        separators = (", ", ": ") if spaced else (",", ":")
        texts.append(json.dumps(items, separators=separators))
    ids = np.arange(len(texts), dtype=np.int64)
    counts, report = count_votes(ids, ids % 4, np.full(len(ids), 66), texts, mapping)
    got = Counter({(s, mapping.columns[c]): n for s, c, n in counts.itertuples(index=False)})
    assert got == expected
    assert report.votes == sum(expected.values())


def test_explode_handles_separators_inside_labels() -> None:
    texts = ['[{"task":"T0","value":"a},{b"},{"task":"T1","value":0}]', "[]", None, "{}"]
    exploded = explode_annotations(texts)
    assert exploded.row.tolist() == [0, 0]
    assert [exploded.objects[c] for c in exploded.code] == [
        {"task": "T0", "value": "a},{b"},
        {"task": "T1", "value": 0},
    ]
    assert exploded.bad_rows.tolist() == [2, 3]


def test_first_classification_keys() -> None:
    keys = user_keys([5, None, None, "", 5.0], ["a", "bob", "not-logged-in-1f", None, None])
    assert keys.tolist() == ["id:5", "name:bob", None, None, "id:5"]
    mask = first_classification_mask(np.array([9, 3, 4, 5, 7]), np.array([1, 1, 1, 1, 1]), keys)
    assert mask.tolist() == [False, True, True, True, True]


def test_report_merge_keeps_examples_bounded() -> None:
    total = AggregationReport()
    for start in range(0, 40, 10):
        part = AggregationReport(classifications=10)
        part.add_issue("unknown_task", list(range(start, start + 10)))
        total.merge(part)
    assert total.issues["unknown_task"] == 40
    assert total.examples["unknown_task"] == [0, 1, 2, 3, 4]
    assert total.to_dict()["classifications"] == 40


@pytest.fixture
def engine(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    engine = upgrade_database(database_url)
    backfill_workflow_versions(engine, write_workflows(tmp_path / "workflows.csv"))
    yield engine
    engine.dispose()


def api_rows(data: Any, part: slice) -> list[dict[str, Any]]:
    return [sync.classification_row(c) for c in data.api[part]]


@pytest.mark.parametrize("first_only", [False, True])
def test_store_aggregation_is_incremental(engine: Engine, first_only: bool) -> None:
    data = generate(n=240, seed=11)
    reference = data.reference_first if first_only else data.reference
    for part in (slice(0, 100), slice(100, 101), slice(101, 240)):
        with session_scope(engine) as session:
            insert_classifications(session, api_rows(data, part))
        report = aggregate_store(
            engine, WORKFLOW_ID, decals_dr5_schema, first_only=first_only, batch_size=64
        )
        assert report.problems == {}
    assert aggregate_store(engine, WORKFLOW_ID, decals_dr5_schema, first_only=first_only).votes == 0
    table = stored_vote_table(engine, "decals_dr5", decals_dr5_schema.label_cols, decals_dr5_schema)
    mapping = decals_dr5_schema.panoptes_mapping
    expected = reference_table(
        {
            s: Counter(
                {
                    mapping[(t, int(i))]: n
                    for key, n in c.items()
                    for t, i in [key.split("_")]
                    if (t, int(i)) in mapping
                }
            )
            for s, c in reference.items()
        },
        decals_dr5_schema.label_cols,
    )
    pd.testing.assert_frame_equal(
        table[["subject_id", *decals_dr5_schema.label_cols]], expected, check_dtype=False
    )


def test_store_aggregation_options_must_match(engine: Engine) -> None:
    data = generate(n=30, seed=12)
    with session_scope(engine) as session:
        insert_classifications(session, api_rows(data, slice(None)))
    first = aggregate_store(engine, WORKFLOW_ID)
    with pytest.raises(AggregationError, match="--rebuild"):
        aggregate_store(engine, WORKFLOW_ID, first_only=True)
    again = aggregate_store(engine, WORKFLOW_ID, rebuild=True)
    assert again.votes == first.votes > 0


def test_store_aggregation_needs_versions(database_url: str) -> None:
    engine = upgrade_database(database_url)
    with pytest.raises(AggregationError, match="no workflow versions"):
        aggregate_store(engine, WORKFLOW_ID)
    engine.dispose()


def test_cli_aggregate_files(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export, workflows = files
    out = tmp_path / "counts.csv"
    common = ["--classifications-csv", str(export), "--workflows-csv", str(workflows)]
    assert main(["aggregate", *common, "--workflow-id", str(WORKFLOW_ID), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["classifications"] == 400
    table = pd.read_csv(out)
    expected = reference_table(generate(n=400, seed=3).reference, list(table.columns[1:]))
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert (
        main(["aggregate", *common, "--workflow-id", str(WORKFLOW_ID), "--schema", "decals_dr5"])
        == 0
    )
    with_schema = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert list(with_schema.columns[1:35]) == decals_dr5_schema.label_cols
    assert "merging_total-votes" in with_schema.columns
    assert main(["aggregate", *common, "--workflow-id", "6122", "--schema", "nope"]) == 2
    assert main(["aggregate", *common]) == 2


def test_cli_aggregate_store(engine: Engine, database_url: str, capsys) -> None:
    with session_scope(engine) as session:
        insert_classifications(session, api_rows(generate(n=50, seed=14), slice(None)))
    arguments = ["aggregate", "--database-url", database_url, "--workflow-id", str(WORKFLOW_ID)]
    assert main(arguments) == 0
    assert json.loads(capsys.readouterr().out)["classifications"] == 50
    assert main([*arguments, "--first-only"]) == 1
    assert "--rebuild" in capsys.readouterr().err
    assert main([*arguments, "--first-only", "--rebuild"]) == 0

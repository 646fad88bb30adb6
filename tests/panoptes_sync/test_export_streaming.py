"""The streaming export path: prefetching reader, seen-id runs, and counts across many blocks."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panoptes_sync.aggregate import _SeenIds, aggregate_export_files
from panoptes_sync.counting import VoteCounter, count_votes, extract_votes
from panoptes_sync.exports import prefetch
from panoptes_sync.workflow_versions import AnswerMapping, read_workflows_csv
from tests.panoptes_sync.synthetic import WORKFLOW_ID, generate, write_export, write_workflows


def test_prefetch_yields_everything_in_order() -> None:
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))
    assert list(prefetch(iter([]))) == []


def test_prefetch_reraises_the_producer_error() -> None:
    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("bad block")

    items = prefetch(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad block"):
        next(items)


def test_prefetch_stops_its_thread_when_closed() -> None:
    produced = []

    def endless() -> Iterator[int]:
        count = 0
        while True:
            produced.append(count)
            yield count
            count += 1

    before = threading.active_count()
    items = prefetch(endless(), depth=2)
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()
    assert threading.active_count() == before
    assert len(produced) <= 5 + 2 + 1  # bounded read-ahead: queue depth plus one in hand


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 60), max_size=20), max_size=12))
def test_seen_ids_match_a_set(batches: list[list[int]]) -> None:
    seen, reference = _SeenIds(), set()
    for batch in batches:
        fresh = seen.new_mask(np.asarray(batch, dtype=np.int64))
        expected = []
        for value in batch:
            expected.append(value not in reference)
            reference.add(value)
        assert fresh.tolist() == expected


def test_shuffled_duplicated_export_in_small_blocks(tmp_path: Path) -> None:
    """Rows out of id order with repeats across blocks: every classification counts once."""
    data = generate(n=300, seed=21)
    rows = data.export_rows + random.Random(0).sample(data.export_rows, 40)
    random.Random(1).shuffle(rows)
    export = write_export(tmp_path / "e.csv", rows)
    workflows = write_workflows(tmp_path / "w.csv")
    table, report = aggregate_export_files(
        export, workflows, WORKFLOW_ID, block_size=3000, prefetch_depth=1
    )
    expected = pd.DataFrame(
        [
            {"subject_id": s, **{c: counts.get(c, 0) for c in table.columns[1:]}}
            for s, counts in data.reference.items()
        ]
    ).sort_values("subject_id", ignore_index=True)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert report.issues["duplicate_classification"] == 40
    assert report.classifications == 340


def test_vote_counter_equals_one_batch_count(tmp_path: Path) -> None:
    """Votes added batch by batch (subjects recurring) sum to a single count of all rows."""
    data = generate(n=500, seed=22)
    mapping = AnswerMapping(read_workflows_csv(write_workflows(tmp_path / "w.csv"), WORKFLOW_ID))
    ids = np.array([int(r["classification_id"]) for r in data.export_rows])
    subjects = np.array([int(r["subject_ids"]) for r in data.export_rows])
    majors = np.array([int(r["workflow_version"].split(".")[0]) for r in data.export_rows])
    texts = [r["annotations"] for r in data.export_rows]
    counter = VoteCounter(mapping)
    for part in np.array_split(np.arange(len(ids)), 7):
        batch_texts = [texts[i] for i in part]
        counter.add(*extract_votes(ids[part], subjects[part], majors[part], batch_texts, mapping))
    long, report = count_votes(ids, subjects, majors, texts, mapping)
    wide = long.pivot_table(index="subject_id", columns="column", values="count", fill_value=0)
    table = counter.table().set_index("subject_id")
    assert table.index.is_monotonic_increasing
    for column, name in enumerate(mapping.columns):
        got = table[name]
        want = wide[column].reindex(table.index, fill_value=0) if column in wide else 0 * got
        assert got.tolist() == want.tolist()
    assert counter.report.votes == report.votes == int(table.to_numpy().sum())


def test_first_only_counts_a_repeated_classification_once(tmp_path: Path) -> None:
    """A row exported twice is one classification: first-only must not drop both copies."""
    data = generate(n=200, seed=23)
    export = write_export(tmp_path / "e.csv", data.export_rows + data.export_rows[:30])
    table, report = aggregate_export_files(
        export, write_workflows(tmp_path / "w.csv"), WORKFLOW_ID, first_only=True, block_size=4096
    )
    expected = pd.DataFrame(
        [
            {"subject_id": s, **{c: counts.get(c, 0) for c in table.columns[1:]}}
            for s, counts in data.reference_first.items()
        ]
    ).sort_values("subject_id", ignore_index=True)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    assert report.issues["duplicate_classification"] == 30

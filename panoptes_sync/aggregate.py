"""The one vote-aggregation pipeline: store or export batches -> first-only rule -> `VoteCounter`.

Two sources yield `ClassificationBatch` arrays: the store (classifications stored since the last
run, in id order; `aggregate_store`) and export files (`aggregate_export_files`, through
`panoptes_sync.exports`). Both go through the same steps: repeated ids are dropped, the first-only
rule keeps each volunteer's first classification of a subject, and a `VoteCounter` counts the
votes. The store path then adds each batch's counts to ``vote_counts`` together with the new
``aggregation_state`` in one transaction; the export path returns the per-subject table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine, Text, cast, select
from sqlalchemy.orm import Session

from panoptes_sync.counting import AggregationReport, ClassificationBatch, VoteCounter, vote_table
from panoptes_sync.errors import AggregationError
from panoptes_sync.exports import DEFAULT_BLOCK_SIZE, iter_export_batches, prefetch
from panoptes_sync.store import (
    Classification,
    WorkflowVersion,
    add_vote_counts,
    get_aggregation_state,
    get_vote_counts,
    reset_aggregation,
    session_scope,
    set_aggregation_state,
)
from panoptes_sync.workflow_versions import (
    AnswerMapping,
    WorkflowVersionTasks,
    inject_strings,
    major_versions,
    read_workflows_csv,
)
from zoobot.schemas import Schema

__all__ = [
    "aggregate_export_files",
    "aggregate_store",
    "first_classification_mask",
    "load_workflow_versions",
    "stored_vote_table",
    "user_keys",
]

logger = logging.getLogger(__name__)

#: Most values bound in one SQL ``IN (...)`` (SQLite allows 32766 parameters).
IN_CLAUSE_LIMIT = 5_000


def user_keys(
    user_ids: Sequence[Any] | pa.Array, user_names: Sequence[Any] | pa.Array
) -> np.ndarray:
    """One key per classification for "same volunteer": ``id:<user_id>``, else ``name:<login>``.

    Anonymous classifications (no user id, and no name or a ``not-logged-in-...`` name) get None.
    """
    ids = pd.Series(_python(user_ids), dtype="object")
    names = pd.Series(_python(user_names), dtype="object")
    keys = np.full(len(ids), None, dtype=object)
    has_name = (
        names.notna()
        & (names.astype(str) != "")
        & ~names.astype(str).str.startswith("not-logged-in")
    )
    keys[has_name.to_numpy()] = ("name:" + names[has_name].astype(str)).to_numpy()
    has_id = ids.notna() & (ids.astype(str) != "")
    id_text = ids[has_id].map(lambda value: str(int(float(value))))
    keys[has_id.to_numpy()] = ("id:" + id_text).to_numpy()
    return keys


def _python(values: Sequence[Any] | pa.Array) -> Sequence[Any]:
    return values.to_pylist() if isinstance(values, pa.Array | pa.ChunkedArray) else values


def first_classification_mask(
    classification_ids: np.ndarray,
    subject_ids: np.ndarray,
    keys: np.ndarray,
    earlier: set[tuple[int, str]] | None = None,
) -> np.ndarray:
    """The first-only rule: True for each volunteer's first (lowest id) classification of a subject.

    Anonymous classifications always count.

    Args:
        classification_ids: ``[n]`` ids.
        subject_ids: ``[n]`` subject of each classification.
        keys: ``[n]`` volunteer keys from `user_keys` (None = anonymous).
        earlier: (subject, key) pairs of classifications counted before these (the store's
            earlier runs); their volunteers' classifications here are not first.

    Returns:
        ``[n]`` boolean mask of classifications to keep.
    """
    frame = pd.DataFrame({"id": classification_ids, "subject": subject_ids, "user": keys})
    named = frame[frame["user"].notna()].sort_values("id", kind="stable")
    repeated = named.index[named.duplicated(["subject", "user"], keep="first")]
    keep = np.ones(len(frame), dtype=bool)
    keep[repeated.to_numpy()] = False
    if earlier:
        pairs = zip(np.asarray(subject_ids).tolist(), keys, strict=True)
        keep &= np.array([pair not in earlier for pair in pairs], dtype=bool)
    return keep


class _SeenIds:
    """Classification ids already counted, as sorted runs merged like a binary counter.

    Runs of similar size are merged, so adding n ids costs O(n log n) in all, and a lookup
    searches O(log n) runs. Exports come in id order; then each batch's ids are all new and
    above every run, which is checked without searching.
    """

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def new_mask(self, ids: np.ndarray) -> np.ndarray:
        """True for ids not seen before nor earlier in ``ids``; then marks them seen."""
        if not len(ids):
            return np.zeros(0, dtype=bool)
        ascending = bool(np.all(ids[1:] > ids[:-1]))
        fresh = np.ones(len(ids), dtype=bool)
        if not ascending:
            _, first = np.unique(ids, return_index=True)
            fresh[:] = False
            fresh[first] = True
        low, high = ids.min(), ids.max()
        for run in self._runs:
            if low <= run[-1] and high >= run[0]:
                position = np.minimum(np.searchsorted(run, ids), len(run) - 1)
                fresh &= run[position] != ids
        new = ids[fresh] if ascending else np.sort(ids[fresh])
        if len(new):
            self._runs.append(new)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            last = self._runs.pop()
            self._runs.append(np.sort(np.concatenate([self._runs.pop(), last]), kind="stable"))
        return fresh


def _count_batch(
    counter: VoteCounter, batch: ClassificationBatch, keep: np.ndarray, seen: _SeenIds | None
) -> None:
    """The counting step of both sources: drop repeated ids, count the ``keep`` rows' votes."""
    ids = batch.classification_ids
    fresh = seen.new_mask(ids) if seen is not None else np.ones(len(ids), dtype=bool)
    if not fresh.all():
        counter.report.add_issue("duplicate_classification", ids[~fresh])
    counted = fresh & keep
    counter.report.filtered += int((fresh & ~counted).sum())
    counter.count(batch, counted)


def load_workflow_versions(session: Session, workflow_id: int) -> list[WorkflowVersionTasks]:
    """A workflow's stored versions, strings injected into the tasks."""
    rows = session.scalars(
        select(WorkflowVersion).where(WorkflowVersion.workflow_id == workflow_id)
    )
    return [
        WorkflowVersionTasks(
            r.workflow_id, r.major, r.minor, inject_strings(r.tasks, r.strings), r.first_task
        )
        for r in rows
    ]


def _earlier_pairs(
    session: Session, workflow_id: int, last_id: int, subjects: Iterable[int]
) -> set[tuple[int, str]]:
    """(subject, volunteer key) pairs of classifications up to ``last_id`` of these subjects."""
    wanted = sorted({int(s) for s in subjects})  # numpy ints would not bind on SQLite
    rows = []
    for start in range(0, len(wanted), IN_CLAUSE_LIMIT):
        query = (
            select(Classification.subject_id, Classification.user_id, Classification.user_name)
            .where(Classification.workflow_id == workflow_id, Classification.id <= last_id)
            .where(Classification.subject_id.in_(wanted[start : start + IN_CLAUSE_LIMIT]))
        )
        rows += session.execute(query).all()
    if not rows:
        return set()
    subject_ids, ids, names = zip(*rows)
    return {(s, k) for s, k in zip(subject_ids, user_keys(ids, names)) if k is not None}


def _read_store_batch(
    session: Session, workflow_id: int, last_id: int, batch_size: int, report: AggregationReport
) -> tuple[ClassificationBatch, int] | None:
    """The next ``batch_size`` stored classifications after ``last_id`` that name a subject.

    Returns:
        The batch and the highest id read (None when there are none left).
    """
    rows = session.execute(
        select(
            Classification.id,
            Classification.subject_id,
            Classification.workflow_version,
            Classification.user_id,
            Classification.user_name,
            cast(Classification.annotations, Text),
        )
        .where(Classification.workflow_id == workflow_id, Classification.id > last_id)
        .order_by(Classification.id)
        .limit(batch_size)
    ).all()
    if not rows:
        return None
    report.classifications += len(rows)
    with_subject = [row for row in rows if row[1] is not None]
    report.filtered += len(rows) - len(with_subject)
    ids, subjects, versions, user_ids, names, texts = (
        [row[i] for row in with_subject] for i in range(6)
    )
    batch = ClassificationBatch(
        np.asarray(ids, dtype=np.int64),
        np.asarray(subjects, dtype=np.int64),
        major_versions(versions)[0],
        texts,
        user_ids,
        names,
    )
    return batch, max(row[0] for row in rows)


def aggregate_store(
    engine: Engine,
    workflow_id: int,
    schema: Schema | None = None,
    schema_name: str | None = None,
    first_only: bool = False,
    rebuild: bool = False,
    batch_size: int = 50_000,
) -> AggregationReport:
    """Add the votes of classifications stored since the last run to the stored vote counts.

    Each batch commits its counts and the new ``last_classification_id`` together, so an
    interrupted run resumes without double counting.

    Args:
        engine: the store (already migrated).
        workflow_id: the workflow whose classifications are counted.
        schema: count into its label columns; None gives ``<task>_<index>`` columns.
        schema_name: the name counts are stored under (default the schema's name, or
            ``workflow-<id>`` without a schema).
        first_only: count only each volunteer's first classification of a subject.
        rebuild: forget stored counts and aggregate everything again.
        batch_size: classifications read per batch.

    Returns:
        The report of this run.

    Raises:
        AggregationError: if the workflow has no stored versions, or the stored counts were made
            with other options (pass ``rebuild=True``).
    """
    name = schema_name or (schema.name if schema is not None else f"workflow-{workflow_id}")
    options = {"workflow_id": workflow_id, "first_only": first_only}
    with session_scope(engine) as session:
        mapping = AnswerMapping(load_workflow_versions(session, workflow_id), schema)
        if rebuild:
            reset_aggregation(session, name)
        state = get_aggregation_state(session, name)
    if state is not None and state[1] != options:
        raise AggregationError(
            f"vote counts {name!r} were aggregated with {state[1]}, not {options}; "
            "pass --rebuild to aggregate again from scratch"
        )
    last_id = state[0] if state is not None else 0
    labels = np.asarray(mapping.columns, dtype=object)
    total = AggregationReport()
    while True:
        counter = VoteCounter(mapping)
        with session_scope(engine) as session:
            read = _read_store_batch(session, workflow_id, last_id, batch_size, counter.report)
            if read is None:
                break
            batch, read_to = read
            keep = np.ones(len(batch.classification_ids), dtype=bool)
            if first_only:
                earlier = _earlier_pairs(session, workflow_id, last_id, batch.subject_ids)
                keys = user_keys(batch.user_ids, batch.user_names)
                keep = first_classification_mask(
                    batch.classification_ids, batch.subject_ids, keys, earlier
                )
            _count_batch(counter, batch, keep, seen=None)
            counts = counter.long()
            counts["label_col"] = labels[counts.pop("column").to_numpy()]
            add_vote_counts(session, name, counts)
            last_id = read_to
            set_aggregation_state(session, name, last_id, options)
        total.merge(counter.report)
    if total.problems:
        logger.warning("aggregation problems schema=%s issues=%s", name, total.problems)
    logger.info(
        "store aggregated schema=%s classifications=%d votes=%d last_id=%d",
        name,
        total.classifications,
        total.votes,
        last_id,
    )
    return total


def stored_vote_table(
    engine: Engine, name: str, columns: Sequence[str], schema: Schema | None
) -> pd.DataFrame:
    """The stored counts under ``name`` as a per-subject table (see `vote_table`)."""
    with session_scope(engine) as session:
        return vote_table(get_vote_counts(session, name), columns, schema)


def _first_only_exclusions(path: Path, workflow_id: int | None, block_size: int) -> np.ndarray:
    """Sorted ids of the export's classifications that the first-only rule leaves out."""
    seen = _SeenIds()
    parts = []
    for batch in iter_export_batches(path, AggregationReport(), workflow_id, block_size):
        fresh = seen.new_mask(batch.classification_ids)
        keys = user_keys(batch.user_ids, batch.user_names)[fresh]
        parts.append((batch.classification_ids[fresh], batch.subject_ids[fresh], keys))
    if not parts:
        return np.empty(0, dtype=np.int64)
    ids, subjects, keys = (np.concatenate(column) for column in zip(*parts))
    return np.sort(ids[~first_classification_mask(ids, subjects, keys)])


def aggregate_export_files(
    classifications_csv: str | Path,
    workflows_csv: str | Path,
    workflow_id: int,
    schema: Schema | None = None,
    first_only: bool = False,
    target_major: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    prefetch_depth: int = 2,
) -> tuple[pd.DataFrame, AggregationReport]:
    """Aggregate a classification export into one row of vote counts per subject.

    Malformed rows (non-UTF-8 ones included) are quarantined with their line numbers, reported
    in the result and logged as one warning; the rest is aggregated.

    Args:
        classifications_csv: the classification export (labels in annotations).
        workflows_csv: the workflows export (every version of the workflow).
        workflow_id: the workflow to aggregate; other workflows' rows are filtered out.
        schema: count into this schema's label columns (plus ``<question>_total-votes``); None
            gives ``<task>_<answer index>`` columns of the target version.
        first_only: count only each volunteer's first classification of a subject.
        target_major: the major version whose answer indices define the columns (default newest).
        block_size: CSV bytes read per block.
        prefetch_depth: parsed blocks a reader thread keeps ready ahead of counting.

    Returns:
        The per-subject table and the report.

    Raises:
        ExportFormatError: if a file is missing or not an export.
        AggregationError: if the workflow has no versions or the schema has no Panoptes mapping.
    """
    mapping = AnswerMapping(read_workflows_csv(workflows_csv, workflow_id), schema, target_major)
    excluded = (
        _first_only_exclusions(Path(classifications_csv), workflow_id, block_size)
        if first_only
        else np.empty(0, dtype=np.int64)
    )
    counter = VoteCounter(mapping)
    seen = _SeenIds()
    # The reader thread fills its own report: the two threads never write the same object.
    read_report = AggregationReport()
    batches = iter_export_batches(classifications_csv, read_report, workflow_id, block_size)
    with closing(prefetch(batches, depth=prefetch_depth)) as ready:
        for batch in ready:
            keep = ~np.isin(batch.classification_ids, excluded)
            _count_batch(counter, batch, keep, seen)
    counter.report.merge(read_report)
    report = counter.report
    if report.quarantined:
        logger.warning(
            "export rows quarantined file=%s rows=%d lines=%s",
            *(classifications_csv, report.quarantined, report.quarantined_lines),
        )
    logger.info(
        "export aggregated file=%s classifications=%d votes=%d problems=%s",
        *(classifications_csv, report.classifications, report.votes, report.problems),
    )
    return counter.table(schema), report

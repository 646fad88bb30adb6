"""Fast, streaming reads of Panoptes classification export CSVs (Arrow) for aggregation.

The export has 14 columns (panoptes_api.md §2.2); only the ones aggregation needs are decoded,
annotation texts dictionary-encoded as they are parsed. A reader thread parses the next blocks
while the current one is counted. Rows that cannot be used (wrong field count, non-numeric ids,
unreadable version) are reported in an `AggregationReport` and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from panoptes_sync.annotations import AnswerMapping, read_workflows_csv
from panoptes_sync.counting import (
    AggregationReport,
    VoteCounter,
    extract_votes,
    first_classification_mask,
    user_keys,
)
from panoptes_sync.errors import ExportFormatError
from panoptes_sync.prefetch import prefetch
from zoobot.schemas import Schema

__all__ = ["EXPORT_COLUMNS", "ExportBatch", "aggregate_export_files", "iter_export_batches"]

logger = logging.getLogger(__name__)

#: The classification export header, exactly (lib/formatter/csv/classification.rb).
EXPORT_COLUMNS = (
    "classification_id",
    "user_name",
    "user_id",
    "user_ip",
    "workflow_id",
    "workflow_name",
    "workflow_version",
    "created_at",
    "gold_standard",
    "expert",
    "metadata",
    "annotations",
    "subject_data",
    "subject_ids",
)
_NEEDED = (
    "classification_id",
    "user_name",
    "user_id",
    "workflow_id",
    "workflow_version",
    "annotations",
    "subject_ids",
)
#: Annotation texts repeat across rows: Arrow dictionary-encodes them while parsing.
_COLUMN_TYPES = {
    **dict.fromkeys(_NEEDED, pa.large_string()),
    "annotations": pa.dictionary(pa.int32(), pa.large_string()),
}
#: Bytes of CSV parsed per Arrow block (one batch). Arrow's I/O thread reads up to 32 blocks
#: ahead, so this also sets the reader's memory (about 0.5 GB at 16 MiB).
DEFAULT_BLOCK_SIZE = 16 << 20


@dataclass
class ExportBatch:
    """The usable rows of one block of an export, as arrays (``[n]`` each).

    Annotations are dictionary-encoded: exports repeat the same texts across many rows.
    """

    classification_ids: np.ndarray
    workflow_ids: np.ndarray
    subject_ids: np.ndarray
    majors: np.ndarray
    user_keys: np.ndarray
    annotations: pa.DictionaryArray


def _digits_to_int(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values with 0 where invalid, validity mask) of a string column of ASCII digits."""
    valid = pc.fill_null(pc.ascii_is_decimal(column), False)
    if pc.all(valid).as_py():
        return np.asarray(pc.cast(column, pa.int64())), np.ones(len(column), dtype=bool)
    values = pc.cast(pc.if_else(valid, column, "0"), pa.int64())
    return np.asarray(values), np.asarray(valid, dtype=bool)


def _leading_int(column: pa.Array, separator: str) -> tuple[np.ndarray, np.ndarray]:
    """`_digits_to_int` of the part before the first ``separator`` (``"66.1"`` -> 66)."""
    values, valid = _digits_to_int(column)
    if valid.all():
        return values, valid
    return _digits_to_int(pc.list_element(pc.split_pattern(column, separator, max_splits=1), 0))


def _majors(versions: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(major version, validity mask) of ``MAJOR.MINOR`` texts; each distinct text parsed once."""
    encoded = pc.dictionary_encode(versions)
    parsed = []
    for text in encoded.dictionary.to_pylist():
        major = text.split(".", 1)[0]
        parsed.append(int(major) if major.isascii() and major.isdigit() else -1)
    majors = np.asarray(parsed, dtype=np.int64)[np.asarray(encoded.indices, dtype=np.int64)]
    return np.maximum(majors, 0), majors >= 0


def iter_export_batches(
    path: str | Path,
    report: AggregationReport,
    workflow_id: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    with_users: bool = True,
    newlines_in_values: bool = False,
) -> Iterator[ExportBatch]:
    """Read a classification export in blocks, yielding the usable rows of each.

    Args:
        path: the export CSV (gzip-compressed when it ends in ``.gz``).
        report: receives malformed rows and rows of other workflows (``filtered``).
        workflow_id: keep only this workflow's classifications.
        block_size: bytes per block.
        with_users: compute volunteer keys (needed only for first-only aggregation).
        newlines_in_values: allow raw newlines inside quoted values anywhere. Panoptes writes
            JSON with escaped newlines, so the default (False) reads about 3x faster; a quoted
            newline that happens to straddle a block boundary then shows up as malformed rows.

    Yields:
        One batch per block.

    Raises:
        ExportFormatError: if the file is missing or lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportFormatError(f"no classification export at {path}; check --classifications-csv")
    rejected: list[Any] = []

    def on_invalid(row: Any) -> str:
        rejected.append(row)
        return "skip"

    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=block_size),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=newlines_in_values, invalid_row_handler=on_invalid
            ),
            convert_options=pa_csv.ConvertOptions(
                include_columns=list(_NEEDED),
                column_types=_COLUMN_TYPES,
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, KeyError) as error:
        raise ExportFormatError(
            f"{path} is not a classification export (need columns {list(_NEEDED)}): {error}"
        ) from error
    rows_seen = 0
    for batch in reader:
        _report_rejected(rejected, report)
        report.classifications += batch.num_rows
        yield from _usable_rows(batch, rows_seen, report, workflow_id, with_users)
        rows_seen += batch.num_rows
    _report_rejected(rejected, report)


def _report_rejected(rejected: list[Any], report: AggregationReport) -> None:
    while rejected:
        row = rejected.pop()
        report.classifications += 1
        first = (row.text or "").split(",", 1)[0]
        if first.isdigit():
            report.add_issue("malformed_row", [int(first)])
        else:
            report.add_issue("malformed_row", [], 1)
            if row.number is not None:
                report.unidentified_rows.append(int(row.number))


def _usable_rows(
    batch: pa.RecordBatch,
    rows_seen: int,
    report: AggregationReport,
    workflow_id: int | None,
    with_users: bool,
) -> Iterator[ExportBatch]:
    ids, id_ok = _digits_to_int(batch.column("classification_id"))
    workflows, workflow_ok = _digits_to_int(batch.column("workflow_id"))
    subjects, subject_ok = _leading_int(batch.column("subject_ids"), ";")
    majors, major_ok = _majors(batch.column("workflow_version"))
    bad_id = ~id_ok
    report.unidentified_rows.extend((rows_seen + 1 + np.flatnonzero(bad_id)[:5]).tolist())
    if bad_id.any():
        report.add_issue("malformed_row", [], int(bad_id.sum()))
    bad = id_ok & ~(workflow_ok & subject_ok & major_ok)
    if bad.any():
        report.add_issue("malformed_row", ids[bad])
    usable = id_ok & ~bad
    if workflow_id is not None:
        other = usable & (workflows != workflow_id)
        report.filtered += int(other.sum())
        usable &= ~other
    if not usable.any():
        return
    keys = (
        user_keys(batch.column("user_id").to_pylist(), batch.column("user_name").to_pylist())
        if with_users
        else np.full(batch.num_rows, None, dtype=object)
    )
    mask = pa.array(usable)
    yield ExportBatch(
        classification_ids=ids[usable],
        workflow_ids=workflows[usable],
        subject_ids=subjects[usable],
        majors=majors[usable],
        user_keys=keys[usable],
        annotations=pc.filter(batch.column("annotations"), mask),
    )


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


def _first_only_exclusions(path: Path, workflow_id: int | None, block_size: int) -> np.ndarray:
    """Sorted ids of classifications that are not their volunteer's first of a subject."""
    parts = [
        (batch.classification_ids, batch.subject_ids, batch.user_keys)
        for batch in iter_export_batches(path, AggregationReport(), workflow_id, block_size)
    ]
    if not parts:
        return np.empty(0, dtype=np.int64)
    ids, subjects, keys = (np.concatenate(column) for column in zip(*parts))
    keep = first_classification_mask(ids, subjects, keys)
    return np.sort(ids[~keep])


def _count_batch(
    batch: ExportBatch, seen: _SeenIds, excluded: np.ndarray, counter: VoteCounter
) -> None:
    """Add a batch's votes to ``counter``, skipping repeated ids and ``excluded`` ones."""
    fresh = seen.new_mask(batch.classification_ids)
    if not fresh.all():
        counter.report.add_issue("duplicate_classification", batch.classification_ids[~fresh])
    keep = fresh & ~np.isin(batch.classification_ids, excluded)
    counter.report.filtered += int((fresh & ~keep).sum())
    votes, report = extract_votes(
        batch.classification_ids[keep],
        batch.subject_ids[keep],
        batch.majors[keep],
        pc.filter(batch.annotations, pa.array(keep)),
        counter.mapping,
    )
    report.classifications = 0  # counted by the reader, malformed rows included
    counter.add(votes, report)


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
    batches = iter_export_batches(
        classifications_csv, read_report, workflow_id, block_size, with_users=False
    )
    with closing(prefetch(batches, depth=prefetch_depth)) as ready:
        for batch in ready:
            _count_batch(batch, seen, excluded, counter)
    counter.report.merge(read_report)
    logger.info(
        "export aggregated file=%s classifications=%d votes=%d problems=%s",
        classifications_csv,
        counter.report.classifications,
        counter.report.votes,
        counter.report.problems,
    )
    return counter.table(schema), counter.report

"""Reading Panoptes classification export CSVs: Arrow blocks, malformed rows quarantined by line.

`read_export` is the one reader of the 14-column export (panoptes_api.md §2.2): it checks the
header, decodes only the columns asked for, and sets aside every row it cannot read (a wrong
number of fields, bytes that are not UTF-8) with its line number, so the rest of the file is still
used. `iter_export_batches` turns blocks into `ClassificationBatch` arrays for aggregation,
quarantining rows whose id, workflow, subject or version cannot be read; `panoptes_sync.backfill`
reads whole rows. `prefetch` runs a reader ahead in a thread.
"""

from __future__ import annotations

import csv
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pa_csv

from panoptes_sync.counting import AggregationReport, ClassificationBatch
from panoptes_sync.errors import ExportFormatError
from panoptes_sync.workflow_versions import major_versions

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "EXPORT_COLUMNS",
    "ExportBlock",
    "iter_export_batches",
    "prefetch",
    "read_export",
]

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
#: The columns aggregation reads; annotation texts repeat across rows, so Arrow
#: dictionary-encodes them while parsing.
_AGGREGATION_COLUMNS = {
    **dict.fromkeys(
        ("classification_id", "user_name", "user_id", "workflow_id", "workflow_version"),
        pa.large_string(),
    ),
    "annotations": pa.dictionary(pa.int32(), pa.large_string()),
    "subject_ids": pa.large_string(),
}
#: Bytes of CSV parsed per Arrow block (one batch); about 0.5 GB of reader memory at 16 MiB.
DEFAULT_BLOCK_SIZE = 16 << 20
#: Called for each quarantined row: (line number, the row's first field, reason).
OnMalformed = Callable[[int, str, str], None]


class ExportBlock(NamedTuple):
    """The readable rows of one block: ``rows`` (the columns asked for) and ``[n]`` ``lines``."""

    rows: pa.RecordBatch
    lines: np.ndarray


def _header(path: Path) -> list[str]:
    """The export's header fields (gzip-compressed files included)."""
    head = b""
    with pa.input_stream(str(path)) as stream:
        while b"\n" not in head and len(head) < 1 << 20:
            chunk = stream.read(1 << 16)
            if not chunk:
                break
            head += chunk
    try:
        line = head.split(b"\n", 1)[0].decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ExportFormatError(f"{path}: the header line is not UTF-8 text") from None
    return next(csv.reader([line]), [])


class _LineCounter:
    """File line numbers of the rows Arrow hands over, given the records it rejected.

    Arrow numbers records (the header is record 1); a quoted value may span lines, so a record's
    line is its number plus the newlines inside earlier records' values (blank lines, which Arrow
    skips, are not counted).
    """

    def __init__(self) -> None:
        self.next_record = 2
        self.extra_lines = 0
        self.rejected: dict[int, tuple[str, str]] = {}

    def window(
        self, newlines: np.ndarray, final: bool = False
    ) -> tuple[np.ndarray, list[tuple[int, str, str]]]:
        """Lines of the next ``len(newlines)`` readable records; rejected ones passed on the way.

        Returns:
            ``[n]`` lines of the readable records, and ``(line, text, reason)`` of each rejected
            record up to the last of them (all remaining ones when ``final``).
        """
        pending = sorted(r for r in self.rejected if r >= self.next_record)
        records = np.arange(self.next_record, self.next_record + len(newlines) + len(pending))
        is_rejected = np.isin(records, pending)
        if final:
            end = len(records)
        elif len(newlines):
            end = int(np.flatnonzero(~is_rejected)[len(newlines) - 1]) + 1
        else:
            return np.empty(0, dtype=np.int64), []
        records, is_rejected = records[:end], is_rejected[:end]
        spans = np.zeros(end, dtype=np.int64)
        spans[~is_rejected] = newlines
        texts = [self.rejected.pop(int(r)) for r in records[is_rejected]]
        spans[is_rejected] = [text.count("\n") for text, _ in texts]
        lines = records + self.extra_lines + np.cumsum(spans) - spans
        self.extra_lines += int(spans.sum())
        self.next_record = int(records[-1]) + 1 if end else self.next_record
        rejected = [(int(line), *text) for line, text in zip(lines[is_rejected], texts)]
        return lines[~is_rejected], rejected


def _newlines(rows: pa.RecordBatch) -> np.ndarray:
    """``[n]`` newlines inside each row's values (only the columns read)."""
    total = np.zeros(rows.num_rows, dtype=np.int64)
    for column in rows.columns:
        if pa.types.is_dictionary(column.type):
            per_entry = np.asarray(pc.count_substring(column.dictionary, "\n"), dtype=np.int64)
            if per_entry.any():
                total += per_entry[np.asarray(column.indices, dtype=np.int64)]
        elif pc.any(pc.match_substring(column, "\n")).as_py():
            total += np.asarray(pc.count_substring(column, "\n"), dtype=np.int64)
    return total


def _non_utf8(rows: pa.RecordBatch) -> tuple[np.ndarray, list[str]]:
    """``[n]`` mask of rows with a value that is not UTF-8, and the first such column's name."""
    bad = np.zeros(rows.num_rows, dtype=bool)
    first: list[str] = [""] * rows.num_rows
    for name, column in zip(rows.schema.names, rows.columns):
        values = column.dictionary if pa.types.is_dictionary(column.type) else column
        try:
            values.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        raw = values.cast(pa.large_binary()).to_pylist()
        invalid = np.array([v is not None and not _is_utf8(v) for v in raw], dtype=bool)
        if pa.types.is_dictionary(column.type):
            invalid = invalid[np.asarray(column.indices, dtype=np.int64)]
        for row in np.flatnonzero(invalid & ~bad):
            first[row] = name
        bad |= invalid
    return bad, first


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_export(
    path: str | Path,
    on_malformed: OnMalformed,
    columns: dict[str, pa.DataType] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    newlines_in_values: bool = False,
) -> Iterator[ExportBlock]:
    """Read a classification export in blocks, quarantining the rows that cannot be read.

    Args:
        path: the export CSV (gzip-compressed when it ends in ``.gz``).
        on_malformed: called with (line, first field, reason) for each quarantined row: a wrong
            number of fields, or a value (of the columns read) that is not UTF-8.
        columns: name -> Arrow string type of the columns to decode (default all, as strings).
        block_size: bytes per block.
        newlines_in_values: allow raw newlines inside quoted values anywhere, and count them
            in line numbers. Panoptes writes JSON with escaped newlines, so False reads about
            3x faster, and takes each row to be one line; a quoted newline that happens to
            straddle a block boundary then shows up as malformed rows.

    Yields:
        The readable rows of each block, with their line numbers (blank lines not counted).

    Raises:
        ExportFormatError: if the file is missing, lacks a column, or cannot be parsed.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportFormatError(f"no classification export at {path}; check --classifications-csv")
    columns = columns or dict.fromkeys(EXPORT_COLUMNS, pa.large_string())
    header = _header(path)
    missing = [name for name in EXPORT_COLUMNS if name not in header]
    if missing:
        raise ExportFormatError(f"{path} is not a classification export: lacks columns {missing}")
    counter = _LineCounter()

    def on_invalid(row: Any) -> str:
        reason = f"{row.actual_columns} fields, expected {row.expected_columns}"
        counter.rejected[int(row.number)] = (row.text or "", reason)
        return "skip"

    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=block_size, use_threads=False),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=newlines_in_values, invalid_row_handler=on_invalid
            ),
            convert_options=pa_csv.ConvertOptions(
                include_columns=list(columns),
                column_types=columns,
                strings_can_be_null=False,
                check_utf8=False,
            ),
        )
        for rows in reader:
            spans = _newlines(rows) if newlines_in_values else np.zeros(rows.num_rows, np.int64)
            lines, rejected = counter.window(spans)
            _quarantine_rejected(rejected, on_malformed)
            bad, bad_columns = _non_utf8(rows)
            if bad.any():
                first = rows.column(0).cast(pa.large_binary()).to_pylist()
                for row in np.flatnonzero(bad):
                    identifier = first[row].decode("utf-8", "replace")
                    on_malformed(int(lines[row]), identifier, f"{bad_columns[row]} is not UTF-8")
                rows, lines = rows.filter(pa.array(~bad)), lines[~bad]
            yield ExportBlock(rows, lines)
    except pa.ArrowInvalid as error:
        line = counter.next_record + counter.extra_lines
        raise ExportFormatError(f"{path}: unreadable CSV after line {line - 1}: {error}") from None
    _quarantine_rejected(counter.window(np.empty(0, dtype=np.int64), final=True)[1], on_malformed)


def _quarantine_rejected(rejected: list[tuple[int, str, str]], on_malformed: OnMalformed) -> None:
    for line, text, reason in rejected:
        on_malformed(line, text.split(",", 1)[0], reason)


def _digits_to_int(column: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 values with 0 where invalid, validity mask) of a string column of ASCII digits."""
    valid = pc.fill_null(pc.ascii_is_decimal(column), False)
    if pc.all(valid).as_py():
        return np.asarray(pc.cast(column, pa.int64())), np.ones(len(column), dtype=bool)
    values = pc.cast(pc.if_else(valid, column, "0"), pa.int64())
    return np.asarray(values), np.asarray(valid, dtype=bool)


def _leading_int(column: pa.Array, separator: str) -> tuple[np.ndarray, np.ndarray]:
    """`_digits_to_int` of the part before the first ``separator`` (``"66;67"`` -> 66)."""
    values, valid = _digits_to_int(column)
    if valid.all():
        return values, valid
    return _digits_to_int(pc.list_element(pc.split_pattern(column, separator, max_splits=1), 0))


def iter_export_batches(
    path: str | Path,
    report: AggregationReport,
    workflow_id: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    newlines_in_values: bool = False,
) -> Iterator[ClassificationBatch]:
    """Read a classification export for aggregation, yielding the usable rows of each block.

    Args:
        path: the export CSV (gzip-compressed when it ends in ``.gz``).
        report: counts the rows read, quarantines malformed ones (``malformed_row`` issues with
            their ids where readable, and their lines) and counts other workflows' as filtered.
        workflow_id: keep only this workflow's classifications.
        block_size: bytes per block.
        newlines_in_values: see `read_export`.

    Yields:
        One batch per block.

    Raises:
        ExportFormatError: if the file is missing or not a classification export.
    """

    def quarantine(line: int, identifier: str, reason: str) -> None:
        report.classifications += 1
        _quarantine(report, [line], [identifier])

    blocks = read_export(path, quarantine, _AGGREGATION_COLUMNS, block_size, newlines_in_values)
    for rows, lines in blocks:
        report.classifications += rows.num_rows
        ids, id_ok = _digits_to_int(rows.column("classification_id"))
        workflows, workflow_ok = _digits_to_int(rows.column("workflow_id"))
        subjects, subject_ok = _leading_int(rows.column("subject_ids"), ";")
        majors, major_ok = major_versions(rows.column("workflow_version"))
        bad = ~(id_ok & workflow_ok & subject_ok & major_ok)
        if bad.any():
            _quarantine(report, lines[bad], np.where(id_ok, ids, -1)[bad])
        usable = ~bad
        if workflow_id is not None:
            other = usable & (workflows != workflow_id)
            report.filtered += int(other.sum())
            usable &= ~other
        if usable.any():
            mask = pa.array(usable)
            yield ClassificationBatch(
                classification_ids=ids[usable],
                subject_ids=subjects[usable],
                majors=majors[usable],
                annotations=pc.filter(rows.column("annotations"), mask),
                user_ids=pc.filter(rows.column("user_id"), mask),
                user_names=pc.filter(rows.column("user_name"), mask),
            )


def _quarantine(report: AggregationReport, lines: Sequence[int], ids: Sequence[Any]) -> None:
    """Count rows as quarantined ``malformed_row`` issues, their readable ids as examples."""
    readable = [int(i) for i in ids if str(i).isdigit()]
    report.add_issue("malformed_row", readable, len(lines))
    report.add_quarantined(lines)


T = TypeVar("T")

#: Seconds between checks, while waiting to hand over an item, whether the consumer stopped.
_POLL_S = 0.1


class _Done:
    """End of the items (``error`` is what the producer raised, if anything)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order while a background thread computes up to ``depth`` of them ahead.

    Arrow's CSV parsing and numpy's counting both release the GIL for their heavy loops, so on
    two cores a reader thread hides most of one behind the other.

    Args:
        items: the iterator to run ahead; it is advanced only in the background thread.
        depth: most items held ready (bounds the memory used).

    Yields:
        The items of ``items``.

    Raises:
        Exception: whatever ``items`` raised, re-raised in the consumer.
    """
    ready: queue.Queue[T | _Done] = queue.Queue(maxsize=depth)
    stopped = threading.Event()

    def hand_over(item: T | _Done) -> bool:
        while not stopped.is_set():
            try:
                ready.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not hand_over(item):
                    return
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            hand_over(_Done(error))
            return
        hand_over(_Done())

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if isinstance(item, _Done):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        stopped.set()
        thread.join()

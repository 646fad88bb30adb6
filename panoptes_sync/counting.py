"""Vectorised vote counting: a batch of classifications -> votes -> one per-subject count matrix.

Annotation texts are dictionary-encoded; each distinct (major version, text) pair is resolved once
(`panoptes_sync.annotation_votes`), classifications take their pair's votes by indexing
(`extract_votes`), and a `VoteCounter` adds them into a ``[n_subjects, n_columns]`` matrix.
Problems are counted in an `AggregationReport` with example classification ids, never raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from panoptes_sync.annotation_votes import expand_ranges, factorize, resolve_texts
from panoptes_sync.workflow_versions import AnswerMapping
from zoobot.schemas import Schema

__all__ = [
    "AggregationReport",
    "ClassificationBatch",
    "VoteCounter",
    "Votes",
    "count_votes",
    "extract_votes",
    "vote_table",
]

#: Example classification ids (and quarantined line numbers) kept per issue kind.
MAX_EXAMPLES = 5
#: Above this many (subject, column) cells, counts are grouped by sorting, not a dense bincount.
DENSE_CELL_LIMIT = 50_000_000
#: Issue kinds that mean something was wrong (the rest are expected, e.g. unmapped answers).
PROBLEM_ISSUES = frozenset(
    {
        "malformed_row",
        "malformed_annotation",
        "unknown_workflow_version",
        "unknown_task",
        "unknown_answer",
        "answer_not_in_target_version",
        "duplicate_task",
        "duplicate_classification",
    }
)


@dataclass
class AggregationReport:
    """What an aggregation counted and skipped.

    Attributes:
        classifications: classifications read (malformed ones included).
        votes: votes counted.
        filtered: classifications left out on purpose (other workflows, not a first classification).
        issues: issue kind -> number of annotations (or rows, for row-level kinds) affected.
        examples: issue kind -> up to `MAX_EXAMPLES` classification ids.
        quarantined: export rows set aside unread (malformed CSV, not UTF-8, unreadable id,
            workflow, subject or version); each is also a ``malformed_row`` issue.
        quarantined_lines: the file line numbers of the first `MAX_EXAMPLES` quarantined rows.
    """

    classifications: int = 0
    votes: int = 0
    filtered: int = 0
    issues: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    quarantined: int = 0
    quarantined_lines: list[int] = field(default_factory=list)

    def add_issue(
        self, kind: str, ids: Sequence[int] | np.ndarray, count: int | None = None
    ) -> None:
        """Count ``count`` (default ``len(ids)``) occurrences of an issue, keeping example ids."""
        flat = np.asarray(ids).ravel()
        self.issues[kind] += len(flat) if count is None else count
        ids = [int(i) for i in flat[:MAX_EXAMPLES]]
        kept = self.examples.setdefault(kind, [])
        kept.extend(i for i in ids if i not in kept and len(kept) < MAX_EXAMPLES)

    def add_quarantined(self, lines: Sequence[int] | np.ndarray) -> None:
        """Count quarantined rows, keeping the first `MAX_EXAMPLES` line numbers of the file."""
        self.quarantined += len(lines)
        kept = sorted({*self.quarantined_lines, *(int(line) for line in lines)})
        self.quarantined_lines = kept[:MAX_EXAMPLES]

    def merge(self, other: AggregationReport) -> None:
        """Add another report's counts and examples to this one."""
        self.classifications += other.classifications
        self.votes += other.votes
        self.filtered += other.filtered
        for kind, count in other.issues.items():
            self.add_issue(kind, other.examples.get(kind, []), count)
        self.quarantined += other.quarantined
        kept = sorted({*self.quarantined_lines, *other.quarantined_lines})
        self.quarantined_lines = kept[:MAX_EXAMPLES]

    @property
    def problems(self) -> dict[str, int]:
        """Issue counts that signal bad input (excluding expected ones such as unmapped answers)."""
        return {kind: n for kind, n in self.issues.items() if kind in PROBLEM_ISSUES and n}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {
            "classifications": self.classifications,
            "votes": self.votes,
            "filtered": self.filtered,
            "issues": dict(sorted(self.issues.items())),
            "examples": {kind: ids for kind, ids in sorted(self.examples.items())},
            "quarantined": self.quarantined,
            "quarantined_lines": list(self.quarantined_lines),
        }


def _encode_texts(annotations: Sequence[str | None] | Any) -> pa.DictionaryArray:
    """Annotation texts as a dictionary array (nulls kept as a dictionary entry)."""
    if isinstance(annotations, pa.ChunkedArray):
        annotations = annotations.combine_chunks()
    if isinstance(annotations, pa.DictionaryArray):
        return annotations
    if not isinstance(annotations, pa.Array):
        annotations = pa.array(annotations, type=pa.large_string())
    return pc.dictionary_encode(annotations, null_encoding="encode")


class Votes(NamedTuple):
    """The individual votes of a batch of classifications.

    Attributes:
        subject_ids: ``[n_subjects]`` sorted distinct subject ids of the batch.
        subject: ``[n_votes]`` index into ``subject_ids`` of each vote.
        column: ``[n_votes]`` output column (index into ``mapping.columns``) of each vote.
    """

    subject_ids: np.ndarray
    subject: np.ndarray
    column: np.ndarray


def extract_votes(
    classification_ids: np.ndarray,
    subject_ids: np.ndarray,
    majors: np.ndarray,
    annotations: Sequence[str | None] | Any,
    mapping: AnswerMapping,
) -> tuple[Votes, AggregationReport]:
    """The votes of a batch of classifications of one workflow.

    Each distinct (major version, annotation text) pair is resolved once (`resolve_texts`);
    classifications then take their pair's votes by array indexing.

    Args:
        classification_ids: ``[n]`` int64 ids (already unique).
        subject_ids: ``[n]`` int64 subject of each classification.
        majors: ``[n]`` int64 workflow major version of each classification.
        annotations: ``[n]`` annotation JSON texts, index or label format (a sequence, or an
            Arrow string or dictionary array).
        mapping: maps annotations to ``mapping.columns``.

    Returns:
        The votes and the report.
    """
    report = AggregationReport(classifications=len(classification_ids))
    encoded = _encode_texts(annotations)
    n_texts = max(len(encoded.dictionary), 1)
    major_values, major_code = np.unique(np.asarray(majors, dtype=np.int64), return_inverse=True)
    text_code = np.asarray(encoded.indices.fill_null(0), dtype=np.int64)
    pairs, pair_of_row = factorize(major_code * n_texts + text_code, len(major_values) * n_texts)
    votes = resolve_texts(
        major_values[pairs // n_texts], encoded.dictionary.take(pa.array(pairs % n_texts)), mapping
    )
    for kind, per_pair in votes.issues.items():
        per_row = per_pair[pair_of_row]
        hit = np.flatnonzero(per_row)
        if len(hit):
            report.add_issue(kind, classification_ids[hit[:MAX_EXAMPLES]], int(per_row.sum()))
    row, position = expand_ranges(votes.length[pair_of_row], votes.start[pair_of_row])
    subject_values, subject_code = np.unique(np.asarray(subject_ids), return_inverse=True)
    report.votes = len(row)
    extracted = Votes(subject_values.astype(np.int64), subject_code[row], votes.columns[position])
    return extracted, report


@dataclass
class ClassificationBatch:
    """Classifications of one workflow from either source (store or export), as ``[n]`` arrays.

    Attributes:
        classification_ids: int64 ids.
        subject_ids: int64 (first) subject of each classification.
        majors: int64 workflow major version (-1 where unreadable).
        annotations: annotation JSON texts, index or label format (a sequence, or an Arrow string
            or dictionary array).
        user_ids: the volunteers' ids (None or "" when anonymous), for the first-only rule.
        user_names: the volunteers' logins, likewise.
    """

    classification_ids: np.ndarray
    subject_ids: np.ndarray
    majors: np.ndarray
    annotations: Any
    user_ids: Sequence[Any]
    user_names: Sequence[Any]


def _take_texts(annotations: Any, keep: np.ndarray) -> Any:
    if isinstance(annotations, pa.Array | pa.ChunkedArray):
        return pc.filter(annotations, pa.array(keep))
    return [text for text, kept in zip(annotations, keep, strict=True) if kept]


class VoteCounter:
    """Accumulates votes into one ``[n_subjects, n_columns]`` count matrix.

    Rows are appended in order of first appearance; a sorted index of subject ids finds them.
    """

    def __init__(self, mapping: AnswerMapping) -> None:
        self.mapping = mapping
        self.report = AggregationReport()
        self._sorted_subjects = np.empty(0, dtype=np.int64)
        self._sorted_rows = np.empty(0, dtype=np.int64)
        self._matrix = np.zeros((0, len(mapping.columns)), dtype=np.int64)
        self._n_rows = 0

    def add(self, votes: Votes, report: AggregationReport) -> None:
        """Add one batch's output of `extract_votes`."""
        self.report.merge(report)
        rows = self._rows_of(votes.subject_ids)
        n_columns = self._matrix.shape[1]
        np.add.at(self._matrix.reshape(-1), rows[votes.subject] * n_columns + votes.column, 1)

    def count(self, batch: ClassificationBatch, keep: np.ndarray) -> None:
        """Add the votes of the ``keep`` rows of a batch (its source counts the rows read)."""
        votes, report = extract_votes(
            batch.classification_ids[keep],
            batch.subject_ids[keep],
            batch.majors[keep],
            _take_texts(batch.annotations, keep),
            self.mapping,
        )
        report.classifications = 0
        self.add(votes, report)

    def _rows_of(self, subject_ids: np.ndarray) -> np.ndarray:
        """Matrix rows of sorted distinct ``subject_ids``, adding rows for new subjects."""
        position = np.searchsorted(self._sorted_subjects, subject_ids)
        known = np.zeros(len(subject_ids), dtype=bool)
        if len(self._sorted_subjects):
            clipped = np.minimum(position, len(self._sorted_subjects) - 1)
            known = self._sorted_subjects[clipped] == subject_ids
        rows = np.empty(len(subject_ids), dtype=np.int64)
        rows[known] = self._sorted_rows[position[known]]
        new_rows = self._n_rows + np.arange(int((~known).sum()))
        rows[~known] = new_rows
        self._n_rows += len(new_rows)
        if self._n_rows > len(self._matrix):
            shape = (max(self._n_rows, 2 * len(self._matrix)), self._matrix.shape[1])
            grown = np.zeros(shape, dtype=np.int64)
            grown[: len(self._matrix)] = self._matrix
            self._matrix = grown
        new = ~known
        self._sorted_subjects = np.insert(self._sorted_subjects, position[new], subject_ids[new])
        self._sorted_rows = np.insert(self._sorted_rows, position[new], new_rows)
        return rows

    def table(self, schema: Schema | None = None) -> pd.DataFrame:
        """All counts so far, one row per subject sorted by id (see `vote_table`)."""
        return _table(
            self._sorted_subjects, self._matrix[self._sorted_rows], self.mapping.columns, schema
        )

    def long(self) -> pd.DataFrame:
        """The non-zero counts as a long table ``subject_id, column, count`` sorted by subject.

        ``column`` indexes ``mapping.columns``.
        """
        matrix = self._matrix[self._sorted_rows]
        n_columns = matrix.shape[1]
        cell = np.flatnonzero(matrix)
        return pd.DataFrame(
            {
                "subject_id": self._sorted_subjects[cell // n_columns],
                "column": cell % n_columns,
                "count": matrix.reshape(-1)[cell],
            }
        )


def count_votes(
    classification_ids: np.ndarray,
    subject_ids: np.ndarray,
    majors: np.ndarray,
    annotations: Sequence[str | None] | Any,
    mapping: AnswerMapping,
) -> tuple[pd.DataFrame, AggregationReport]:
    """Count the votes of one batch of classifications of one workflow as a long table.

    Args:
        classification_ids: ``[n]`` int64 ids (already unique).
        subject_ids: ``[n]`` int64 subject of each classification.
        majors: ``[n]`` int64 workflow major version of each classification.
        annotations: ``[n]`` annotation JSON texts, index or label format.
        mapping: maps annotations to ``mapping.columns``.

    Returns:
        `VoteCounter.long` of these votes, and the report.
    """
    counter = VoteCounter(mapping)
    counter.add(*extract_votes(classification_ids, subject_ids, majors, annotations, mapping))
    return counter.long(), counter.report


def _wide(
    subject_ids: np.ndarray,
    column_codes: np.ndarray,
    counts: np.ndarray,
    columns: Sequence[str],
    schema: Schema | None,
) -> pd.DataFrame:
    """Sum ``counts`` into a ``[n_subjects, n_columns]`` table (plus totals with a schema)."""
    subjects, subject_code = np.unique(subject_ids, return_inverse=True)
    n_columns = len(columns)
    key = subject_code.astype(np.int64) * n_columns + column_codes
    if len(subjects) * n_columns <= DENSE_CELL_LIMIT:
        flat = np.bincount(key, weights=counts, minlength=len(subjects) * n_columns)
        matrix = flat.astype(np.int64).reshape(len(subjects), n_columns)
    else:
        matrix = np.zeros((len(subjects), n_columns), dtype=np.int64)
        np.add.at(matrix, (subject_code, column_codes), counts)
    return _table(subjects, matrix, columns, schema)


def _table(
    subjects: np.ndarray, matrix: np.ndarray, columns: Sequence[str], schema: Schema | None
) -> pd.DataFrame:
    """``[n_subjects]`` ids and their ``[n_subjects, n_columns]`` counts as a table, with totals."""
    table = pd.DataFrame(matrix, columns=list(columns))
    if schema is not None:
        position = {name: i for i, name in enumerate(columns)}
        for question in schema.questions:
            indices = [position[name] for name in question.label_cols]
            table[question.total_votes_col] = matrix[:, indices].sum(axis=1)
    table.insert(0, "subject_id", subjects.astype(np.int64))
    return table


def vote_table(long: pd.DataFrame, columns: Sequence[str], schema: Schema | None) -> pd.DataFrame:
    """One row per subject: ``subject_id``, a count column per label, and per question a total.

    Args:
        long: ``subject_id, label_col, count`` rows; labels not in ``columns`` are ignored.
        columns: the label columns, in output order.
        schema: adds one ``<question>_total-votes`` column per question when given.

    Returns:
        The wide table sorted by subject id.
    """
    position = {name: i for i, name in enumerate(columns)}
    codes = long["label_col"].map(position)
    known = codes.notna().to_numpy()
    return _wide(
        long["subject_id"].to_numpy(dtype=np.int64)[known],
        codes.to_numpy()[known].astype(np.int64),
        long["count"].to_numpy(dtype=np.int64)[known],
        columns,
        schema,
    )

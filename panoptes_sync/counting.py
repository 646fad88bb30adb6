"""Vectorised vote counting: classifications -> per-subject answer counts with numpy.

Annotations are exploded into one long (classification, annotation) table; each distinct
(major version, annotation) pair is resolved once by `AnswerMapping`, and counts come from one
``np.bincount`` over (subject, column). Multiple-choice answers are independent binary votes.
Within a classification only the first annotation of each task counts. Problems are counted in an
`AggregationReport` with example classification ids, never raised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from panoptes_sync.annotations import AnswerMapping, explode_annotations
from zoobot.schemas import Schema

__all__ = [
    "AggregationReport",
    "VoteCounter",
    "count_votes",
    "first_classification_mask",
    "user_keys",
    "vote_table",
]

#: Example classification ids kept per issue kind.
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
        unidentified_rows: data row numbers of malformed rows without a readable id.
    """

    classifications: int = 0
    votes: int = 0
    filtered: int = 0
    issues: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    unidentified_rows: list[int] = field(default_factory=list)

    def add_issue(
        self, kind: str, ids: Sequence[int] | np.ndarray, count: int | None = None
    ) -> None:
        """Count ``count`` (default ``len(ids)``) occurrences of an issue, keeping example ids."""
        flat = np.asarray(ids).ravel()
        self.issues[kind] += len(flat) if count is None else count
        ids = [int(i) for i in flat[:MAX_EXAMPLES]]
        kept = self.examples.setdefault(kind, [])
        kept.extend(i for i in ids if i not in kept and len(kept) < MAX_EXAMPLES)

    def merge(self, other: AggregationReport) -> None:
        """Add another report's counts and examples to this one."""
        self.classifications += other.classifications
        self.votes += other.votes
        self.filtered += other.filtered
        for kind, count in other.issues.items():
            self.add_issue(kind, other.examples.get(kind, []), count)
        self.unidentified_rows.extend(other.unidentified_rows[:MAX_EXAMPLES])

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
            "unidentified_rows": self.unidentified_rows[:MAX_EXAMPLES],
        }


def user_keys(user_ids: Sequence[Any], user_names: Sequence[Any]) -> np.ndarray:
    """One key per classification for "same volunteer": ``id:<user_id>``, else ``name:<login>``.

    Anonymous classifications (no user id, and no name or a ``not-logged-in-...`` name) get None.
    """
    ids = pd.Series(user_ids, dtype="object")
    names = pd.Series(user_names, dtype="object")
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


def first_classification_mask(
    classification_ids: np.ndarray, subject_ids: np.ndarray, keys: np.ndarray
) -> np.ndarray:
    """True for each volunteer's first (lowest id) classification of a subject; anonymous: all.

    Args:
        classification_ids: ``[n]`` ids.
        subject_ids: ``[n]`` subject of each classification.
        keys: ``[n]`` volunteer keys from `user_keys` (None = anonymous).

    Returns:
        ``[n]`` boolean mask of classifications to keep.
    """
    frame = pd.DataFrame({"id": classification_ids, "subject": subject_ids, "user": keys})
    named = frame[frame["user"].notna()].sort_values("id", kind="stable")
    repeated = named.index[named.duplicated(["subject", "user"], keep="first")]
    keep = np.ones(len(frame), dtype=bool)
    keep[repeated.to_numpy()] = False
    return keep


def _expand(counts: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For items with ``counts[i]`` outputs starting at ``starts[i]``: (item, output position)."""
    item = np.repeat(np.arange(len(counts)), counts)
    first_output = np.cumsum(counts) - counts
    position = np.repeat(starts - first_output, counts) + np.arange(int(counts.sum()))
    return item, position


def _duplicate_task_mask(row: np.ndarray, task: np.ndarray) -> np.ndarray:
    """True for annotations whose (row, task) already appeared earlier in the same row."""
    valid = task >= 0
    if not valid.any():
        return np.zeros(len(row), dtype=bool)
    if task.max() < 62:
        bits = np.where(valid, np.left_shift(np.int64(1), np.where(valid, task, 0)), 0)
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        masks = np.bitwise_or.reduceat(bits, starts)
        sizes = np.add.reduceat(valid.astype(np.int64), starts)
        suspect = np.repeat(np.bitwise_count(masks) < sizes, np.diff(np.r_[starts, len(row)]))
    else:
        suspect = np.ones(len(row), dtype=bool)
    duplicate = np.zeros(len(row), dtype=bool)
    index = np.flatnonzero(suspect & valid)
    keys = pd.Series(row[index] * (int(task.max()) + 1) + task[index])
    duplicate[index[keys.duplicated().to_numpy()]] = True
    return duplicate


def _factorize(values: np.ndarray, n_possible: int) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, index of each value among them); O(n) when the value range is small."""
    if n_possible > DENSE_CELL_LIMIT:
        return np.unique(values, return_inverse=True)
    distinct = np.flatnonzero(np.bincount(values, minlength=n_possible))
    lookup = np.full(n_possible, -1, dtype=np.int64)
    lookup[distinct] = np.arange(len(distinct))
    return distinct, lookup[values]


def count_votes(
    classification_ids: np.ndarray,
    subject_ids: np.ndarray,
    majors: np.ndarray,
    annotations: Sequence[str | None] | Any,
    mapping: AnswerMapping,
) -> tuple[pd.DataFrame, AggregationReport]:
    """Count the votes of a batch of classifications of one workflow.

    Args:
        classification_ids: ``[n]`` int64 ids (already unique).
        subject_ids: ``[n]`` int64 subject of each classification.
        majors: ``[n]`` int64 workflow major version of each classification.
        annotations: ``[n]`` annotation JSON texts, index or label format.
        mapping: maps annotations to ``mapping.columns``.

    Returns:
        A long table ``subject_id, column (index into mapping.columns), count`` of non-zero counts,
        and the report.
    """
    report = AggregationReport(classifications=len(classification_ids))
    exploded = explode_annotations(annotations)
    if len(exploded.bad_rows):
        report.add_issue("malformed_row", classification_ids[exploded.bad_rows])
    group_majors, group = np.unique(np.asarray(majors, dtype=np.int64), return_inverse=True)
    n_objects = max(len(exploded.objects), 1)
    pair = group[exploded.row] * n_objects + exploded.code
    pairs, slot = _factorize(pair, len(group_majors) * n_objects)
    resolutions = [
        mapping.resolve(int(group_majors[p // n_objects]), exploded.objects[p % n_objects])
        for p in pairs
    ]
    task_codes: dict[str, int] = {}
    slot_task = np.array(
        [task_codes.setdefault(r.task, len(task_codes)) if r.task else -1 for r in resolutions]
        or [0],
        dtype=np.int64,
    )
    issue_names = sorted({r.issue for r in resolutions if r.issue})
    slot_issue = np.array(
        [issue_names.index(r.issue) if r.issue else -1 for r in resolutions] or [0], dtype=np.int64
    )
    slot_count = np.array([len(r.columns) for r in resolutions] or [0], dtype=np.int64)
    slot_start = np.cumsum(slot_count) - slot_count
    flat_columns = np.array([c for r in resolutions for c in r.columns] or [0], dtype=np.int64)

    duplicate = _duplicate_task_mask(exploded.row, slot_task[slot])
    if duplicate.any():
        report.add_issue("duplicate_task", classification_ids[exploded.row[duplicate]])
    element_issue = np.where(duplicate, -1, slot_issue[slot])
    for index, name in enumerate(issue_names):
        hit = np.flatnonzero(element_issue == index)
        if len(hit):
            report.add_issue(name, classification_ids[exploded.row[hit[:MAX_EXAMPLES]]], len(hit))

    element_count = np.where(duplicate, 0, slot_count[slot])
    element, position = _expand(element_count, slot_start[slot])
    columns = flat_columns[position]
    subject_values, subject_code = np.unique(np.asarray(subject_ids), return_inverse=True)
    vote_subject = subject_code[exploded.row[element]]
    report.votes = len(columns)
    return _group_counts(vote_subject, columns, subject_values, len(mapping.columns)), report


def _group_counts(
    subject_code: np.ndarray, columns: np.ndarray, subject_values: np.ndarray, n_columns: int
) -> pd.DataFrame:
    cells = len(subject_values) * n_columns
    key = subject_code.astype(np.int64) * n_columns + columns
    if cells <= DENSE_CELL_LIMIT:
        counts = np.bincount(key, minlength=cells)
        cell = np.flatnonzero(counts)
        values = counts[cell]
    else:
        cell, values = np.unique(key, return_counts=True)
    return pd.DataFrame(
        {
            "subject_id": subject_values[cell // n_columns].astype(np.int64),
            "column": (cell % n_columns).astype(np.int64),
            "count": values.astype(np.int64),
        }
    )


class VoteCounter:
    """Accumulates long count tables from several batches into one per-subject table."""

    def __init__(self, mapping: AnswerMapping) -> None:
        self.mapping = mapping
        self.report = AggregationReport()
        self._parts: list[pd.DataFrame] = []

    def add(self, counts: pd.DataFrame, report: AggregationReport) -> None:
        """Add one batch's output of `count_votes`."""
        self._parts.append(counts)
        self.report.merge(report)

    def table(self, schema: Schema | None = None) -> pd.DataFrame:
        """All counts so far, one row per subject (see `vote_table`)."""
        if not self._parts:
            return _wide(
                np.empty(0, np.int64),
                np.empty(0, np.int64),
                np.empty(0, np.int64),
                self.mapping.columns,
                schema,
            )
        frame = pd.concat(self._parts, ignore_index=True)
        return _wide(
            frame["subject_id"].to_numpy(),
            frame["column"].to_numpy(),
            frame["count"].to_numpy(),
            self.mapping.columns,
            schema,
        )


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

"""Annotation JSON -> votes: parse annotation texts and resolve each distinct one into columns.

Exports repeat the same annotation text across many classifications (a GZ DECaLS export of 1 M
rows has about a thousand distinct texts), so each distinct (major version, text) pair is parsed
and resolved once here; `panoptes_sync.counting` maps classifications to their pair's votes by
array indexing. Within a text only the first annotation of each task counts; multiple-choice
answers are independent binary votes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from panoptes_sync.workflow_versions import AnswerMapping

__all__ = [
    "ExplodedAnnotations",
    "TextVotes",
    "expand_ranges",
    "explode_annotations",
    "factorize",
    "resolve_texts",
]

#: Above this many possible values, `factorize` sorts instead of using a dense lookup table.
DENSE_LOOKUP_LIMIT = 50_000_000


class TextVotes(NamedTuple):
    """What each (major version, annotation text) pair counts for, as ragged arrays.

    Attributes:
        start: ``[n_pairs]`` offset of each pair's votes in ``columns``.
        length: ``[n_pairs]`` number of votes of each pair.
        columns: ``[n_votes]`` output column indices, grouped by pair.
        issues: issue kind -> ``[n_pairs]`` occurrences of that issue in each pair's text
            (``malformed_row`` when the text is not a JSON list).
    """

    start: np.ndarray
    length: np.ndarray
    columns: np.ndarray
    issues: dict[str, np.ndarray]


def expand_ranges(counts: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For items with ``counts[i]`` outputs starting at ``starts[i]``: (item, output position)."""
    item = np.repeat(np.arange(len(counts)), counts)
    first_output = np.cumsum(counts) - counts
    position = np.repeat(starts - first_output, counts) + np.arange(int(counts.sum()))
    return item, position


def factorize(values: np.ndarray, n_possible: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, index of each value among them) of non-negative ints.

    O(n) with a dense lookup when values are below ``n_possible`` and that is small enough.
    """
    if n_possible > DENSE_LOOKUP_LIMIT:
        return np.unique(values, return_inverse=True)
    distinct = np.flatnonzero(np.bincount(values, minlength=n_possible))
    lookup = np.full(n_possible, -1, dtype=np.int64)
    lookup[distinct] = np.arange(len(distinct))
    return distinct, lookup[values]


class ExplodedAnnotations(NamedTuple):
    """Annotation arrays of many classifications as one long table.

    Attributes:
        row: ``[n_annotations]`` index of the classification each annotation belongs to, in order.
        code: ``[n_annotations]`` index into ``objects``.
        objects: the distinct parsed annotations.
        bad_rows: indices of classifications whose annotations are not a JSON list.
    """

    row: np.ndarray
    code: np.ndarray
    objects: list[Any]
    bad_rows: np.ndarray


def explode_annotations(texts: Sequence[str | None] | pa.Array) -> ExplodedAnnotations:
    """Parse annotation JSON arrays (one per classification) into a long table, vectorised.

    Compact arrays (``[{"task":"T0","value":1},{...}]``, the shape of exports and of the store)
    are split in Arrow and only their distinct elements are JSON-parsed; any other row falls back
    to `json.loads`. A ``},{`` inside a label cannot fool the fast path: the split leaves an
    unterminated string, the element fails to parse and its row takes the slow path.

    Args:
        texts: ``[n_classifications]`` annotation JSON texts (None = missing).

    Returns:
        The long table; rows that are not a JSON list are in ``bad_rows``.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    array = texts if isinstance(texts, pa.Array) else pa.array(texts, type=pa.large_string())
    # Byte-level slicing of exactly '[{...}]' rows (one copy); anything else, e.g. padded with
    # whitespace, takes the json.loads path below.
    fast = pc.fill_null(pc.and_(pc.starts_with(array, "[{"), pc.ends_with(array, "}]")), False)
    is_empty = pc.fill_null(pc.equal(array, "[]"), False)
    raw_bytes = array.cast(
        pa.large_binary() if pa.types.is_large_string(array.type) else pa.binary()
    )
    body = pc.if_else(fast, pc.binary_slice(raw_bytes, 2, -2), pa.scalar(None, raw_bytes.type))
    pieces = pc.split_pattern(body, pattern=b"},{")
    parents = np.asarray(pc.list_parent_indices(pieces), dtype=np.int64)
    encoded = pc.dictionary_encode(pc.list_flatten(pieces))
    codes = np.asarray(encoded.indices, dtype=np.int64)
    objects: list[Any] = []
    parse_failed = np.zeros(len(encoded.dictionary), dtype=bool)
    for index, element in enumerate(encoded.dictionary.to_pylist()):
        try:
            objects.append(json.loads(b"{" + element + b"}"))
        except ValueError:
            objects.append(None)
            parse_failed[index] = True
    slow = ~np.asarray(fast, dtype=bool) & ~np.asarray(is_empty, dtype=bool)
    slow[parents[parse_failed[codes]]] = True
    keep = ~slow[parents]
    row_parts, code_parts = [parents[keep]], [codes[keep]]
    bad_rows: list[int] = []
    if slow.any():
        known: dict[str, int] = {}
        slow_rows, slow_codes = [], []
        slow_indices = np.flatnonzero(slow)
        raw = array.take(pa.array(slow_indices)).to_pylist()
        for row, text in zip(slow_indices, raw, strict=True):
            try:
                parsed = json.loads(text) if text is not None else None
            except ValueError:
                parsed = None
            if not isinstance(parsed, list):
                bad_rows.append(int(row))
                continue
            for element in parsed:
                key = json.dumps(element, sort_keys=True)
                if key not in known:
                    known[key] = len(objects)
                    objects.append(element)
                slow_rows.append(row)
                slow_codes.append(known[key])
        row_parts.append(np.asarray(slow_rows, dtype=np.int64))
        code_parts.append(np.asarray(slow_codes, dtype=np.int64))
    row, code = np.concatenate(row_parts), np.concatenate(code_parts)
    if slow.any():
        order = np.argsort(row, kind="stable")
        row, code = row[order], code[order]
    return ExplodedAnnotations(row, code, objects, np.asarray(bad_rows, dtype=np.int64))


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
    key = row[index] * (int(task.max()) + 1) + task[index]
    _, first = np.unique(key, return_index=True)
    repeated = np.ones(len(index), dtype=bool)
    repeated[first] = False
    duplicate[index[repeated]] = True
    return duplicate


def resolve_texts(majors: np.ndarray, texts: pa.Array, mapping: AnswerMapping) -> TextVotes:
    """Resolve (major version, annotation JSON text) pairs into the columns they vote for.

    Within one text only the first annotation of each task counts (later ones are
    ``duplicate_task``); a multiple-choice answer votes once per distinct chosen answer.

    Args:
        majors: ``[n_pairs]`` workflow major version of each pair.
        texts: ``[n_pairs]`` annotation JSON texts (null = missing).
        mapping: maps annotations to ``mapping.columns``.

    Returns:
        The votes and issue counts of each pair.
    """
    n_pairs = len(texts)
    exploded = explode_annotations(texts)
    major_values, major_code = np.unique(np.asarray(majors, dtype=np.int64), return_inverse=True)
    n_objects = max(len(exploded.objects), 1)
    slot_values, slot = factorize(
        major_code[exploded.row] * n_objects + exploded.code, len(major_values) * n_objects
    )
    resolutions = [
        mapping.resolve(int(major_values[value // n_objects]), exploded.objects[value % n_objects])
        for value in slot_values
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
    element_issue = np.where(duplicate, -1, slot_issue[slot])
    issues = {
        name: np.bincount(exploded.row[element_issue == index], minlength=n_pairs)
        for index, name in enumerate(issue_names)
    }
    if duplicate.any():
        issues["duplicate_task"] = np.bincount(exploded.row[duplicate], minlength=n_pairs)
    if len(exploded.bad_rows):
        issues["malformed_row"] = np.bincount(exploded.bad_rows, minlength=n_pairs)

    element, position = expand_ranges(np.where(duplicate, 0, slot_count[slot]), slot_start[slot])
    length = np.bincount(exploded.row[element], minlength=n_pairs)
    return TextVotes(np.cumsum(length) - length, length, flat_columns[position], issues)

"""Workflow versions and their answers: version texts, answer labels <-> indices, `AnswerMapping`.

Answer indices change meaning across workflow MAJOR versions, and export CSVs carry answer labels
(markdown images included) instead of indices. `AnswerMapping` turns one annotation of any major
version, index or label, into output columns: the answer indices of a target version (``T0_1``), or
a schema's label columns through the target version. Versions are bridged by answer label.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from panoptes_sync.errors import AggregationError, ExportFormatError
from zoobot.schemas import Schema
from zoobot.schemas.panoptes import slugify

__all__ = [
    "QUESTION_TASK_TYPES",
    "AnswerMapping",
    "Resolution",
    "WorkflowVersionTasks",
    "answer_key",
    "answer_label",
    "inject_strings",
    "major_versions",
    "parse_workflow_version",
    "read_workflows_csv",
]

#: Task types whose answers are counted (single- and multiple-choice questions).
QUESTION_TASK_TYPES = frozenset({"single", "multiple"})
#: Columns the Panoptes workflows export must have (lib/formatter/csv/workflow.rb).
WORKFLOWS_CSV_COLUMNS = ("workflow_id", "version", "minor_version", "tasks")


def answer_key(label: str) -> str:
    """A label's matching key: markdown images stripped, lower case, runs of symbols as ``-``."""
    return slugify(label)


def parse_workflow_version(text: Any) -> tuple[int, int]:
    """``"66.425"`` -> ``(66, 425)``; a bare ``"66"`` -> ``(66, 0)``.

    Raises:
        ValueError: if the text is not ``MAJOR[.MINOR]`` with integer parts.
    """
    parts = str(text).strip().split(".")
    if not 1 <= len(parts) <= 2 or not all(part.isdigit() for part in parts):
        raise ValueError(f"workflow version {text!r} is not MAJOR.MINOR")
    return int(parts[0]), int(parts[1]) if len(parts) == 2 else 0


def major_versions(texts: Sequence[Any] | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The major versions of many ``MAJOR[.MINOR]`` texts, each distinct text parsed once.

    Args:
        texts: ``[n]`` version texts (a sequence or an Arrow string array; None = missing).

    Returns:
        ``[n]`` int64 majors (-1 where unreadable) and the ``[n]`` boolean mask of readable ones.
    """
    if not isinstance(texts, pa.Array | pa.ChunkedArray):
        texts = pa.array([None if t is None else str(t) for t in texts], type=pa.large_string())
    encoded = pc.dictionary_encode(texts)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    parsed = []
    for text in encoded.dictionary.to_pylist():
        try:
            parsed.append(parse_workflow_version(text)[0])
        except ValueError:
            parsed.append(-1)
    lookup = np.asarray(parsed + [-1], dtype=np.int64)  # the last entry stands for missing texts
    codes = np.asarray(encoded.indices.fill_null(len(parsed)), dtype=np.int64)
    majors = lookup[codes]
    return majors, majors >= 0


def answer_label(task: Mapping[str, Any], index: Any) -> str | None:
    """The label of answer ``index`` of a task, or None if there is no such answer or label."""
    answers = task.get("answers") or []
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(answers):
        return None
    label = answers[index].get("label")
    return label if isinstance(label, str) else None


def inject_strings(tasks: Mapping[str, Any], strings: Mapping[str, Any] | None) -> dict[str, Any]:
    """Tasks with question texts and answer labels looked up in ``strings`` where they are keys.

    Panoptes stores ``"T0.answers.0.label"``-style keys in ``tasks`` and the texts in ``strings``.
    """
    strings = strings or {}
    resolved: dict[str, Any] = {}
    for key, task in tasks.items():
        task = dict(task)
        if isinstance(task.get("question"), str):
            task["question"] = strings.get(task["question"], task["question"])
        answers = []
        for answer in task.get("answers") or []:
            answer = dict(answer)
            if isinstance(answer.get("label"), str):
                answer["label"] = strings.get(answer["label"], answer["label"])
            answers.append(answer)
        if "answers" in task:
            task["answers"] = answers
        resolved[key] = task
    return resolved


@dataclass(frozen=True)
class WorkflowVersionTasks:
    """The tasks of one workflow version, with strings already injected."""

    workflow_id: int
    major: int
    minor: int
    tasks: Mapping[str, Any]
    first_task: str | None = None


def read_workflows_csv(
    path: str | Path, workflow_id: int | None = None
) -> list[WorkflowVersionTasks]:
    """Read a Panoptes workflows export (one row per workflow version).

    Args:
        path: the CSV (columns ``workflow_id, display_name, version, minor_version, ..., tasks,
            ..., strings``; ``version`` is the major version).
        workflow_id: keep only this workflow's versions.

    Returns:
        The versions found.

    Raises:
        ExportFormatError: if the file is missing or lacks a required column, or a row's tasks
            are not JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportFormatError(f"no workflows export at {path}; pass --workflows-csv FILE")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in WORKFLOWS_CSV_COLUMNS if column not in frame.columns]
    if missing:
        raise ExportFormatError(f"workflows export {path} lacks columns {missing}")
    versions = []
    for line, row in enumerate(frame.to_dict("records"), start=2):
        if workflow_id is not None and row["workflow_id"] != str(workflow_id):
            continue
        try:
            tasks = json.loads(row["tasks"] or "{}")
            strings = json.loads(row.get("strings") or "{}")
            versions.append(
                WorkflowVersionTasks(
                    workflow_id=int(row["workflow_id"]),
                    major=int(row["version"]),
                    minor=int(row["minor_version"] or 0),
                    tasks=inject_strings(tasks, strings),
                    first_task=row.get("first_task") or None,
                )
            )
        except (ValueError, TypeError, AttributeError) as error:
            raise ExportFormatError(
                f"{path} line {line}: unreadable workflow version: {error}"
            ) from error
    return versions


class Resolution(NamedTuple):
    """What one annotation contributes: its task, output column indices, and any issue."""

    task: str | None
    columns: tuple[int, ...]
    issue: str | None


@dataclass
class _MajorVersion:
    """Answer structure of one major version: tasks (of its newest minor) and label lookups."""

    tasks: dict[str, Any]
    label_index: dict[str, dict[str, int]] = field(default_factory=dict)

    def add_labels(self, tasks: Mapping[str, Any]) -> None:
        for key, task in tasks.items():
            lookup = self.label_index.setdefault(key, {})
            for index, answer in enumerate(task.get("answers") or []):
                if isinstance(answer.get("label"), str):
                    lookup.setdefault(answer_key(answer["label"]), index)

    def answer_label(self, task: str, index: int) -> str | None:
        return answer_label(self.tasks.get(task, {}), index)


class AnswerMapping:
    """Maps annotations of any major version of one workflow to output columns.

    Args:
        versions: the workflow's versions (any number of minors per major).
        schema: map to this schema's label columns through its ``panoptes_mapping`` (whose answer
            indices are those of the target version); None gives ``<task>_<index>`` columns.
        target_major: the major version whose answer indices define the columns; default the
            newest one.

    Raises:
        AggregationError: if no versions are given, the target version is unknown, or the schema
            has no Panoptes mapping.
    """

    def __init__(
        self,
        versions: Sequence[WorkflowVersionTasks],
        schema: Schema | None = None,
        target_major: int | None = None,
    ) -> None:
        if not versions:
            raise AggregationError(
                "no workflow versions known; load the workflows export (--workflows-csv) or sync "
                "the workflow's versions into the store first"
            )
        self.majors: dict[int, _MajorVersion] = {}
        for version in sorted(versions, key=lambda v: (v.major, v.minor)):
            major = self.majors.setdefault(version.major, _MajorVersion(dict(version.tasks)))
            major.tasks = dict(version.tasks)
            major.add_labels(version.tasks)
        self.target_major = max(self.majors) if target_major is None else target_major
        if self.target_major not in self.majors:
            raise AggregationError(
                f"target major version {self.target_major} unknown; known: {sorted(self.majors)}"
            )
        target = self.majors[self.target_major]
        if schema is None:
            self.columns = [
                f"{key}_{index}"
                for key, task in target.tasks.items()
                if task.get("type") in QUESTION_TASK_TYPES
                for index in range(len(task.get("answers") or []))
            ]
            target_columns = {name: i for i, name in enumerate(self.columns)}
            self._column_of = lambda task, index: target_columns.get(f"{task}_{index}")
        else:
            mapping = getattr(schema, "panoptes_mapping", None)
            if not mapping:
                raise AggregationError(
                    f"schema {schema.name!r} has no panoptes_mapping; build it with "
                    "zoobot.schemas.schema_from_panoptes_workflow or aggregate without a schema"
                )
            self.columns = list(schema.label_cols)
            schema_columns = {name: i for i, name in enumerate(self.columns)}
            self._column_of = lambda task, index: schema_columns.get(mapping.get((task, index), ""))

    def resolve(self, major: int, annotation: Any) -> Resolution:
        """The output columns one annotation of a classification made at ``major`` counts for.

        Issues (the annotation then counts for fewer or no columns): ``malformed_annotation``,
        ``unknown_workflow_version``, ``unknown_task``, ``unsupported_task``, ``no_answer``
        (skipped), ``unknown_answer``, ``answer_not_in_target_version``, ``unmapped_answer``
        (a real answer the schema has no column for).
        """
        if not isinstance(annotation, Mapping) or not isinstance(annotation.get("task"), str):
            return Resolution(None, (), "malformed_annotation")
        task_key, value = annotation["task"], annotation.get("value")
        version = self.majors.get(major)
        if version is None:
            return Resolution(task_key, (), "unknown_workflow_version")
        task = version.tasks.get(task_key)
        if task is None:
            return Resolution(task_key, (), "unknown_task")
        if task.get("type") not in QUESTION_TASK_TYPES:
            return Resolution(task_key, (), "unsupported_task")
        if isinstance(value, list):
            if task.get("type") != "multiple":
                return Resolution(task_key, (), "malformed_annotation")
            values: Iterable[Any] = value
        else:
            values = () if value is None else (value,)
        columns: list[int] = []
        issue = None if value not in (None, []) else "no_answer"
        for item in values:
            column, item_issue = self._resolve_value(major, version, task_key, item)
            if column is not None and column not in columns:
                columns.append(column)
            issue = issue or item_issue
        return Resolution(task_key, tuple(columns), issue)

    def _resolve_value(
        self, major: int, version: _MajorVersion, task: str, value: Any
    ) -> tuple[int | None, str | None]:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return None, "malformed_annotation"
        if isinstance(value, str):
            index = version.label_index.get(task, {}).get(answer_key(value))
        elif float(value).is_integer():
            index = int(value)
        else:
            return None, "malformed_annotation"
        if index is None or version.answer_label(task, index) is None:
            return None, "unknown_answer"
        if major != self.target_major:
            label = version.answer_label(task, index)
            target_lookup = self.majors[self.target_major].label_index.get(task, {})
            index = target_lookup.get(answer_key(label)) if label is not None else None
            if index is None:
                return None, "answer_not_in_target_version"
        column = self._column_of(task, index)
        return (None, "unmapped_answer") if column is None else (column, None)

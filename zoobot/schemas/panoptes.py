"""Schemas from Panoptes workflow definitions (tasks ``T0..Tn`` with answers and ``next`` links).

A question's dependency is the last answer that every path from the first task to it passes through
(its dominator), which is what P(question asked) needs: GZ DECaLS's ``T8`` (bulge size) is reached
both from ``T5`` = no and after ``T7``, yet both paths pass ``T2`` = no (not edge-on).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from zoobot.errors import SchemaError
from zoobot.schemas.base import Answer, Question, Schema

__all__ = [
    "DECALS_DR5_ANSWER_NAMES",
    "DECALS_DR5_QUESTION_NAMES",
    "decals_dr5_workflow",
    "schema_from_panoptes_workflow",
    "slugify",
]

_MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")


def slugify(text: str) -> str:
    """Lower-case, markdown images removed, runs of non-alphanumerics turned into one hyphen."""
    text = _MARKDOWN_IMAGE.sub("", text).strip().lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def schema_from_panoptes_workflow(
    workflow: Mapping[str, Any],
    question_names: Mapping[str, str] | None = None,
    answer_names: Mapping[str, Sequence[str]] | None = None,
    name: str = "panoptes",
    skip_tasks: Iterable[str] = (),
) -> Schema:
    """Build a schema from a workflow definition.

    Args:
        workflow: a workflow (or workflow version) with ``tasks`` and ``first_task``.
        question_names: task key -> question name; default, the slug of the question text.
        answer_names: task key -> answer slugs in answer-index order; default, the label slugs.
        name: the schema's name.
        skip_tasks: tasks to leave out (e.g. free-text or multiple-choice tasks).
            Only ``single`` tasks become questions; ``multiple`` tasks are skipped unless named in
            ``question_names``.

    Returns:
        A schema whose ``panoptes_mapping`` maps (task, answer index) -> label column.

    Raises:
        SchemaError: if the workflow has no tasks, a ``next`` names an unknown task, the tasks form
            a cycle, or given answer names do not match the number of answers.
    """
    tasks: Mapping[str, Any] = workflow.get("tasks") or {}
    if not tasks:
        raise SchemaError(f"workflow {workflow.get('id', '?')} has no tasks")
    first = workflow.get("first_task") or next(iter(tasks))
    question_names = dict(question_names or {})
    answer_names = dict(answer_names or {})
    skipped = set(skip_tasks)
    kept = [
        key
        for key, task in tasks.items()
        if key not in skipped
        and (
            task.get("type") == "single"
            or (task.get("type") == "multiple" and key in question_names)
        )
    ]
    order = _topological_order(tasks, first)
    kept.sort(key=order.index)
    dominators = _answer_dominators(tasks, first, order)

    questions, mapping = [], {}
    for key in kept:
        task = tasks[key]
        question = question_names.get(key) or slugify(task.get("question", key))
        slugs = list(
            answer_names.get(key)
            or [slugify(a.get("label", str(i))) for i, a in enumerate(task["answers"])]
        )
        if len(slugs) != len(task["answers"]):
            raise SchemaError(
                f"task {key}: {len(slugs)} answer names given for {len(task['answers'])} answers"
            )
        answers = tuple(Answer(f"{question}_{slug}", slug) for slug in slugs)
        questions.append(Question(question, answers))
        mapping.update({(key, i): answer.name for i, answer in enumerate(answers)})

    dependencies: dict[str, str | None] = {}
    for key, question in zip(kept, questions):
        chain = [node for node in dominators.get(key, []) if node in mapping]
        dependencies[question.name] = mapping[chain[-1]] if chain else None
    return Schema(
        name=name, questions=tuple(questions), dependencies=dependencies, panoptes_mapping=mapping
    )


def _next_tasks(task: Mapping[str, Any]) -> list[tuple[int | None, str]]:
    """(answer index or None for a task-level link, next task) pairs of one task."""
    links: list[tuple[int | None, str]] = []
    if task.get("type") == "single":
        links += [(i, a["next"]) for i, a in enumerate(task.get("answers", [])) if a.get("next")]
    elif task.get("next"):
        links.append((None, task["next"]))
    return links


def _topological_order(tasks: Mapping[str, Any], first: str) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(key: str) -> None:
        if key not in tasks:
            raise SchemaError(f"workflow links to unknown task {key!r}")
        if state.get(key) == 1:
            raise SchemaError(f"workflow tasks form a cycle through {key!r}")
        if state.get(key) == 2:
            return
        state[key] = 1
        for _, nxt in _next_tasks(tasks[key]):
            visit(nxt)
        state[key] = 2
        order.append(key)

    visit(first)
    order.reverse()
    return order + [key for key in tasks if key not in order]


def _answer_dominators(
    tasks: Mapping[str, Any], first: str, order: list[str]
) -> dict[str, list[tuple[str, int]]]:
    """For each task, the (task, answer) nodes on every path to it, from the root down."""
    dominators: dict[str, list[tuple[str, int]] | None] = {first: []}
    for key in order:
        through = dominators.get(key)
        if through is None:
            continue
        for answer, nxt in _next_tasks(tasks[key]):
            path = through + ([(key, answer)] if answer is not None else [])
            known = dominators.get(nxt)
            dominators[nxt] = path if known is None else [node for node in known if node in path]
    return {key: value for key, value in dominators.items() if value is not None}


def _dr5_workflow() -> dict[str, Any]:
    def single(question: str, labels: Sequence[str], nexts: Sequence[str | None]) -> dict[str, Any]:
        answers = [
            {"label": label, **({"next": nxt} if nxt else {})} for label, nxt in zip(labels, nexts)
        ]
        return {"type": "single", "question": question, "answers": answers, "required": True}

    rare = ["None", "Ring", "Lens or arc", "Dust lane", "Irregular", "Other", "Overlapping"]
    return {
        "first_task": "T0",
        "version": "66.425",
        "prioritized": False,
        "grouped": False,
        "retirement": {"criteria": "classification_count", "options": {"count": 40}},
        "tasks": {
            "T0": single(
                "Is the galaxy simply smooth and rounded, with no sign of a disk?",
                ["Smooth", "Features or Disk", "Star or Artifact"],
                ["T1", "T2", None],
            ),
            "T1": single(
                "How rounded is it?",
                ["Completely round", "In between", "Cigar-shaped"],
                ["T11"] * 3,
            ),
            "T2": single(
                "Could this be a disk viewed edge-on?",
                ["Yes - Edge On Disk", "No - Something Else"],
                ["T3", "T4"],
            ),
            "T3": single(
                "Does the galaxy have a bulge at its centre? If so, what shape?",
                ["Rounded", "Boxy", "No Bulge"],
                ["T11"] * 3,
            ),
            "T4": single(
                "Is there a bar feature through the centre of the galaxy?",
                ["Strong Bar", "Weak Bar", "No Bar"],
                ["T5"] * 3,
            ),
            "T5": single("Is there any sign of a spiral arm pattern?", ["Yes", "No"], ["T6", "T8"]),
            "T6": single(
                "How tightly wound do the spiral arms appear?",
                ["Tight", "Medium", "Loose"],
                ["T7"] * 3,
            ),
            "T7": single(
                "How many spiral arms are there?",
                ["1", "2", "3", "4", "More than 4", "Can't tell"],
                ["T8"] * 6,
            ),
            "T8": single(
                "How prominent is the central bulge, compared with the rest of the galaxy?",
                ["No bulge", "Small", "Moderate", "Large", "Dominant"],
                ["T11"] * 5,
            ),
            "T11": single(
                "Is the galaxy currently merging or is there any sign of tidal debris?",
                ["Merging", "Major Disturbance", "Minor Disturbance", "None"],
                ["T10"] * 4,
            ),
            "T10": {
                "type": "multiple",
                "question": "Do you see any of these rare features?",
                "answers": [{"label": label} for label in rare],
                "next": None,
            },
        },
    }


#: Question names of the GZ DECaLS DR5 workflow's tasks (the multiple-choice T10 is not modelled).
DECALS_DR5_QUESTION_NAMES = {
    "T0": "smooth-or-featured",
    "T1": "how-rounded",
    "T2": "disk-edge-on",
    "T3": "edge-on-bulge",
    "T4": "bar",
    "T5": "has-spiral-arms",
    "T6": "spiral-winding",
    "T7": "spiral-arm-count",
    "T8": "bulge-size",
    "T11": "merging",
}
#: Answer slugs of each task, in the workflow's answer-index order.
DECALS_DR5_ANSWER_NAMES = {
    "T0": ["smooth", "featured-or-disk", "artifact"],
    "T1": ["round", "in-between", "cigar-shaped"],
    "T2": ["yes", "no"],
    "T3": ["rounded", "boxy", "none"],
    "T4": ["strong", "weak", "no"],
    "T5": ["yes", "no"],
    "T6": ["tight", "medium", "loose"],
    "T7": ["1", "2", "3", "4", "more-than-4", "cant-tell"],
    "T8": ["none", "small", "moderate", "large", "dominant"],
    "T11": ["merger", "major-disturbance", "minor-disturbance", "none"],
}

#: The GZ DECaLS DR5 workflow definition (panoptes_api.md §2.3); the T10 labels are illustrative.
decals_dr5_workflow: dict[str, Any] = _dr5_workflow()

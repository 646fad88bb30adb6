"""Seeded synthetic Panoptes data: workflow versions, classifications (API and export) and counts.

The generator walks the GZ DECaLS DR5 decision tree, so it knows each answer's meaning; the
reference counts below are built from that knowledge, not from the code under test.
"""

from __future__ import annotations

import copy
import csv
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoobot.schemas import decals_dr5_workflow

WORKFLOW_ID = 6122
PROJECT_ID = 5733
EXPORT_HEADER = (
    "classification_id,user_name,user_id,user_ip,workflow_id,workflow_name,workflow_version,"
    "created_at,gold_standard,expert,metadata,annotations,subject_data,subject_ids"
).split(",")
WORKFLOWS_HEADER = (
    "workflow_id,display_name,version,minor_version,active,classifications_count,pairwise,grouped,"
    "prioritized,primary_language,first_task,tutorial_subject_id,retired_set_member_subjects_count,"
    "tasks,retirement,aggregation,strings"
).split(",")


def versions() -> dict[str, dict[str, Any]]:
    """Three versions: 65.1 (T0 answers in another order, image markdown), 66.1 and 66.2.

    66.2 changes only label texts (a minor version); 65 -> 66 reorders T0 (a major version).
    """
    v66 = copy.deepcopy(decals_dr5_workflow)
    v65 = copy.deepcopy(v66)
    smooth, featured, artifact = v65["tasks"]["T0"]["answers"]
    v65["tasks"]["T0"]["answers"] = [featured, artifact, smooth]
    smooth["label"] = "![smooth.png](https://example.org/s.png) Smooth"
    v662 = copy.deepcopy(v66)
    v662["tasks"]["T1"]["answers"][1]["label"] = "In-between"
    return {"65.1": v65, "66.1": v66, "66.2": v662}


#: Ground truth of the generated versions: (major, task) -> answer index in major 66, by index.
TO_TARGET_INDEX = {("65", "T0"): [1, 2, 0]}


def _answer_labels(workflow: dict[str, Any], task: str) -> list[str]:
    return [answer["label"] for answer in workflow["tasks"][task]["answers"]]


@dataclass
class Synthetic:
    """Generated classifications in both formats plus the reference counts."""

    api: list[dict[str, Any]]
    export_rows: list[dict[str, str]]
    reference: dict[int, Counter]  # subject -> Counter of "<task>_<index in 66>" columns
    reference_first: dict[int, Counter]


def _walk(rng: random.Random, workflow: dict[str, Any]) -> list[tuple[str, Any]]:
    """(task, answer index or list of indices) along one random path of the tree."""
    path, task = [], workflow["first_task"]
    while task:
        spec = workflow["tasks"][task]
        if spec["type"] == "multiple":
            chosen = sorted(rng.sample(range(len(spec["answers"])), rng.randint(0, 2)))
            path.append((task, chosen))
            task = spec.get("next")
        else:
            index = rng.randrange(len(spec["answers"]))
            path.append((task, index))
            task = spec["answers"][index].get("next")
    return path


def generate(n: int = 300, n_subjects: int = 20, n_users: int = 15, seed: int = 0) -> Synthetic:
    """Seeded classifications of workflow 6122 across versions 65.1, 66.1 and 66.2."""
    rng = random.Random(seed)
    all_versions = versions()
    api, rows = [], []
    reference: dict[int, Counter] = {}
    reference_first: dict[int, Counter] = {}
    seen: set[tuple[int, Any]] = set()
    for number in range(n):
        cid = 1000 + number * 3
        version = rng.choice(list(all_versions))
        workflow = all_versions[version]
        subject = 500 + rng.randrange(n_subjects)
        user = rng.randrange(n_users + 5)
        user_id = None if user >= n_users else user + 1
        user_name = f"volunteer{user_id}" if user_id else f"not-logged-in-{user:04x}"
        path = _walk(rng, workflow)
        votes = Counter()
        for task, value in path:
            indices = value if isinstance(value, list) else [value]
            for index in indices:
                meaning = TO_TARGET_INDEX.get((version.split(".")[0], task), list(range(99)))
                votes[f"{task}_{meaning[index]}"] += 1
        reference.setdefault(subject, Counter()).update(votes)
        if user_id is None or (subject, user_id) not in seen:
            reference_first.setdefault(subject, Counter()).update(votes)
        if user_id is not None:
            seen.add((subject, user_id))
        created = f"2019-03-29T18:{number // 60 % 60:02d}:{number % 60:02d}.000Z"
        metadata = {"source": "api", "user_language": "en", "workflow_version": version}
        api.append(
            {
                "id": str(cid),
                "annotations": [{"task": t, "value": v} for t, v in path],
                "created_at": created,
                "metadata": metadata,
                "links": {
                    "project": str(PROJECT_ID),
                    "user": str(user_id) if user_id else None,
                    "workflow": str(WORKFLOW_ID),
                    "subjects": [str(subject)],
                },
            }
        )
        labelled = [
            {
                "task": t,
                "task_label": workflow["tasks"][t]["question"],
                "value": [_answer_labels(workflow, t)[i] for i in v]
                if isinstance(v, list)
                else _answer_labels(workflow, t)[v],
            }
            for t, v in path
        ]
        rows.append(
            {
                "classification_id": str(cid),
                "user_name": user_name,
                "user_id": str(user_id) if user_id else "",
                "user_ip": f"{user:020x}",
                "workflow_id": str(WORKFLOW_ID),
                "workflow_name": "DECaLS DR5",
                "workflow_version": version,
                "created_at": created.replace("T", " ")[:19] + " UTC",
                "gold_standard": "",
                "expert": "",
                "metadata": json.dumps(metadata, separators=(",", ":")),
                "annotations": json.dumps(labelled, separators=(",", ":")),
                "subject_data": json.dumps({str(subject): {"retired": None}}),
                "subject_ids": str(subject),
            }
        )
    return Synthetic(api, rows, reference, reference_first)


def write_export(path: Path, rows: list[dict[str, str]], extra_lines: list[str] = ()) -> Path:
    """Write an export CSV (plus raw extra lines appended verbatim)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_HEADER)
        writer.writeheader()
        writer.writerows(rows)
        for line in extra_lines:
            handle.write(line + "\r\n")
    return path


def write_workflows(path: Path) -> Path:
    """Write a workflows export with the three versions, labels moved into ``strings``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=WORKFLOWS_HEADER)
        writer.writeheader()
        for version, workflow in versions().items():
            major, minor = version.split(".")
            tasks, strings = copy.deepcopy(workflow["tasks"]), {}
            for key, task in tasks.items():
                strings[f"{key}.question"] = task["question"]
                task["question"] = f"{key}.question"
                for index, answer in enumerate(task["answers"]):
                    strings[f"{key}.answers.{index}.label"] = answer["label"]
                    answer["label"] = f"{key}.answers.{index}.label"
            writer.writerow(
                {
                    "workflow_id": WORKFLOW_ID,
                    "display_name": "DECaLS DR5",
                    "version": major,
                    "minor_version": minor,
                    "active": "true",
                    "first_task": "T0",
                    "tasks": json.dumps(tasks),
                    "retirement": "{}",
                    "aggregation": "{}",
                    "strings": json.dumps(strings),
                }
            )
    return path

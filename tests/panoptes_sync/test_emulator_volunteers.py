"""Simulated volunteers, Designator-like selection, retirement, fault injection and the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from panoptes_client import Panoptes, Project, Subject, SubjectSet, Workflow
from PIL import Image

from panoptes_sync.emulator import (
    EmulatorServer,
    EmulatorSettings,
    FaultRule,
    parse_fault_rule,
    serve_emulator,
)
from panoptes_sync.emulator.cli import build_parser, main, settings_from_args
from panoptes_sync.emulator.seed import workflow_definition
from panoptes_sync.errors import EmulatorConfigError
from tests.panoptes_sync.emulator_fixtures import *  # noqa: F403 (pytest fixtures)
from tests.panoptes_sync.emulator_fixtures import API_HEADERS, reset_panoptes_client, small_settings

REPO_ROOT = Path(__file__).resolve().parents[2]


def classifications(emu: EmulatorServer) -> list[dict[str, Any]]:
    rows = emu.query(
        "SELECT id, user_id, subject_ids, annotations FROM classifications ORDER BY id"
    )
    return [
        {
            **row,
            "subject_ids": json.loads(row["subject_ids"]),
            "annotations": json.loads(row["annotations"]),
        }
        for row in rows
    ]


def assert_valid_walk(annotations: list[dict[str, Any]], tasks: dict[str, Any]) -> None:
    expected: str | None = "T0"
    for annotation in annotations:
        assert annotation["task"] == expected
        task = tasks[expected]
        if task["type"] == "multiple":
            assert all(0 <= v < len(task["answers"]) for v in annotation["value"])
            expected = task.get("next")
        else:
            assert 0 <= annotation["value"] < len(task["answers"])
            expected = task["answers"][annotation["value"]].get("next")
    assert expected is None


@pytest.mark.parametrize("answer_model", ["simulated", "random"])
def test_seeded_classifications_are_valid_tree_walks(tmp_path: Path, answer_model: str) -> None:
    tasks = workflow_definition()["tasks"]
    settings = small_settings(tmp_path, answer_model=answer_model)
    with serve_emulator(settings) as emu:
        rows = classifications(emu)
    assert len(rows) == settings.classifications
    for row in rows:
        assert_valid_walk(row["annotations"], tasks)
    first_answers = {row["annotations"][0]["value"] for row in rows}
    assert len(first_answers) > 1


def test_simulated_answers_map_schema_answers_to_workflow_indices(tmp_path: Path) -> None:
    from panoptes_sync.emulator.answers_simulated import SimulatedGalaxyAnswerModel
    from zoobot.schemas import decals_dr5_schema

    definition = workflow_definition()
    model = SimulatedGalaxyAnswerModel(definition["tasks"], "T0", seed=0, image_size=16)
    chosen = {
        "smooth-or-featured_featured-or-disk",
        "disk-edge-on_no",
        "has-spiral-arms_no",
        "bar_strong",
        "bulge-size_dominant",
        "merging_merger",
    }
    columns = decals_dr5_schema.label_cols
    p = np.array([1.0 if col in chosen else 0.0 for col in columns])
    for answers in decals_dr5_schema.question_slices:  # questions not on the path: anything
        if p[answers].sum() == 0:
            p[answers] = 1.0
    annotations = model.annotate(p, np.random.default_rng(0))
    singles = [(a["task"], a["value"]) for a in annotations if a["task"] != "T10"]
    # DR5's workflow orders bulge answers none..dominant, the schema dominant..none.
    assert singles == [("T0", 1), ("T2", 1), ("T4", 0), ("T5", 1), ("T8", 4), ("T11", 0)]
    assert annotations[-1]["task"] == "T10"


def test_simulated_votes_follow_the_galaxies(tmp_path: Path) -> None:
    settings = small_settings(tmp_path, subjects=30, classifications=0, retirement_count=20)
    with serve_emulator(settings) as emu:
        emu.run_volunteers(600)
        morphology = {
            row["id"]: json.loads(row["metadata"])["!morphology"]
            for row in emu.query("SELECT id, metadata FROM subjects")
        }
        image = requests.get(
            f"{emu.endpoint}/uploads/subject_location/seed-{settings.seed}-000003.png"
        )
        rows = classifications(emu)
    smooth: dict[str, list[int]] = {"elliptical": [], "spiral": []}
    for row in rows:
        kind = morphology[row["subject_ids"][0]]
        if kind in smooth:
            smooth[kind].append(int(row["annotations"][0]["value"] == 0))
    assert np.mean(smooth["elliptical"]) > np.mean(smooth["spiral"]) + 0.3
    assert Image.open(io.BytesIO(image.content)).size == (settings.image_size,) * 2


def test_volunteers_are_deterministic_for_the_seed(tmp_path: Path) -> None:
    runs = []
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        settings = small_settings(tmp_path / name, seed=seed, classifications=10)
        with serve_emulator(settings) as emu:
            emu.run_volunteers(5)
            runs.append(
                [(r["id"], r["subject_ids"], r["annotations"]) for r in classifications(emu)]
            )
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_subjects_retire_at_the_classification_count(tmp_path: Path) -> None:
    settings = small_settings(tmp_path, subjects=3, classifications=0, retirement_count=2)
    with serve_emulator(settings) as emu:
        made = emu.run_volunteers(10)
        statuses = emu.query("SELECT * FROM subject_workflow_statuses")
        again = emu.run_volunteers(1)
    assert len(made) == 6 and again == []
    assert [s["classifications_count"] for s in statuses] == [2, 2, 2]
    assert {s["retirement_reason"] for s in statuses} == {"classification_count"}


def test_prioritized_workflow_serves_low_priority_values_first(tmp_path: Path) -> None:
    settings = small_settings(
        tmp_path, subjects=0, classifications=0, prioritized=True, retirement_count=3
    )
    with serve_emulator(settings) as emu:
        reset_panoptes_client()
        Panoptes.connect(username="owner", password="secret", endpoint=emu.endpoint)
        priorities: list[float | None] = [5.0, None, 2.0, -1.0, 4.0, 3.0, 1.0, 6.0]
        subjects = []
        for priority in priorities:
            subject = Subject()
            subject.links.project = Project(emu.project_id)
            subject.add_location({"image/png": f"{emu.endpoint}/static/{priority}.png"})
            if priority is not None:
                subject.metadata["#priority"] = priority
            subject.save()
            subjects.append(subject)
        subject_set = SubjectSet()
        subject_set.links.project = Project(emu.project_id)
        subject_set.display_name = "prioritised batch"
        subject_set.save()
        subject_set.add(subjects)
        Workflow(emu.workflow_id).add_subject_sets([subject_set])
        emu.run_volunteers(12)
        reset_panoptes_client()
        classified = [int(r["subject_ids"][0]) for r in classifications(emu)]
    effective = {int(s.id): (p if p is not None else 0.0) for s, p in zip(subjects, priorities)}
    first_seen = list(dict.fromkeys(classified))
    assert first_seen[0] == int(subjects[priorities.index(-1.0)].id)
    unclassified = set(effective) - set(classified)
    assert unclassified
    assert max(effective[s] for s in classified) <= min(effective[s] for s in unclassified)


def test_subject_set_chances_steer_volunteers(tmp_path: Path) -> None:
    settings = small_settings(tmp_path, subjects=6, classifications=0, retirement_count=50)
    with serve_emulator(settings) as emu:
        reset_panoptes_client()
        Panoptes.connect(username="owner", password="secret", endpoint=emu.endpoint)
        seeded_set = Workflow(emu.workflow_id).raw["links"]["subject_sets"][0]
        extra = SubjectSet()
        extra.links.project = Project(emu.project_id)
        extra.display_name = "never chosen"
        extra.save()
        subject = Subject()
        subject.links.project = Project(emu.project_id)
        subject.add_location({"image/png": f"{emu.endpoint}/static/x.png"})
        subject.save()
        extra.add([subject])
        workflow = Workflow.find(emu.workflow_id)
        workflow.add_subject_sets([extra])
        workflow = Workflow.find(emu.workflow_id)
        workflow.configuration["subject_set_chances"] = {seeded_set: 1.0, extra.id: 0.0}
        workflow.save()
        emu.run_volunteers(30)
        reset_panoptes_client()
        classified = {r["subject_ids"][0] for r in classifications(emu)}
    assert classified and int(subject.id) not in classified


def test_background_volunteers_keep_classifying(tmp_path: Path) -> None:
    settings = small_settings(tmp_path, volunteer_rate_per_s=200.0, classifications=5)
    with serve_emulator(settings) as emu:
        deadline = time.monotonic() + 10
        while len(emu.classification_ids()) <= 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(emu.classification_ids()) > 5


def raw_get(emu: EmulatorServer, path: str, token: str | None = None) -> requests.Response:
    headers = dict(API_HEADERS)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(emu.endpoint + "/api" + path, headers=headers)


def test_faults_5xx_429_html_and_limit(tmp_path: Path) -> None:
    faults = [
        FaultRule(route="projects", status=503, rate=1.0, limit=1),
        FaultRule(route="projects", status=429, rate=1.0, limit=1, retry_after_s=7),
        FaultRule(route="workflows", kind="html", status=502, rate=1.0, limit=1),
    ]
    with serve_emulator(small_settings(tmp_path, faults=faults)) as emu:
        path = f"/projects/{emu.project_id}"
        unavailable, limited, ok = (raw_get(emu, path) for _ in range(3))
        html = raw_get(emu, f"/workflows/{emu.workflow_id}")
        after = raw_get(emu, f"/workflows/{emu.workflow_id}")
    assert unavailable.status_code == 503 and "errors" in unavailable.json()
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert ok.status_code == 200
    assert html.status_code == 502 and html.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        html.json()
    assert after.status_code == 200


def test_fault_drop_breaks_the_connection_mid_response(tmp_path: Path) -> None:
    faults = [FaultRule(route="/api/projects", kind="drop", rate=1.0, limit=1)]
    with serve_emulator(small_settings(tmp_path, faults=faults)) as emu:
        with pytest.raises(requests.exceptions.RequestException):
            raw_get(emu, f"/projects/{emu.project_id}").json()
        assert raw_get(emu, f"/projects/{emu.project_id}").status_code == 200


def test_fault_early_token_expiry_and_latency(tmp_path: Path) -> None:
    faults = [
        FaultRule(route="classifications", kind="expire", rate=1.0, limit=1),
        FaultRule(route="*", kind="latency", rate=1.0, latency_s=0.01),
    ]
    with serve_emulator(small_settings(tmp_path, faults=faults)) as emu:
        token = requests.post(
            emu.endpoint + "/oauth/token",
            data={
                "grant_type": "password",
                "client_id": emu.settings.client_id,
                "login": "owner",
                "password": "secret",
            },
        ).json()["access_token"]
        path = f"/classifications/project?project_id={emu.project_id}"
        expired, fine = raw_get(emu, path, token), raw_get(emu, path, token)
    assert expired.status_code == 401 and expired.content == b""
    assert fine.status_code == 200 and fine.json()["classifications"]


def test_faults_are_seeded(tmp_path: Path) -> None:
    patterns = []
    for name in ("a", "b"):
        faults = [FaultRule(route="projects", status=500, rate=0.5)]
        with serve_emulator(small_settings(tmp_path / name, faults=faults)) as emu:
            statuses = [raw_get(emu, f"/projects/{emu.project_id}").status_code for _ in range(20)]
        patterns.append(statuses)
    assert patterns[0] == patterns[1]
    assert {200, 500} == set(patterns[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("classifications:503:0.1", FaultRule("classifications", status=503, rate=0.1)),
        ("*:429:0.05:2", FaultRule("*", status=429, rate=0.05, retry_after_s=2)),
        ("subjects:html502:0.2", FaultRule("subjects", kind="html", status=502, rate=0.2)),
        ("classifications:drop:0.1", FaultRule("classifications", kind="drop", rate=0.1)),
        ("*:latency:1.0:0.25", FaultRule("*", kind="latency", rate=1.0, latency_s=0.25)),
        ("me:expire:0.5", FaultRule("me", kind="expire", rate=0.5)),
    ],
)
def test_parse_fault_rule(text: str, expected: FaultRule) -> None:
    assert parse_fault_rule(text) == expected


@pytest.mark.parametrize("text", ["classifications:503", "x:teapot:0.1", "x:503:2.0", "x:200:0.1"])
def test_parse_fault_rule_rejects_bad_rules(text: str) -> None:
    with pytest.raises(EmulatorConfigError):
        parse_fault_rule(text)


def test_cli_arguments_build_settings(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "--port", "0", "--subjects", "7", "--classifications", "9", "--user", "me:pw",
            "--seed", "4", "--state", str(tmp_path / "s.sqlite3"), "--token-lifetime", "300",
            "--volunteer-rate", "2.5", "--fault", "classifications:503:0.1",
            "--other-user", "guest:pw2", "--answer-model", "random", "--image-size", "32",
        ]
    )  # fmt: skip
    settings = settings_from_args(args)
    assert settings == EmulatorSettings(
        state_path=tmp_path / "s.sqlite3",
        subjects=7,
        classifications=9,
        login="me",
        password="pw",
        seed=4,
        token_lifetime_s=300,
        volunteer_rate_per_s=2.5,
        faults=(FaultRule("classifications", status=503, rate=0.1),),
        other_users=(("guest", "pw2"),),
        answer_model="random",
        image_size=32,
    )
    with pytest.raises(EmulatorConfigError):
        settings_from_args(build_parser().parse_args(["--user", ":nologin"]))
    assert main(["--user", ":nologin"]) == 1
    with pytest.raises(SystemExit) as usage:
        main(["--subjects", "many"])
    assert usage.value.code == 2


def test_cli_serves_the_project(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "panoptes_sync.emulator", "--port", "0", "--subjects", "3",
        "--classifications", "4", "--user", "owner:secret", "--answer-model", "random",
        "--state", str(tmp_path / "cli.sqlite3"),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        found = requests.get(
            endpoint + "/api/projects", params={"slug": "zookeeper/galaxy-zoo"}, headers=API_HEADERS
        ).json()["projects"]
        assert [p["slug"] for p in found] == ["zookeeper/galaxy-zoo"]
    finally:
        process.terminate()
        process.wait(timeout=10)

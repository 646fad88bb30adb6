"""Subjects, subject sets, priorities, retirement and exports on the emulator (panoptes-client)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from panoptes_client import Project, Subject, SubjectSet, Workflow
from panoptes_client.panoptes import PanoptesAPIException
from panoptes_client.set_member_subject import SetMemberSubject
from PIL import Image

from panoptes_sync.emulator import EmulatorServer
from tests.panoptes_sync.emulator_fixtures import *  # noqa: F403 (pytest fixtures)
from tests.panoptes_sync.emulator_fixtures import API_HEADERS


def write_png(path: Path, colour: tuple[int, int, int]) -> bytes:
    Image.new("RGB", (8, 8), colour).save(path, format="PNG")
    return path.read_bytes()


def new_subject(emu: EmulatorServer, image: Path, **metadata: Any) -> Subject:
    subject = Subject()
    subject.links.project = Project(emu.project_id)
    subject.add_location(str(image))
    subject.metadata.update(metadata)
    subject.save()
    return subject


def test_subject_create_uploads_the_image_to_the_emulator(
    emulator: EmulatorServer, owner_client: Any, tmp_path: Path
) -> None:
    data = write_png(tmp_path / "galaxy.png", (200, 10, 10))
    subject = new_subject(emulator, tmp_path / "galaxy.png", iauname="J0843", **{"#Priority": 0.5})
    fetched = Subject.find(subject.id)
    assert fetched.metadata == {"iauname": "J0843", "#priority": 0.5}  # reserved key downcased
    ((mime, url),) = fetched.locations[0].items()
    assert mime == "image/png" and url.startswith(emulator.endpoint)
    assert requests.get(url).content == data
    listed = owner_client.get("/subjects", params={"id": f"{subject.id},{fetched.id}"})[0]
    assert [s["id"] for s in listed["subjects"]] == [subject.id]


def test_upload_url_is_signed_and_expires(emulator: EmulatorServer, owner_client: Any) -> None:
    body = {"subjects": {"locations": ["image/png"], "links": {"project": emulator.project_id}}}
    created, _ = owner_client.post("/subjects", json=body)
    url = created["subjects"][0]["locations"][0]["image/png"]
    assert requests.put(url.replace("sig=", "sig=0"), data=b"x").status_code == 403
    emulator.advance_clock(emulator.settings.upload_url_lifetime_s + 1)
    assert requests.put(url, data=b"x", headers={"x-ms-blob-type": "BlockBlob"}).status_code == 403


def test_subject_update_needs_a_current_if_match(
    emulator: EmulatorServer, owner_client: Any, tmp_path: Path
) -> None:
    write_png(tmp_path / "a.png", (1, 2, 3))
    subject = Subject.find(new_subject(emulator, tmp_path / "a.png").id)
    path = f"/subjects/{subject.id}"
    with pytest.raises(PanoptesAPIException, match="If-Match"):
        owner_client.put(path, json={"subjects": {"metadata": {"a": 1}}})
    old_etag = subject.etag
    subject.metadata["score"] = 3
    subject.save()
    assert Subject.find(subject.id).metadata == {"score": 3}
    with pytest.raises(PanoptesAPIException, match="PreconditionFailed"):
        owner_client.put(path, json={"subjects": {"metadata": {}}}, etag=old_etag)


def test_subject_set_add_remove_and_priority_copy(
    emulator: EmulatorServer, owner_client: Any, tmp_path: Path
) -> None:
    subjects = []
    for index in range(3):
        write_png(tmp_path / f"{index}.png", (index, 0, 0))
        subjects.append(
            new_subject(emulator, tmp_path / f"{index}.png", **{"#priority": 3 - index})
        )
    subject_set = SubjectSet()
    subject_set.links.project = Project(emulator.project_id)
    subject_set.display_name = "AL batch 1"
    subject_set.save()
    subject_set.add(subjects)
    members = list(SetMemberSubject.where(subject_set_id=subject_set.id))
    priorities = {m.raw["links"]["subject"]: m.priority for m in members}
    assert priorities == {s.id: 3 - i for i, s in enumerate(subjects)}
    # A later metadata update does not reach the member's priority (Panoptes issue #4582).
    changed = Subject.find(subjects[0].id)
    changed.metadata["#priority"] = 99
    changed.save()
    member = next(SetMemberSubject.where(subject_set_id=subject_set.id, subject_id=subjects[0].id))
    assert member.priority == 3
    subject_set.remove(subjects[1])
    remaining = {s.id for s in Subject.where(subject_set_id=subject_set.id)}
    assert remaining == {subjects[0].id, subjects[2].id}
    assert SubjectSet.find(subject_set.id).set_member_subjects_count == 2
    with pytest.raises(PanoptesAPIException, match="check the subject set"):
        owner_client.post(
            f"/subject_sets/{subject_set.id}/links/subjects", json={"subjects": ["1"]}
        )


def test_set_member_priority_put_with_if_match(emulator: EmulatorServer, owner_client: Any) -> None:
    member = next(SetMemberSubject.where(page_size=1))
    path = f"/set_member_subjects/{member.id}"
    _, etag = owner_client.get(path)
    body = {"set_member_subjects": {"priority": 0.25}}
    updated, _ = owner_client.put(path, json=body, etag=etag)
    assert updated["set_member_subjects"][0]["priority"] == 0.25
    with pytest.raises(PanoptesAPIException, match="PreconditionFailed"):
        owner_client.put(path, json=body, etag=etag)
    headers = dict(API_HEADERS, Authorization=f"Bearer {owner_client.bearer_token}")
    headers["If-Match"] = etag
    stale = requests.put(emulator.endpoint + "/api" + path, json=body, headers=headers)
    assert stale.status_code == 412
    assert stale.json() == {"errors": [{"message": "JsonApiController::PreconditionFailed"}]}


def test_workflow_links_sets_and_retires_subjects(
    emulator: EmulatorServer, owner_client: Any, tmp_path: Path
) -> None:
    write_png(tmp_path / "r.png", (9, 9, 9))
    subject = new_subject(emulator, tmp_path / "r.png")
    subject_set = SubjectSet()
    subject_set.links.project = Project(emulator.project_id)
    subject_set.display_name = "to link"
    subject_set.save()
    subject_set.add([subject])
    workflow = Workflow(emulator.workflow_id)
    workflow.add_subject_sets([subject_set])
    assert subject_set.id in Workflow.find(emulator.workflow_id).raw["links"]["subject_sets"]
    status = subject.subject_workflow_status(emulator.workflow_id)
    assert status.retired_at is None and status.classifications_count == 0
    workflow.retire_subjects([subject], reason="other")
    status = subject.subject_workflow_status(emulator.workflow_id)
    assert status.retirement_reason == "other" and status.retired_at
    workflow.unretire_subjects([subject])
    assert subject.subject_workflow_status(emulator.workflow_id).retired_at is None
    with pytest.raises(PanoptesAPIException, match="retirement_reason"):
        workflow.retire_subjects([subject], reason="bored")
    workflow.remove_subject_sets([subject_set])
    assert subject_set.id not in Workflow.find(emulator.workflow_id).raw["links"]["subject_sets"]


def test_classification_export_csv(
    emulator: EmulatorServer, owner_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client's 2 s polling sleep advances the emulator's clock instead of waiting.
    monkeypatch.setattr("panoptes_client.exportable.time.sleep", emulator.advance_clock)
    project = Project(emulator.project_id)
    with pytest.raises(PanoptesAPIException, match="No classifications_export exists"):
        project.describe_export("classifications")
    export = project.get_export("classifications", generate=True, wait=True)
    assert export.headers["Content-Encoding"] == "gzip"
    rows = list(export.csv_dictreader())
    assert [int(r["classification_id"]) for r in rows] == emulator.classification_ids()
    assert list(rows[0]) == [
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
    ]
    first = rows[0]
    annotations = json.loads(first["annotations"])
    assert annotations[0]["task"] == "T0"
    assert annotations[0]["task_label"].startswith("Is the galaxy simply smooth")
    assert annotations[0]["value"] in {"Smooth", "Features or Disk", "Star or Artifact"}
    assert first["created_at"].endswith(" UTC") and first["workflow_version"] == "66.425"
    assert first["subject_ids"] in json.loads(first["subject_data"])
    state = project.describe_export("classifications")["media"][0]["metadata"]["state"]
    assert state == "ready"


def test_second_export_within_a_day_is_silently_cancelled(
    emulator: EmulatorServer, owner_client: Any
) -> None:
    project = Project(emulator.project_id)
    project.generate_export("classifications")
    emulator.advance_clock(emulator.settings.export_delay_s + 1)
    assert project.describe_export("classifications")["media"][0]["metadata"]["state"] == "ready"
    project.generate_export("classifications")
    emulator.advance_clock(3600)
    media = project.describe_export("classifications")["media"][0]
    assert media["metadata"]["state"] == "creating"


def test_export_download_link_expires(emulator: EmulatorServer, owner_client: Any) -> None:
    project = Project(emulator.project_id)
    project.generate_export("classifications")
    emulator.advance_clock(emulator.settings.export_delay_s + 1)
    src = project.describe_export("classifications")["media"][0]["src"]
    text = requests.get(src).text
    assert next(csv.reader(io.StringIO(text)))[0] == "classification_id"
    emulator.advance_clock(emulator.settings.upload_url_lifetime_s + 1)
    assert requests.get(src).status_code == 403

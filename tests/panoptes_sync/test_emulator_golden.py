"""The emulator's answers against real Panoptes traffic recorded in ../shared (golden fixtures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

import panoptes_sync.emulator as emulator_package
from panoptes_sync.emulator import EmulatorServer
from tests.conftest import SHARED
from tests.panoptes_sync.emulator_fixtures import *  # noqa: F403 (pytest fixtures)
from tests.panoptes_sync.emulator_fixtures import API_HEADERS

RECORDED = SHARED / "reference" / "panoptes_recorded"
#: Recorded attributes the emulator leaves out on purpose (deprecated or unused by the client).
NOT_EMULATED = {"expert_subject_sets", "workflows.expert_subject_set"}


def recorded(relative: str, index: int = 0) -> dict[str, Any]:
    if not RECORDED.is_dir():
        pytest.skip(f"recorded Panoptes traffic not found at {RECORDED} (../shared is absent)")
    yaml = pytest.importorskip("yaml")
    interaction = yaml.safe_load((RECORDED / relative).read_text())["http_interactions"][index]
    response = interaction["response"]
    body = response["body"]["string"]
    return {
        "status": response["status"]["code"],
        "headers": {key.lower(): value[0] for key, value in response["headers"].items()},
        "body": json.loads(body) if body else None,
    }


def token_headers(emu: EmulatorServer) -> dict[str, str]:
    token = requests.post(
        emu.endpoint + "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": emu.settings.client_id,
            "login": emu.settings.login,
            "password": emu.settings.password,
        },
    ).json()["access_token"]
    return dict(API_HEADERS, Authorization=f"Bearer {token}")


def assert_same_shape(golden: dict[str, Any], response: requests.Response, kind: str) -> None:
    assert response.status_code == golden["status"]
    assert response.headers["Content-Type"] == golden["headers"]["content-type"]
    body, expected = response.json(), golden["body"]
    assert set(body) == set(expected)
    mine, theirs = body[kind][0], expected[kind][0]
    assert set(theirs) - set(mine) == set()
    assert set(theirs.get("links", {})) - set(mine.get("links", {})) - NOT_EMULATED == set()
    assert set(expected["meta"][kind]) <= set(body["meta"][kind])
    assert set(expected.get("links", {})) - set(body.get("links", {})) - NOT_EMULATED == set()


@pytest.mark.parametrize(
    ("relative", "path", "kind"),
    [
        (
            "Panoptes_Client_Workflows/_workflow/returns_a_workflow_given_the_id.yml",
            "/workflows/{workflow_id}",
            "workflows",
        ),
        (
            "Panoptes_Client_Subjects/_subjects/returns_a_list_of_subjects_for_a_given_subject_set_id.yml",
            "/subjects",
            "subjects",
        ),
        (
            "Panoptes_Client_Projects/unauthenticated/fetches_a_project_by_id.yml",
            "/projects/{project_id}",
            "projects",
        ),
    ],
)
def test_reads_have_the_recorded_shape(
    emulator: EmulatorServer, relative: str, path: str, kind: str
) -> None:
    golden = recorded(relative)
    url = path.format(workflow_id=emulator.workflow_id, project_id=emulator.project_id)
    response = requests.get(emulator.endpoint + "/api" + url, headers=API_HEADERS)
    assert_same_shape(golden, response, kind)
    assert "ETag" in response.headers


def test_me_has_the_recorded_shape_with_and_without_a_token(emulator: EmulatorServer) -> None:
    golden = recorded(
        "Panoptes_Client_Me/_me/with_access_token_auth/returns_information_about_the_user.yml"
    )
    response = requests.get(emulator.endpoint + "/api/me", headers=token_headers(emulator))
    assert_same_shape(golden, response, "users")
    anonymous = recorded(
        "Panoptes_Client_Me/_me/unauthenticated/raises_when_client_is_not_logged_in.yml"
    )
    response = requests.get(emulator.endpoint + "/api/me", headers=API_HEADERS)
    assert response.status_code == anonymous["status"] == 401
    assert response.content == b""
    assert response.headers["WWW-Authenticate"] == anonymous["headers"]["www-authenticate"]


def test_creates_have_the_recorded_shape(emulator: EmulatorServer) -> None:
    headers = token_headers(emulator)
    golden = recorded("Panoptes_Client_SubjectSets/_create_subject_set/creates_a_subject_set.yml")
    body = {"subject_sets": {"display_name": "golden", "links": {"project": emulator.project_id}}}
    response = requests.post(emulator.endpoint + "/api/subject_sets", json=body, headers=headers)
    assert_same_shape(golden, response, "subject_sets")
    assert response.headers["Location"].endswith(
        f"/api/subject_sets/{response.json()['subject_sets'][0]['id']}"
    )
    golden = recorded(
        "Panoptes_Client_Projects/_create_classifications_export/returns_the_export_medium_hash.yml"
    )
    response = requests.post(
        f"{emulator.endpoint}/api/projects/{emulator.project_id}/classifications_export",
        json={"media": {"content_type": "text/csv"}},
        headers=headers,
    )
    assert_same_shape(golden, response, "media")
    assert response.json()["media"][0]["metadata"]["state"] == "creating"


def test_package_all_matches_public_names() -> None:
    public = {
        name
        for name in vars(emulator_package)
        if not name.startswith("_") and not isinstance(getattr(emulator_package, name), type(json))
    }
    assert set(emulator_package.__all__) == public
    assert Path(emulator_package.__file__).name == "__init__.py"

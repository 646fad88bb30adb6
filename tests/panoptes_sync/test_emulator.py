"""The emulator's auth, projects, workflows and classification paging, through panoptes-client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from panoptes_client import Classification, Panoptes, Project, Workflow
from panoptes_client.panoptes import PanoptesAPIException

from panoptes_sync.emulator import EmulatorServer, EmulatorSettings, serve_emulator
from tests.panoptes_sync.emulator_fixtures import *  # noqa: F403 (pytest fixtures)
from tests.panoptes_sync.emulator_fixtures import API_HEADERS, reset_panoptes_client, small_settings


def token_for(emu: EmulatorServer) -> str:
    """A bearer token via the password grant with explicit credentials (Doorkeeper allows it)."""
    response = requests.post(
        emu.endpoint + "/oauth/token",
        data={
            "grant_type": "password",
            "client_id": emu.settings.client_id,
            "login": emu.settings.login,
            "password": emu.settings.password,
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def api(emu: EmulatorServer, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    headers = dict(API_HEADERS, **kw.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, emu.endpoint + "/api" + path, headers=headers, **kw)


def test_connect_logs_in_with_csrf_and_session(emulator: EmulatorServer, owner_client: Any) -> None:
    me, _ = owner_client.get("/me")
    assert owner_client.logged_in
    assert int(me["users"][0]["id"]) == owner_client.logged_in_user_id
    assert me["users"][0]["login"] == "owner"
    assert emulator.counters["grant:password"] == 1


def test_wrong_password_and_missing_csrf_are_refused(emulator: EmulatorServer) -> None:
    reset_panoptes_client()
    with pytest.raises(PanoptesAPIException, match="Invalid login or password"):
        Panoptes.connect(username="owner", password="wrong", endpoint=emulator.endpoint)
    session = requests.Session()
    session.get(emulator.endpoint + "/users/sign_in", headers={"Accept": "application/json"})
    body = {"authenticity_token": "forged", "user": {"login": "owner", "password": "secret"}}
    response = session.post(emulator.endpoint + "/users/sign_in", json=body)
    assert response.status_code == 422
    reset_panoptes_client()


def test_oauth_token_needs_the_signed_in_session(emulator: EmulatorServer) -> None:
    form = {"grant_type": "password", "client_id": emulator.settings.client_id}
    response = requests.post(emulator.endpoint + "/oauth/token", data=form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("lifetime", [60])
def test_short_tokens_are_refreshed_and_refresh_tokens_are_single_use(
    tmp_path: Path, lifetime: int
) -> None:
    # A lifetime under the client's 2-minute buffer makes it refresh before every request.
    with serve_emulator(small_settings(tmp_path, token_lifetime_s=lifetime)) as emu:
        reset_panoptes_client()
        client = Panoptes.connect(username="owner", password="secret", endpoint=emu.endpoint)
        first_refresh = None
        for _ in range(3):
            assert Project.find(emu.project_id).slug == emu.project_slug
            first_refresh = first_refresh or client.refresh_token
        assert emu.counters["grant:password"] == 1
        assert emu.counters["grant:refresh_token"] >= 2
        reused = requests.post(
            emu.endpoint + "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": first_refresh,
                "client_id": emu.settings.client_id,
            },
        )
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        reset_panoptes_client()


def test_expired_token_gives_the_empty_401_and_silent_empty_iteration(
    emulator: EmulatorServer, owner_client: Any
) -> None:
    listed = Classification.where(scope="project", project_id=emulator.project_id, last_id=0)
    assert next(listed) is not None
    token = token_for(emulator)
    emulator.advance_clock(emulator.settings.token_lifetime_s + 1)
    response = api(
        emulator, "GET", f"/classifications/project?project_id={emulator.project_id}", token
    )
    assert response.status_code == 401
    assert response.content == b""
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    # The client still believes its token is valid, so it silently yields nothing.
    assert list(Classification.where(scope="project", project_id=emulator.project_id)) == []
    with pytest.raises(PanoptesAPIException, match="must be logged in"):
        owner_client.post("/subject_sets", json={"subject_sets": {"display_name": "x"}})


def test_client_credentials_grant_acts_as_the_application_owner(emulator: EmulatorServer) -> None:
    reset_panoptes_client()
    client = Panoptes(endpoint=emulator.endpoint, client_secret=emulator.settings.client_secret)
    with client:
        me, _ = client.get("/me")
    assert me["users"][0]["login"] == emulator.settings.login
    assert emulator.counters["grant:client_credentials"] == 1
    reset_panoptes_client()


def test_project_and_workflow_find(emulator: EmulatorServer, owner_client: Any) -> None:
    by_id = Project.find(emulator.project_id)
    by_slug = Project.find(slug=emulator.project_slug)
    assert by_id.id == by_slug.id == str(emulator.project_id)
    assert by_slug.raw["links"]["workflows"] == [str(emulator.workflow_id)]
    workflow = Workflow.find(emulator.workflow_id)
    assert workflow.version == "66.425"
    assert workflow.first_task == "T0"
    assert {f"T{i}" for i in range(12) if i != 9} == set(workflow.tasks)
    assert [w.id for w in Workflow.where(project_id=emulator.project_id)] == [workflow.id]
    assert list(Project.where(slug="nobody/nothing")) == []


def test_show_etag_is_the_resource_etag_and_index_etag_is_not(emulator: EmulatorServer) -> None:
    show = api(emulator, "GET", f"/workflows/{emulator.workflow_id}")
    index = api(emulator, "GET", f"/workflows?project_id={emulator.project_id}")
    assert show.headers["ETag"] != index.headers["ETag"]
    meta = show.json()["meta"]["workflows"]
    assert meta["first_href"] == f"/workflows?id={emulator.workflow_id}"
    assert show.headers["Content-Type"] == "application/vnd.api+json; version=1; charset=utf-8"


def test_workflow_put_needs_if_match_and_guards_live_structure(
    emulator: EmulatorServer,
) -> None:
    token = token_for(emulator)
    path = f"/workflows/{emulator.workflow_id}"
    etag = api(emulator, "GET", path).headers["ETag"]
    prioritize = {"workflows": {"prioritized": True}}
    assert api(emulator, "PUT", path, token, json=prioritize).status_code == 428
    live = api(emulator, "PUT", path, token, json=prioritize, headers={"If-Match": etag})
    assert live.status_code == 403
    deactivate = {"workflows": {"active": False}}
    assert api(emulator, "PUT", path, token, json=deactivate, headers={"If-Match": etag}).ok
    stale = api(emulator, "PUT", path, token, json=prioritize, headers={"If-Match": etag})
    assert stale.status_code == 412
    fresh = api(emulator, "GET", path).headers["ETag"]
    updated = api(emulator, "PUT", path, token, json=prioritize, headers={"If-Match": fresh})
    assert updated.ok and "ETag" not in updated.headers
    workflow = updated.json()["workflows"][0]
    assert workflow["prioritized"] is True and workflow["version"] == "67.425"
    versions = api(emulator, "GET", f"/workflow_versions?workflow_id={emulator.workflow_id}", token)
    numbers = [(v["major_number"], v["minor_number"]) for v in versions.json()["workflow_versions"]]
    assert numbers == [(66, 425), (67, 425)]


def test_project_classifications_paged_to_the_end(
    emulator: EmulatorServer, owner_client: Any
) -> None:
    urls: list[str] = []
    owner_client.session.hooks["response"].append(lambda r, *a, **k: urls.append(r.request.url))
    listed = Classification.where(
        scope="project", project_id=emulator.project_id, last_id=0, page_size=25
    )
    ids = [int(c.id) for c in listed]
    assert ids == emulator.classification_ids()
    assert len(ids) == emulator.settings.classifications
    pages = [u for u in urls if "/classifications/project" in u]
    assert len(pages) == -(-len(ids) // 25) + 1  # N pages cost N + 1 requests
    assert f"last_id={ids[-1]}" in pages[-1]


def test_keyset_paging_meta_and_limits(emulator: EmulatorServer) -> None:
    token = token_for(emulator)
    project = emulator.project_id
    ids = emulator.classification_ids()
    base = f"/classifications/project?project_id={project}"
    page = api(emulator, "GET", f"{base}&last_id={ids[4]}&page_size=25", token).json()
    meta = page["meta"]["classifications"]
    got = [int(c["id"]) for c in page["classifications"]]
    assert got == ids[5:30]
    assert meta["count"] == 0 and meta["page_count"] == 0
    assert meta["next_href"] == (
        f"/classifications/project?last_id={got[-1]}&page_size=25&project_id={project}"
    )
    default = api(emulator, "GET", f"{base}&last_id=0&page_size=20", token).json()
    next_href = default["meta"]["classifications"]["next_href"]
    assert "page_size" not in next_href
    big = api(emulator, "GET", f"{base}&last_id=0&page_size=500", token).json()
    assert len(big["classifications"]) == min(100, len(ids))
    end = api(emulator, "GET", f"{base}&last_id={ids[-1]}", token).json()
    assert end["classifications"] == [] and end["meta"]["classifications"]["next_href"] is None
    assert api(emulator, "GET", f"{base}&page_size=0", token).status_code == 422
    no_project = api(emulator, "GET", "/classifications/project?last_id=3", token)
    assert no_project.status_code == 422
    assert no_project.json() == {
        "errors": [{"message": "Project ID required if last_id is included"}]
    }
    first = page["classifications"][0]
    assert first["metadata"]["workflow_version"] == "66.425"
    assert first["links"]["workflow"] == str(emulator.workflow_id)
    assert first["annotations"][0]["task"] == "T0"


def test_api_requires_the_json_api_accept_header(emulator: EmulatorServer) -> None:
    response = requests.get(f"{emulator.endpoint}/api/projects/{emulator.project_id}")
    assert response.status_code == 404


def test_every_error_has_the_canonical_shape(emulator: EmulatorServer) -> None:
    token = token_for(emulator)
    workflow = f"/workflows/{emulator.workflow_id}"
    etag = api(emulator, "GET", workflow).headers["ETag"]
    responses = {
        "404": api(emulator, "GET", "/projects/999999"),
        "404-route": api(emulator, "GET", "/no_such_things"),
        "428": api(emulator, "PUT", workflow, token, json={"workflows": {"active": True}}),
        "412": api(
            emulator,
            "PUT",
            workflow,
            token,
            json={"workflows": {"display_name": "x"}},
            headers={"If-Match": '"stale"'},
        ),
        "422": api(emulator, "GET", "/classifications/project?last_id=1", token),
        "401": api(emulator, "POST", "/subject_sets", json={"subject_sets": {}}),
        "403": api(
            emulator,
            "PUT",
            workflow,
            token,
            json={"workflows": {"prioritized": True}},
            headers={"If-Match": etag},
        ),
        "405": api(emulator, "PATCH", f"/projects/{emulator.project_id}", token),
    }
    for name, response in responses.items():
        assert str(response.status_code) == name.split("-")[0], name
        body = response.json()
        assert set(body) == {"errors"}, name
        assert len(body["errors"]) == 1 and set(body["errors"][0]) == {"message"}, name
        assert isinstance(body["errors"][0]["message"], str) and body["errors"][0]["message"]
        assert response.headers["Content-Type"].startswith("application/vnd.api+json")


def test_state_survives_a_restart(tmp_path: Path) -> None:
    settings: EmulatorSettings = small_settings(tmp_path)
    with serve_emulator(settings) as first:
        first.run_volunteers(5)
        before = first.classification_ids()
        token = token_for(first)
    with serve_emulator(settings) as second:
        assert second.classification_ids() == before
        response = api(second, "GET", "/me", token)
        assert response.status_code == 200
        assert second.run_volunteers(1)[0] > before[-1]


def test_non_collaborator_reads_are_empty_and_writes_refused(tmp_path: Path) -> None:
    settings = small_settings(tmp_path, other_users=(("visitor", "pw"),))
    with serve_emulator(settings) as emu:
        reset_panoptes_client()
        client = Panoptes.connect(username="visitor", password="pw", endpoint=emu.endpoint)
        listed = Classification.where(scope="project", project_id=emu.project_id, last_id=0)
        assert list(listed) == []
        assert Project.find(emu.project_id).slug == emu.project_slug
        with pytest.raises(PanoptesAPIException, match="Could not find project"):
            Project(emu.project_id).describe_export("classifications")
        body = {"subject_sets": {"display_name": "x", "links": {"project": emu.project_id}}}
        with pytest.raises(PanoptesAPIException, match="not permitted"):
            client.post("/subject_sets", json=body)
        reset_panoptes_client()


def test_every_setting_is_documented() -> None:
    import dataclasses

    from panoptes_sync.emulator import FaultRule

    for settings_class in (EmulatorSettings, FaultRule):
        doc = settings_class.__doc__ or ""
        for field in dataclasses.fields(settings_class):
            assert f"    {field.name}:" in doc, f"{settings_class.__name__}.{field.name}"


def test_classification_create_counts_towards_retirement(
    emulator: EmulatorServer, owner_client: Any
) -> None:
    subject_id = emulator.query("SELECT id FROM subjects ORDER BY id LIMIT 1")[0]["id"]
    before = emulator.query(
        "SELECT classifications_count FROM subject_workflow_statuses WHERE subject_id = ?",
        (subject_id,),
    )[0]["classifications_count"]
    metadata = {
        "started_at": "2024-01-01T00:00:00.000Z",
        "finished_at": "2024-01-01T00:00:10.000Z",
        "user_language": "en",
        "user_agent": "test",
    }
    links = {
        "project": str(emulator.project_id),
        "workflow": str(emulator.workflow_id),
        "subjects": [str(subject_id)],
    }
    body = {"annotations": [{"task": "T0", "value": 2}], "metadata": metadata, "links": links}
    created, _ = owner_client.post("/classifications", json={"classifications": body})
    new = created["classifications"][0]
    assert int(new["id"]) == emulator.classification_ids()[-1]
    assert new["metadata"]["workflow_version"] == "66.425"
    after = emulator.query(
        "SELECT classifications_count FROM subject_workflow_statuses WHERE subject_id = ?",
        (subject_id,),
    )[0]["classifications_count"]
    assert after == before + 1
    del metadata["user_agent"]
    with pytest.raises(PanoptesAPIException, match="user_agent"):
        owner_client.post("/classifications", json={"classifications": body})

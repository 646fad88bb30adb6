"""ResilientPanoptes against a scripted stdlib HTTP stub: retries, 401 re-login, typed errors."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from panoptes_client import Classification

from panoptes_sync.client import (
    PanoptesCredentials,
    ResilientPanoptes,
    connect_panoptes,
    credentials_from_env,
)
from panoptes_sync.errors import (
    PanoptesAuthError,
    PanoptesNotFoundError,
    PanoptesPreconditionError,
    PanoptesRequestError,
    PanoptesRetriesExhaustedError,
)
from panoptes_sync.retry import RetryPolicy

PASSWORD = "s3cret-pw"


class Stub:
    """Scripted Panoptes: each /api path pops its next behaviour from a queue, else answers 200."""

    def __init__(self) -> None:
        self.script: dict[str, list[Any]] = {}
        self.log: list[tuple[str, str]] = []
        self.sign_ins = 0
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()

    def next_behaviour(self, path: str) -> Any:
        queue = self.script.get(path)
        return queue.pop(0) if queue else "ok"


def make_handler(stub: Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(payload).encode(), headers)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def handle_any(self) -> None:
            body = self._body()
            path = self.path.split("?", 1)[0]
            stub.log.append((self.command, self.path))
            if path == "/users/sign_in" and self.command == "GET":
                return self._json(200, {"login": "/users/sign_in"}, {"X-CSRF-Token": "csrf"})
            if path == "/users/sign_in":
                creds = json.loads(body)["user"]
                if creds["password"] != PASSWORD:
                    return self._json(401, {"error": "Invalid login or password."})
                stub.sign_ins += 1
                return self._json(200, {"users": [{"id": "7", "login": creds["login"]}]})
            if path == "/oauth/token":
                stub.tokens_issued += 1
                token = f"token-{stub.tokens_issued}"
                stub.valid_tokens.add(token)
                return self._json(
                    200,
                    {
                        "access_token": token,
                        "expires_in": 7200,
                        "refresh_token": f"r{stub.tokens_issued}",
                    },
                )
            behaviour = stub.next_behaviour(path)
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if behaviour == "expire":
                stub.valid_tokens.discard(token)
            if path.startswith("/api/classifications") and token not in stub.valid_tokens:
                return self._send(401, b"", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
            if isinstance(behaviour, tuple) and behaviour[0] == "status":
                status, headers = behaviour[1], behaviour[2] if len(behaviour) > 2 else {}
                if "html" in headers:
                    return self._send(
                        status, b"<html>Bad gateway</html>", {"Content-Type": "text/html"}
                    )
                return self._json(status, {"errors": [{"message": f"injected {status}"}]}, headers)
            if behaviour == "drop":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b'{"classif')
                self.wfile.flush()
                self.close_connection = True
                return None
            if behaviour == "slow":
                time.sleep(0.6)
            if path == "/api/classifications/project":
                rows = [{"id": "11", "links": {"project": "1", "workflow": "2", "subjects": ["3"]}}]
                return self._json(
                    200, {"classifications": rows, "meta": {"classifications": {"next_href": None}}}
                )
            return self._json(
                200 if self.command != "POST" else 201,
                {"subjects": [{"id": "5"}]},
                {"ETag": '"abc"'},
            )

        do_GET = do_POST = do_PUT = do_DELETE = handle_any

    return Handler


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    state = Stub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def make_client(endpoint: str, sleeps: list[float], **policy: Any) -> ResilientPanoptes:
    settings = {"max_attempts": 4, "base_delay_s": 0.01, "timeout_s": 2.0, **policy}
    return connect_panoptes(
        endpoint,
        PanoptesCredentials(username="owner", password=PASSWORD),
        policy=RetryPolicy(**settings),
        sleep=sleeps.append,
        rng=random.Random(0),
    )


def test_get_retries_5xx_and_html_then_succeeds(stub: tuple[Stub, str]) -> None:
    state, endpoint = stub
    state.script["/api/subjects/5"] = [("status", 503), ("status", 502, {"html": "1"})]
    sleeps: list[float] = []
    client = make_client(endpoint, sleeps)
    body, etag = client.get("/subjects/5")
    assert body["subjects"][0]["id"] == "5"
    assert etag == '"abc"'
    assert len(sleeps) == 2
    assert sleeps[1] > 0


def test_429_honours_retry_after(stub: tuple[Stub, str]) -> None:
    state, endpoint = stub
    state.script["/api/subjects/5"] = [("status", 429, {"Retry-After": "3"})]
    sleeps: list[float] = []
    client = make_client(endpoint, sleeps)
    client.get("/subjects/5")
    assert sleeps == [3.0]


def test_backoff_is_bounded_and_exhaustion_raises_typed_error(stub: tuple[Stub, str]) -> None:
    state, endpoint = stub
    state.script["/api/subjects/5"] = [("status", 500)] * 10
    sleeps: list[float] = []
    client = make_client(endpoint, sleeps, max_attempts=5, base_delay_s=1.0, max_delay_s=2.5)
    with pytest.raises(PanoptesRetriesExhaustedError) as info:
        client.get("/subjects/5")
    assert info.value.status == 500
    assert info.value.url == f"{endpoint}/api/subjects/5"
    assert "injected 500" in info.value.body
    assert len(sleeps) == 4
    assert all(0 < s <= 2.5 for s in sleeps)


def test_dropped_connection_and_timeout_are_retried_for_gets(stub: tuple[Stub, str]) -> None:
    state, endpoint = stub
    state.script["/api/subjects/5"] = ["drop", "slow"]
    sleeps: list[float] = []
    client = make_client(endpoint, sleeps, timeout_s=0.3)
    body, _ = client.get("/subjects/5")
    assert body["subjects"][0]["id"] == "5"
    assert len(sleeps) == 2


def test_non_idempotent_post_is_not_retried_on_500(stub: tuple[Stub, str]) -> None:
    state, endpoint = stub
    state.script["/api/subjects"] = [("status", 500), ("status", 500)]
    sleeps: list[float] = []
    client = make_client(endpoint, sleeps)
    with pytest.raises(PanoptesRequestError) as info:
        client.post("/subjects", json={"subjects": {}})
    assert info.value.status == 500
    assert [m for m, p in state.log if p == "/api/subjects"] == ["POST"]


def test_non_idempotent_post_is_retried_on_429(stub: tuple[Stub, str]) -> None:
    state, endpoint = stub
    state.script["/api/subjects"] = [("status", 429, {"Retry-After": "0"})]
    client = make_client(endpoint, [])
    body, _ = client.post("/subjects", json={"subjects": {}})
    assert body["subjects"][0]["id"] == "5"
    assert [m for m, p in state.log if p == "/api/subjects"] == ["POST", "POST"]


def test_4xx_errors_are_typed_and_carry_status_url_body(stub: tuple[Stub, str]) -> None:
    state, endpoint = stub
    state.script["/api/subjects/9"] = [("status", 404)]
    state.script["/api/subjects/5"] = [("status", 412)]
    client = make_client(endpoint, [])
    with pytest.raises(PanoptesNotFoundError) as info:
        client.get("/subjects/9")
    assert (info.value.status, info.value.method) == (404, "GET")
    assert "injected 404" in str(info.value)
    with pytest.raises(PanoptesPreconditionError):
        client.put("/subjects/5", json={"subjects": {}}, etag='"stale"')


def test_silent_empty_401_triggers_relogin_not_empty_page(stub: tuple[Stub, str]) -> None:
    state, endpoint = stub
    client = make_client(endpoint, [])
    with client:
        first = list(Classification.where(scope="project", project_id=1, last_id=0))
        state.script["/api/classifications/project"] = ["expire"]
        second = Classification.where(scope="project", project_id=1, last_id=0).object_list
    assert [c.id for c in first] == ["11"]
    assert [c["id"] for c in second] == ["11"]
    assert state.sign_ins == 2
    assert state.tokens_issued == 2


def test_wrong_password_raises_auth_error_without_leaking_it(
    stub: tuple[Stub, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, endpoint = stub
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PanoptesAuthError) as info:
        connect_panoptes(endpoint, PanoptesCredentials(username="owner", password="wrong-pw"))
    assert info.value.status == 401
    assert "wrong-pw" not in str(info.value)
    assert "wrong-pw" not in caplog.text


def test_credentials_come_from_env_and_are_hidden() -> None:
    creds = credentials_from_env({"PANOPTES_USERNAME": "u", "PANOPTES_PASSWORD": "pw-123"})
    assert creds.username == "u"
    assert creds.password == "pw-123"
    assert "pw-123" not in repr(creds)
    assert credentials_from_env({}).username is None


def test_request_count_includes_retries(stub: tuple[Stub, str]) -> None:
    state, endpoint = stub
    client = make_client(endpoint, [])
    before = client.request_count
    state.script["/api/subjects/5"] = [("status", 503)]
    client.get("/subjects/5")
    assert client.request_count - before == 3  # token, failed GET, retried GET


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="timeout_s"):
        RetryPolicy(timeout_s=0)

"""The Google Cloud HTTP function served by functions-framework (a subprocess, as
``functions-framework --target http --source main.py``) against the Firestore emulator, driven
over real sockets and held to openapi.yaml."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.base import ServerProcess, free_port
from emulators.firestore import FirestoreEmulator
from tests.http_client import HttpClient, HttpResult
from tests.openapi import assert_response_conforms

pytestmark = [pytest.mark.emulator("firestore"), pytest.mark.slow]
MESSAGES = "/channels/london/messages"


class CheckedClient(HttpClient):
    def request(self, method: str, path: str, **kw: Any) -> HttpResult:  # type: ignore[override]
        result = super().request(method, path, **kw)
        assert_response_conforms(method, path, result.status, result.headers, result.body)
        return result


def functions_framework(name: str, env: dict[str, str]) -> ServerProcess:
    port = free_port()
    argv = [sys.executable, "-m", "functions_framework", "--target", "http", "--source", "main.py"]
    argv += ["--host", "127.0.0.1", "--port", str(port)]
    return ServerProcess(name, argv, port=port, env={"OVERCAST_REGION": "europe-west1", **env})


@pytest.fixture(scope="module")
def server(firestore_emulator: FirestoreEmulator) -> Iterator[ServerProcess]:
    with functions_framework("functions-framework-gcp", firestore_emulator.env()) as process:
        yield process


@pytest.fixture
def client(server: ServerProcess, firestore_emulator: FirestoreEmulator) -> CheckedClient:
    firestore_emulator.reset()
    return CheckedClient(server.url)


def test_walk_the_whole_api(client: CheckedClient) -> None:
    key = {"Idempotency-Key": "walk-1"}
    first = client.request("POST", MESSAGES, json_body={"author": "ada", "text": "Hello London"}, headers=key)
    again = client.request("POST", MESSAGES, json_body={"author": "ada", "text": "Hello London"}, headers=key)
    assert first.status == again.status == 201 and first.json()["id"] == again.json()["id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert first.json()["served_by"] == {"provider": "gcp", "region": "europe-west1"}
    for i in range(4):
        assert client.request("POST", MESSAGES, json_body={"author": "bob", "text": f"n{i}"}).status == 201
    seen, cursor = [], None
    while True:
        page = client.request("GET", MESSAGES, query={"limit": "2", **({"cursor": cursor} if cursor else {})}).json()
        seen += [m["id"] for m in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 5 and seen[-1] == first.json()["id"]
    message_path = f"{MESSAGES}/{first.json()['id']}"
    assert client.request("GET", message_path).json()["text"] == "Hello London"
    assert client.request("DELETE", message_path).status == 204
    assert client.request("GET", message_path).status == 404
    assert first.json()["id"] not in [m["id"] for m in client.request("GET", MESSAGES).json()["items"]]
    deep = client.request("GET", "/health/deep")
    assert deep.status == 200 and deep.json()["store"] == "firestore"


def test_same_key_with_other_text_is_rejected(client: CheckedClient) -> None:
    key = {"Idempotency-Key": "reuse-1"}
    assert client.request("POST", MESSAGES, json_body={"author": "ada", "text": "one"}, headers=key).status == 201
    reused = client.request("POST", MESSAGES, json_body={"author": "ada", "text": "two"}, headers=key)
    assert reused.status == 422 and reused.json()["error"]["code"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", MESSAGES, b"{not json", 400),
        ("POST", MESSAGES, b'{"author": "ada"}', 400),
        ("GET", "/channels/London!/messages", None, 400),
        ("GET", "/nowhere", None, 404),
        ("PUT", MESSAGES, b"{}", 405),
    ],
)
def test_bad_requests_get_json_errors(
    client: CheckedClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    # Routes and methods outside openapi.yaml are checked for the error shape only.
    unchecked = status in (404, 405)
    result = (HttpClient(f"http://{client.host}:{client.port}") if unchecked else client).request(
        method, path, body=body
    )
    assert result.status == status
    assert set(result.json()["error"]) >= {"code", "message"}
    assert b"Traceback" not in result.body


def test_store_outage_is_a_prompt_503_and_shallow_health_stays_up() -> None:
    # An emulator address where nothing listens: the function starts (no network at import or
    # build), answers /health, and fails store calls fast with 503 + Retry-After.
    env = {"FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{free_port()}", "GOOGLE_CLOUD_PROJECT": "demo-overcast"}
    env["OVERCAST_FIRESTORE_TIMEOUT_MS"] = "1000"
    with functions_framework("functions-framework-gcp-down", env) as process:
        client = CheckedClient(process.url)
        assert client.request("GET", "/health").status == 200
        started = time.monotonic()
        deep = client.request("GET", "/health/deep")
        assert deep.status == 503 and int(deep.headers["retry-after"]) >= 1
        assert time.monotonic() - started < 2.0  # Route 53's health checker waits 2 s
        started = time.monotonic()
        post = client.request("POST", MESSAGES, json_body={"author": "ada", "text": "lost?"})
        assert time.monotonic() - started < 3.0
        assert post.status == 503 and post.json()["error"]["code"].startswith(("unavailable", "store_"))


def test_misconfiguration_is_a_503_that_names_the_variable() -> None:
    env = {"FIRESTORE_EMULATOR_HOST": "127.0.0.1:9", "OVERCAST_FIRESTORE_TIMEOUT_MS": "soon"}
    with functions_framework("functions-framework-gcp-misconfigured", env) as process:
        result = CheckedClient(process.url).request("GET", "/health/deep")
        assert result.status == 503 and result.json()["error"]["code"] == "misconfigured"
        assert "OVERCAST_FIRESTORE_TIMEOUT_MS" in result.json()["error"]["message"]

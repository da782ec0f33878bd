"""OpenWhisk end to end over real sockets: runtime.openwhisk (the web action gateway's stand-in) in
its own process in front of handlers.openwhisk, on pouchdb-server (CouchDB protocol); the recorded
web action and Cloudant payloads through the handler; outages and misconfiguration as 503s; a
failed replication push as an error result that succeeds once the peer is back."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import handlers.openwhisk as action
from core.settings import Settings
from emulators.base import ServerProcess, free_port
from emulators.pouchdb import PouchDBServer
from tests.events import load_event
from tests.fixtures.oidc import AUTH_OFF
from tests.openapi import assert_response_conforms

pytestmark = pytest.mark.emulator("pouchdb")
HOST = "127.0.0.6"
SECRET = "pair-secret-for-tests-only"


def call(base: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("content-type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, head, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, head, raw = exc.code, dict(exc.headers), exc.read()
    head = {k.lower(): v for k, v in head.items()}
    assert_response_conforms(method, path.split("?", 1)[0], status, head, raw)
    return status, head, (json.loads(raw) if raw else None)


@pytest.fixture(scope="module")
def runtime(pouchdb_server: PouchDBServer) -> Iterator[str]:
    database = f"openwhisk-e2e-{os.getpid()}"
    port = free_port(HOST)
    argv = [sys.executable, "-m", "runtime.openwhisk", "--host", HOST, "--port", str(port)]
    argv += ["--couch-url", pouchdb_server.url, "--db", database, "--create"]
    env = {"OVERCAST_PEERS": "[]", "OVERCAST_LOG_LEVEL": "WARNING"}
    process = ServerProcess("openwhisk-runtime", argv, host=HOST, port=port, env=env, cwd=Path(__file__).parents[2])
    process.start()
    try:
        yield process.url
    finally:
        process.stop()
        pouchdb_server.delete_database(database)


def test_api_walk_through_the_web_action(runtime: str) -> None:
    key = {"Idempotency-Key": "walk-1"}
    status, _, first = call(
        runtime, "POST", "/channels/london/messages", {"author": "ada", "text": "Hello London"}, key
    )
    assert status == 201 and first["served_by"]["provider"] == "openwhisk"
    status, _, again = call(
        runtime, "POST", "/channels/london/messages", {"author": "ada", "text": "Hello London"}, key
    )
    assert status == 201 and again["id"] == first["id"]
    for n in range(3):
        assert call(runtime, "POST", "/channels/london/messages", {"author": "bo", "text": f"#{n}"})[0] == 201
    status, _, page = call(runtime, "GET", "/channels/london/messages?limit=2")
    assert status == 200 and [m["text"] for m in page["items"]] == ["#2", "#1"]
    status, _, rest = call(runtime, "GET", f"/channels/london/messages?limit=10&cursor={page['next_cursor']}")
    assert [m["text"] for m in rest["items"]] == ["#0", "Hello London"] and rest["next_cursor"] is None
    assert call(runtime, "GET", f"/channels/london/messages/{first['id']}")[2]["text"] == "Hello London"
    assert call(runtime, "DELETE", f"/channels/london/messages/{first['id']}")[0] == 204
    assert call(runtime, "GET", f"/channels/london/messages/{first['id']}")[0] == 404
    status, _, error = call(runtime, "POST", "/channels/london/messages", {"author": "ada"})
    assert status == 400 and error["error"]["code"]
    status, _, health = call(runtime, "GET", "/health/deep")
    assert status == 200 and health["store"] == "cloudant"


# -- the handler in-process, on the recorded payloads ------------------------------------------------


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Any]:
    """A real peer cloud (the local provider over HTTP) that accepts batches from origin openwhisk."""
    from adapters.local.http_server import LocalHttpServer
    from handlers.local import build

    env = {
        "OVERCAST_PROVIDER": "local",
        "OVERCAST_ORIGIN": "aws",
        "OVERCAST_PEERS": json.dumps([{"name": "openwhisk", "url": "http://127.0.0.1:9", "secret_env": "S"}]),
        "S": SECRET,
    }
    app = build(tmp_path / "peer.sqlite", Settings.from_env(env))
    port = free_port()

    class Peer:
        url = f"http://127.0.0.1:{port}"
        overcast = app
        server: Any = None

        def start(self) -> None:
            self.server = LocalHttpServer(app.app, "127.0.0.1", port).start_background()

        def stop(self) -> None:
            if self.server is not None:
                self.server.stop()
                self.server = None

    running = Peer()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def installed(cloudant_client: Any, cloudant_db: str, peer: Any) -> Iterator[Any]:
    env = {
        "OVERCAST_PROVIDER": "openwhisk",
        "OVERCAST_PEERS": json.dumps([{"name": "aws", "url": peer.url, "secret_env": "S"}]),
        "OVERCAST_REPLICATION_TIMEOUT_S": "2",
        "S": SECRET,
        "CLOUDANT_DB": cloudant_db,
        **AUTH_OFF,  # the web action's mapping and replication, not auth (tests/integration/test_auth_every_provider.py)
    }
    app = action.build(env, client=cloudant_client)
    action.install(app)
    try:
        yield app
    finally:
        action.install(None)


def test_recorded_web_action_payloads(installed: Any) -> None:
    created = action.http(load_event("openwhisk", "http_post_message"))
    assert created["statusCode"] == 201 and created["headers"]["content-type"] == "application/json"
    message = json.loads(created["body"])
    assert message["text"] == "Hello London"
    listed = action.http(load_event("openwhisk", "http_list_messages"))
    assert [m["id"] for m in json.loads(listed["body"])["items"]] == [message["id"]]
    assert action.http(load_event("openwhisk", "http_health_deep"))["statusCode"] == 200


def test_failed_push_is_an_error_result_until_the_peer_is_back(installed: Any, peer: Any) -> None:
    created = json.loads(action.http(load_event("openwhisk", "http_post_message"))["body"])
    trigger = {**load_event("openwhisk", "trigger_cloudant_change"), "id": f"london:{created['id']}"}
    result = action.changes(trigger)  # the peer is down
    assert "error" in result and result["failed"] == 1
    assert peer.overcast.store.get("london", created["id"]) is None
    peer.start()
    result = action.changes(trigger)  # the platform's retry
    assert result == {"forwarded": 1, "records": 1, "last_seq": None}
    assert peer.overcast.store.get("london", created["id"]).text == "Hello London"


def test_feed_batch_forwards_only_local_records(installed: Any, peer: Any) -> None:
    peer.start()
    batch = load_event("openwhisk", "changes_feed_batch")
    result = action.changes(batch)
    # The london record originated here (openwhisk); the portland tombstone came from aws.
    assert result["forwarded"] == 1 and result["records"] == 2
    assert peer.overcast.store.get("london", "01jd7k3q8m4x2v9c5t6b7n8p0r") is not None
    assert peer.overcast.store.get("portland", "01jd7k3r2a5b6c7d8e9f0g1h2j") is None


def test_anti_entropy_entrypoint_repairs_the_peer(installed: Any, peer: Any) -> None:
    peer.start()
    created = json.loads(action.http(load_event("openwhisk", "http_post_message"))["body"])
    summary = action.anti_entropy(load_event("openwhisk", "alarm_anti_entropy"))
    assert "error" not in summary and summary["ok"]
    assert peer.overcast.store.get("london", created["id"]) is not None


# -- outages and misconfiguration --------------------------------------------------------------------


@pytest.fixture
def fresh_action(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [n for n in os.environ if n.startswith(("CLOUDANT_", "OVERCAST_"))]:
        monkeypatch.delenv(name)
    action.install(None)
    try:
        yield
    finally:
        action.install(None)


def _with(params: dict[str, Any], **settings: str) -> dict[str, Any]:
    return {**params, **settings}


def test_unreachable_store_is_a_503_with_retry_after(fresh_action: None) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    health = action.http(_with(load_event("openwhisk", "http_health_deep"), CLOUDANT_URL=closed))
    assert health["statusCode"] == 503 and json.loads(health["body"])["error"]["code"] == "store_unreachable"
    post = action.http(_with(load_event("openwhisk", "http_post_message"), CLOUDANT_URL=closed))
    assert post["statusCode"] == 503 and int(post["headers"]["retry-after"]) >= 1


def test_missing_database_is_misconfigured(fresh_action: None, pouchdb_server: PouchDBServer) -> None:
    params = _with(load_event("openwhisk", "http_health_deep"), CLOUDANT_URL=pouchdb_server.url, CLOUDANT_DB="nope")
    health = action.http(params)
    assert health["statusCode"] == 503
    assert json.loads(health["body"])["error"]["code"] == "misconfigured"


def test_missing_url_is_misconfigured_and_fixed_without_redeploy(
    fresh_action: None, pouchdb_server: PouchDBServer, cloudant_db: str
) -> None:
    health = action.http(load_event("openwhisk", "http_health_deep"))
    body = json.loads(health["body"])
    assert health["statusCode"] == 503 and body["error"]["code"] == "misconfigured"
    assert "CLOUDANT_URL" in body["error"]["message"]
    params = _with(
        load_event("openwhisk", "http_health_deep"), CLOUDANT_URL=pouchdb_server.url, CLOUDANT_DB=cloudant_db
    )
    assert action.http(params)["statusCode"] == 200


def test_non_loopback_url_without_credentials_is_refused(fresh_action: None) -> None:
    params = _with(load_event("openwhisk", "http_health_deep"), CLOUDANT_URL="https://acct.cloudantnosqldb.example")
    body = json.loads(action.http(params)["body"])
    assert body["error"]["code"] == "misconfigured" and "CLOUDANT_APIKEY" in body["error"]["message"]

"""The Azure handlers end to end through the local Functions stand-in host (`python -m runtime.azure`
as its own process) on the Cosmos DB emulator, replicating to a real peer over HTTP."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.base import ServerProcess, free_port
from emulators.cosmos import CosmosEmulator
from tests.fixtures.cosmos import DATABASE, ReplicationPeer
from tests.http_client import HttpClient, HttpResult
from tests.openapi import assert_response_conforms

pytestmark = pytest.mark.emulator("cosmos")
HOST = "127.0.0.3"  # any 127.x works; a non-default one proves --host is honoured


class CheckedClient(HttpClient):
    def request(self, method: str, path: str, **kw: Any) -> HttpResult:
        result = super().request(method, path, **kw)
        # The API is specified without the Functions route prefix.
        bare = path[len("/api") :] if path.startswith("/api/") else path
        assert_response_conforms(method, bare, result.status, result.headers, result.body)
        return result


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicationPeer]:
    replica = ReplicationPeer(tmp_path_factory.mktemp("peer") / "aws.sqlite").start()
    try:
        yield replica
    finally:
        replica.stop()
        replica.overcast.store.close()


@pytest.fixture(scope="module")
def host(cosmos_emulator: CosmosEmulator, peer: ReplicationPeer) -> Iterator[ServerProcess]:
    port = free_port(HOST)
    argv = [
        sys.executable, "-m", "runtime.azure", "--host", HOST, "--port", str(port),
        "--cosmos-endpoint", cosmos_emulator.endpoint, "--cosmos-key", cosmos_emulator.key,
        "--database", DATABASE, "--container", f"e2e-{port}", "--create",
        "--poll-s", "0.1", "--retry-min-s", "0.2", "--retry-max-s", "1", "--max-retries", "-1",
    ]  # fmt: skip
    env = {**peer.azure_env(), "OVERCAST_REGION": "westeurope"}
    server = ServerProcess("azure-functions-host", argv, host=HOST, port=port, env=env, startup_timeout=30)
    # Ready when it says so: the port listens a moment before the "ready" line is printed.
    server.ready = lambda: f"ready {server.url}" in server.log_path.read_text()
    with server:
        yield server


@pytest.fixture
def client(host: ServerProcess) -> CheckedClient:
    return CheckedClient(host.url)


def eventually(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout} s")


def test_host_says_ready_and_serves_both_path_shapes(host: ServerProcess, client: CheckedClient) -> None:
    assert f"ready {host.url}" in host.log_path.read_text()
    for path in ("/api/health", "/health"):
        answer = client.request("GET", path)
        assert answer.status == 200 and answer.json()["served_by"] == {"provider": "azure", "region": "westeurope"}
    deep = client.request("GET", "/api/health/deep")
    assert deep.status == 200 and deep.json()["store"] == "cosmos"


def test_post_then_read_through_either_prefix(client: CheckedClient) -> None:
    created = client.request(
        "POST", "/api/channels/london/messages", json_body={"author": "ada", "text": "Hello London"}
    )
    assert created.status == 201
    message = created.json()
    fetched = client.request("GET", f"/channels/london/messages/{message['id']}")
    assert fetched.status == 200 and fetched.json()["text"] == "Hello London"
    listing = client.request("GET", "/api/channels/london/messages", query={"limit": "5"})
    assert message["id"] in [m["id"] for m in listing.json()["items"]]
    assert client.request("DELETE", f"/api/channels/london/messages/{message['id']}").status == 204
    assert client.request("GET", f"/api/channels/london/messages/{message['id']}").status == 404


def test_errors_are_json_never_bare(client: CheckedClient) -> None:
    bad = client.request("POST", "/api/channels/london/messages", body=b"{nope")
    assert bad.status == 400 and bad.json()["error"]["code"] == "invalid_json"
    unrouted = HttpClient.request(client, "GET", "/api/nowhere")  # not in the spec, so unchecked
    assert unrouted.status == 404 and unrouted.json()["error"]["code"] == "route_not_found"


def test_writes_replicate_through_the_emulated_change_feed(client: CheckedClient, peer: ReplicationPeer) -> None:
    created = client.request("POST", "/api/channels/portland/messages", json_body={"author": "bo", "text": "Hi PDX"})
    message_id = created.json()["id"]
    replicated = eventually(lambda: peer.has("portland", message_id))
    assert replicated.text == "Hi PDX" and replicated.origin == "azure"
    client.request("DELETE", f"/api/channels/portland/messages/{message_id}")
    assert eventually(lambda: (m := peer.has("portland", message_id)) is not None and m.deleted)


def test_a_failed_push_is_retried_until_the_peer_is_back(
    client: CheckedClient, peer: ReplicationPeer, host: ServerProcess
) -> None:
    peer.stop()  # the peer cloud goes down
    created = client.request(
        "POST", "/api/channels/tokyo/messages", json_body={"author": "kenji", "text": "Konnichiwa"}
    )
    message_id = created.json()["id"]
    eventually(lambda: "retrying batch" in host.log_path.read_text())
    time.sleep(0.5)
    assert peer.has("tokyo", message_id) is None
    peer.start()  # back on the same address: the retried batch (checkpoint not advanced) lands
    assert eventually(lambda: peer.has("tokyo", message_id)).text == "Konnichiwa"


def test_sigterm_stops_the_host_cleanly(cosmos_emulator: CosmosEmulator, tmp_path: Path) -> None:
    port = free_port(HOST)
    argv = [
        sys.executable, "-m", "runtime.azure", "--host", HOST, "--port", str(port),
        "--cosmos-endpoint", cosmos_emulator.endpoint, "--database", DATABASE, "--container", "sigterm", "--create",
    ]  # fmt: skip
    server = ServerProcess("azure-functions-host-sigterm", argv, host=HOST, port=port, startup_timeout=30)
    server.ready = lambda: f"ready {server.url}" in server.log_path.read_text()
    server.start()
    process = server.process
    assert process is not None
    started = time.monotonic()
    server.stop(timeout=10)
    assert process.returncode == 0, server.log_tail()
    assert time.monotonic() - started < 5
    assert server.log_tail().rstrip().endswith("stopped")

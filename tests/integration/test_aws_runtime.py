"""runtime.aws (local Lambda + API Gateway + Streams event source) as a subprocess against moto."""

from __future__ import annotations

import itertools
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from emulators.base import ServerProcess, free_port
from emulators.moto import EMULATOR_ENV
from tests.fixtures.dynamodb import SERVERS, DynamoDBServer, PeerReceiver
from tests.http_client import HttpClient

HOST = "127.0.0.2"
_tables = itertools.count()


@pytest.fixture(scope="module")
def peer() -> Iterator[PeerReceiver]:
    receiver = PeerReceiver(secret="runtime-test-secret")
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture
def peer_receiver(peer: PeerReceiver) -> PeerReceiver:
    """The module's peer, emptied: one runtime process serves every test here."""
    peer.batches.clear()
    peer.statuses.clear()
    return peer


@pytest.fixture(scope="module", params=SERVERS)
def runtime(request: pytest.FixtureRequest, peer: PeerReceiver) -> Iterator[ServerProcess]:
    """One runtime process per server: its Streams poller runs against moto's Streams API and
    against DynamoDB Local's."""
    server: DynamoDBServer = request.getfixturevalue("moto_server" if request.param == "moto" else "dynamodb_local")
    port = free_port(HOST)
    table = f"runtime-{next(_tables)}"
    argv = [sys.executable, "-m", "runtime.aws", "--host", HOST, "--port", str(port)]
    argv += ["--dynamodb-endpoint", server.url, "--table", table, "--create-table"]
    env = {
        **EMULATOR_ENV,
        "OVERCAST_PEERS": json.dumps([{"name": "azure", "url": peer.url}]),
        "OVERCAST_REPLICATION_SECRET": peer.secret,
        "OVERCAST_REGION": "local-1",
        "OVERCAST_DYNAMODB_DIGESTS": "kept",  # the changes function keeps the digest tree from the stream
    }
    with ServerProcess("runtime-aws", argv, host=HOST, port=port, env=env) as process:
        _tables_of[process.url] = (server.url, table)
        yield process


_tables_of: dict[str, tuple[str, str]] = {}  # runtime url → (DynamoDB endpoint, table)


def test_serves_the_api_and_replicates_through_the_stream(runtime: ServerProcess, peer_receiver: PeerReceiver) -> None:
    client = HttpClient(runtime.url)
    created = client.request("POST", "/channels/london/messages", json_body={"author": "ada", "text": "Hello London"})
    assert created.status == 201, created.body
    message = created.json()
    assert message["served_by"] == {"provider": "aws", "region": "local-1"}
    got = client.request("GET", f"/channels/london/messages/{message['id']}")
    assert got.status == 200 and got.json()["text"] == "Hello London"
    assert client.request("GET", "/channels/london/messages").json()["items"][0]["id"] == message["id"]
    # The stream poller read the INSERT from moto's stream and the handler pushed it to the peer.
    records = peer_receiver.wait_for(1)
    assert [(r["id"], r["version"]) for r in records] == [(message["id"], message["version"])]
    assert client.request("DELETE", f"/channels/london/messages/{message['id']}").status == 204
    tombstone = peer_receiver.wait_for(2)[1]
    assert tombstone["id"] == message["id"] and tombstone["deleted"] is True


def test_failed_pushes_are_redelivered_from_the_first_failure(
    runtime: ServerProcess, peer_receiver: PeerReceiver
) -> None:
    peer_receiver.statuses = [503, 500]  # the peer is down for two attempts
    client = HttpClient(runtime.url)
    ids = [
        client.request("POST", "/channels/portland/messages", json_body={"author": "bob", "text": f"n{i}"}).json()["id"]
        for i in range(3)
    ]
    records = peer_receiver.wait_for(3, timeout=20)
    assert {r["id"] for r in records} == set(ids)


def test_cookies_and_binary_bodies_pass_through(runtime: ServerProcess) -> None:
    client = HttpClient(runtime.url)
    answer = client.request("POST", "/channels/london/messages", body=b"\xff\xfe", headers={"cookie": "a=1; b=2"})
    assert answer.status == 400 and answer.json()["error"]["code"] == "invalid_json"


def _records(*sequence_numbers: str) -> list[dict[str, object]]:
    return [{"eventName": "INSERT", "dynamodb": {"SequenceNumber": s}} for s in sequence_numbers]


def test_poller_redelivers_from_the_first_reported_failure_like_lambda() -> None:
    from runtime.aws import StreamPoller

    calls: list[list[str]] = []
    failures = iter([["2", "3"], ["3"], []])

    def invoke(event: dict[str, Any], context: object) -> dict[str, Any]:
        calls.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        return {"batchItemFailures": [{"itemIdentifier": s} for s in next(failures)]}

    poller = StreamPoller(None, None, "t", invoke, backoff_s=(0.001, 0.001))
    poller._deliver(_records("1", "2", "3"))
    assert calls == [["1", "2", "3"], ["2", "3"], ["3"]]
    assert (poller.delivered, poller.dropped) == (3, 0)


def test_poller_drops_a_batch_after_its_retries_and_retries_a_raising_handler_whole() -> None:
    from runtime.aws import StreamPoller

    calls: list[int] = []

    def invoke(event: dict[str, Any], context: object) -> dict[str, Any]:
        calls.append(len(event["Records"]))
        raise RuntimeError("handler crashed")

    poller = StreamPoller(None, None, "t", invoke, max_retries=2, backoff_s=(0.001, 0.001))
    poller._deliver(_records("1", "2"))
    assert calls == [2, 2, 2]  # the first attempt and two retries, each with the whole batch
    assert (poller.delivered, poller.dropped) == (0, 2)


def test_the_changes_function_keeps_the_digest_tree_from_the_stream(
    runtime: ServerProcess, peer_receiver: PeerReceiver
) -> None:
    """Through the real stream: every write the API takes reaches the kept tree (and the tree's own
    writes, which the stream carries too, reach no peer)."""
    from adapters.aws.store import DynamoDBMessageStore, make_client
    from core.digest import LEAF_DEPTH, LEAVES, nodes_at
    from emulators.moto import EMULATOR_CREDENTIALS, EMULATOR_REGION

    client = HttpClient(runtime.url)
    posted = [
        client.request("POST", f"/channels/tree-{i % 3}/messages", json_body={"author": "ada", "text": f"m{i}"}).json()
        for i in range(12)
    ]
    assert client.request("DELETE", f"/channels/tree-0/messages/{posted[0]['id']}").status == 204
    sent = peer_receiver.wait_for(13)
    assert all(not r["channel"].startswith("_") for r in sent)
    endpoint, table = _tables_of[runtime.url]
    dynamodb = make_client(EMULATOR_REGION, endpoint, **EMULATOR_CREDENTIALS)
    kept = DynamoDBMessageStore(dynamodb, table, digests="kept")
    scanned = DynamoDBMessageStore(dynamodb, table, digests="scan")
    deadline = time.monotonic() + 15  # noted just after the push: allow the handler to finish
    while kept.tree_digests(0, 0, 1) != scanned.tree_digests(0, 0, 1) and time.monotonic() < deadline:
        time.sleep(0.1)
    for depth in range(LEAF_DEPTH + 1):
        assert kept.tree_digests(depth, 0, nodes_at(depth)) == scanned.tree_digests(depth, 0, nodes_at(depth))
    assert kept.tree_entries(0, LEAVES, None, 1000) == scanned.tree_entries(0, LEAVES, None, 1000)

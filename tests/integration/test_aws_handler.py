"""handlers.aws called as Lambda calls it, with recorded events, against moto server over a socket."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.errors import OvercastError
from emulators.moto import EMULATOR_ENV, MotoServer
from handlers import aws as handler
from tests.events import load_event
from tests.fixtures.dynamodb import PeerReceiver

pytestmark = pytest.mark.emulator("moto")
ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-replication-secret"


@pytest.fixture
def dynamodb_server(moto_server: MotoServer) -> MotoServer:
    """These tests run on moto only (the conformance and e2e suites cover DynamoDB Local)."""
    return moto_server


@pytest.fixture
def lambda_env(
    monkeypatch: pytest.MonkeyPatch, moto_server: MotoServer, dynamodb_table: str, peer_receiver: PeerReceiver
) -> Iterator[dict[str, str]]:
    env = {
        **EMULATOR_ENV,
        "OVERCAST_DYNAMODB_TABLE": dynamodb_table,
        "OVERCAST_DYNAMODB_ENDPOINT": moto_server.url,
        "OVERCAST_PEERS": json.dumps([{"name": "azure", "url": peer_receiver.url}]),
        "OVERCAST_REPLICATION_SECRET": SECRET,
        "OVERCAST_LOG_LEVEL": "WARNING",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handler.reset()
    yield env
    handler.reset()


def context() -> Any:
    return SimpleNamespace(
        aws_request_id="c0ffee00-0000-4000-8000-000000000001", get_remaining_time_in_millis=lambda: 30_000
    )


def body(result: dict[str, Any]) -> Any:
    return json.loads(result["body"]) if result["body"] else None


# -- HTTP ---------------------------------------------------------------------------------------


def test_v2_post_is_idempotent_and_v1_get_reads_it(lambda_env: dict[str, str]) -> None:
    post = load_event("aws", "apigw_v2_post_message")
    first = handler.http(post, context())
    again = handler.http(post, context())
    assert first["statusCode"] == again["statusCode"] == 201
    assert body(first)["id"] == body(again)["id"] and again["headers"].get("idempotent-replayed") == "true"
    assert body(first)["served_by"] == {"provider": "aws", "region": "us-east-1"}
    assert first["headers"]["x-request-id"] == post["requestContext"]["requestId"] == "CvW0GgbLoAMEV4w="
    get = handler.http(load_event("aws", "apigw_v1_get_message"), context())  # same channel + key → same id
    assert get["statusCode"] == 200 and body(get)["text"] == "Hello London" and body(get)["id"] == body(first)["id"]
    assert get["headers"]["x-request-id"] == "5b8c1f0e-3a2d-4e6f-8a9b-0c1d2e3f4a5b"


def test_v2_listing_and_deep_health_on_a_named_stage(lambda_env: dict[str, str]) -> None:
    for _ in range(3):
        assert handler.http(load_event("aws", "apigw_v2_post_message_base64"), context())["statusCode"] == 201
    listing = load_event("aws", "apigw_v2_list_messages")
    listing["rawPath"] = "/channels/portland/messages"
    page = body(handler.http(listing, context()))
    assert len(page["items"]) == 2 and page["next_cursor"]
    health = handler.http(load_event("aws", "apigw_v2_deep_health_named_stage"), context())
    assert health["statusCode"] == 200 and body(health)["store"] == "dynamodb"


def test_clients_are_built_once_per_process(lambda_env: dict[str, str]) -> None:
    assert handler.overcast.built is None, "nothing is built at import or reset"
    handler.http(load_event("aws", "apigw_v2_deep_health_named_stage"), context())
    first = handler.overcast()
    handler.http(load_event("aws", "apigw_v2_deep_health_named_stage"), context())
    assert handler.overcast() is first and first.store.client is handler.overcast().store.client  # type: ignore[attr-defined]


def test_missing_table_is_a_503_that_names_the_problem(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERCAST_DYNAMODB_TABLE", "no-such-table")
    handler.reset()
    result = handler.http(load_event("aws", "apigw_v2_deep_health_named_stage"), context())
    assert result["statusCode"] == 503 and body(result)["error"]["code"] == "misconfigured"
    # The setting to check, by name; the table and the vendor's words stay in the log.
    message = body(result)["error"]["message"]
    assert "OVERCAST_DYNAMODB_TABLE" in message and "no-such-table" not in message
    assert int(result["headers"]["retry-after"]) >= 1


def test_bad_settings_are_a_503_not_a_crash(lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERCAST_PEERS", "[not json")
    handler.reset()
    result = handler.http(load_event("aws", "apigw_v2_post_message"), context())
    assert result["statusCode"] == 503 and body(result)["error"]["code"] == "misconfigured"
    assert "OVERCAST_PEERS" in body(result)["error"]["message"]


def test_unreachable_store_is_a_503_with_retry_after(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("OVERCAST_DYNAMODB_ENDPOINT", f"http://127.0.0.1:{port}")
    handler.reset()
    result = handler.http(load_event("aws", "apigw_v2_post_message"), context())
    assert (
        result["statusCode"] == 503
        and body(result)["error"]["code"] == "unavailable"
        and "retry-after" in result["headers"]
    )


def test_hung_store_fails_deep_health_within_route53s_two_seconds(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as hung:  # accepts connections, never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        monkeypatch.setenv("OVERCAST_DYNAMODB_ENDPOINT", f"http://127.0.0.1:{hung.getsockname()[1]}")
        handler.reset()
        started = time.monotonic()
        result = handler.http(load_event("aws", "apigw_v2_deep_health_named_stage"), context())
        elapsed = time.monotonic() - started
    assert result["statusCode"] == 503 and body(result)["error"]["code"] == "store_timeout"
    assert elapsed < 2.0, f"/health/deep took {elapsed:.2f} s; Route 53 gives up after 2 s"


def test_an_event_that_is_not_http_is_a_400(lambda_env: dict[str, str]) -> None:
    result = handler.http({"hello": "world"}, context())
    assert result["statusCode"] == 400 and body(result)["error"]["code"] == "unknown_event"


# -- Streams ------------------------------------------------------------------------------------


def test_stream_forwards_local_changes_and_skips_removes(
    lambda_env: dict[str, str], peer_receiver: PeerReceiver
) -> None:
    event = load_event("aws", "dynamodb_stream_batch")
    assert handler.changes(event, context()) == {"batchItemFailures": []}
    records = peer_receiver.records
    # INSERT (origin aws) and MODIFY (tombstone written here) go out; the azure-origin INSERT came
    # from that peer and is not echoed back; the REMOVE is ignored.
    assert [(r["channel"], r["deleted"]) for r in records] == [("london", False), ("portland", True)]
    assert {r["origin"] for r in records} == {"aws"} and peer_receiver.rejected == 0


def test_stream_reports_every_undelivered_record(lambda_env: dict[str, str], peer_receiver: PeerReceiver) -> None:
    peer_receiver.statuses = [503]
    result = handler.changes(load_event("aws", "dynamodb_stream_batch"), context())
    assert result == {
        "batchItemFailures": [{"itemIdentifier": "100000000012345678901"}, {"itemIdentifier": "100000000012345678902"}]
    }
    assert peer_receiver.records == []


def test_stream_acknowledges_an_unreadable_record_and_delivers_the_rest(
    lambda_env: dict[str, str], peer_receiver: PeerReceiver
) -> None:
    # Poison (no retry can make it readable) is logged with its sequence number and acknowledged:
    # reporting it would have Lambda retry it, and block the shard behind it, for hours.
    result = handler.changes(load_event("aws", "dynamodb_stream_unparseable_record"), context())
    assert result == {"batchItemFailures": []}
    assert len(peer_receiver.records) == 2


def test_stream_with_unreachable_peer_fails_the_records(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERCAST_PEERS", json.dumps([{"name": "azure", "url": "http://127.0.0.1:9"}]))
    handler.reset()
    result = handler.changes(load_event("aws", "dynamodb_stream_batch"), context())
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [
        "100000000012345678901",
        "100000000012345678902",
    ]


def test_stream_batch_is_noted_in_the_kept_digest_tree(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, peer_receiver: PeerReceiver
) -> None:
    from adapters.aws.table import item_to_message
    from core.digest import LEAVES, key_leaf

    monkeypatch.setenv("OVERCAST_DYNAMODB_DIGESTS", "kept")
    handler.reset()
    event = load_event("aws", "dynamodb_stream_batch")
    assert handler.changes(event, context()) == {"batchItemFailures": []}
    assert handler.changes(event, context()) == {"batchItemFailures": []}  # a re-delivery: no change
    images = [r["dynamodb"]["NewImage"] for r in event["Records"] if r["eventName"] != "REMOVE"]
    latest: dict[tuple[str, str], str] = {}
    for m in map(item_to_message, images):  # every record, whichever cloud it came from
        latest[(m.channel, m.id)] = max(latest.get((m.channel, m.id), ""), str(m.version))
    store = handler.overcast().store
    assert store.tree_entries(0, LEAVES, None, 100) == sorted((key_leaf(c, i), c, i, v) for (c, i), v in latest.items())


def test_stream_records_come_back_when_the_tree_cannot_be_kept(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, peer_receiver: PeerReceiver
) -> None:
    monkeypatch.setenv("OVERCAST_DYNAMODB_DIGESTS", "kept")
    monkeypatch.setenv("OVERCAST_DYNAMODB_TABLE", "no-such-table")
    handler.reset()
    event = load_event("aws", "dynamodb_stream_batch")
    result = handler.changes(event, context())
    pushed = [r["id"] for r in peer_receiver.records]
    assert len(pushed) == 2  # replication went ahead; the retry's pushes are no-ops at the peer
    readable = [r["dynamodb"]["SequenceNumber"] for r in event["Records"] if r["eventName"] != "REMOVE"]
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == readable


# -- anti-entropy -------------------------------------------------------------------------------


def test_anti_entropy_without_peers_is_an_empty_successful_pass(
    lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERCAST_PEERS", "[]")
    handler.reset()
    summary = handler.anti_entropy({"source": "aws.events"}, context())
    assert summary["ok"] is True and summary["peers"] == []


def test_anti_entropy_fails_the_invocation_when_a_peer_cannot_be_repaired(lambda_env: dict[str, str]) -> None:
    # The receiver is no real peer (it has no digest endpoint), so the pass cannot complete.
    with pytest.raises(OvercastError):
        handler.anti_entropy({"source": "aws.events"}, context())


# -- isolation ----------------------------------------------------------------------------------


def test_importing_the_handler_loads_no_other_vendor_and_builds_nothing() -> None:
    code = (
        "import json, sys; before = set(sys.modules); import handlers.aws as h; "
        "print(json.dumps({'modules': sorted(set(sys.modules) - before), 'built': h.overcast.built is not None}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)  # modules the import added (site's .pth files preload namespaces)
    leaked = [m for m in loaded["modules"] if m.split(".")[0] in {"azure", "google", "functions_framework", "flask"}]
    assert not leaked and not loaded["built"]
    assert "botocore.client" in loaded["modules"]  # the SDK loads at import (init phase), clients later

"""The Azure entrypoints with real azure.functions objects against the Cosmos DB emulator.

Recorded payloads (tests/events/azure/) are decoded by the azure-functions library's own
converters — the code the Python worker runs on what the host sends — and the change-feed
function pushes to a real peer (the local provider over HTTP, verifying signatures).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from azure.functions.cosmosdb import CosmosDBTriggerConverter
from azure.functions.http import HttpRequestConverter
from azure.functions.meta import Datum
from azure.functions.timer import TimerRequestConverter

import handlers.azure as entrypoints
from adapters.azure.events import api_path, to_request
from adapters.azure.store import CosmosMessageStore
from core.anti_entropy import AntiEntropyError
from core.bootstrap import Overcast
from core.errors import ConfigurationError, Unavailable
from core.model import Message, Version, new_message_id
from runtime.azure import LocalContext
from tests.events import load_event
from tests.fixtures.cosmos import CosmosFaultProxy, ReplicationPeer

pytestmark = pytest.mark.emulator("cosmos")


# -- recorded payloads through the library's converters ------------------------------------------


def http_event(name: str, **changes: Any) -> func.HttpRequest:
    """A recorded HTTP trigger payload (the host's RpcHttp fields) → func.HttpRequest."""
    raw = {**load_event("azure", name), **changes}
    value = {
        "method": Datum(raw["method"], "string"),
        "url": Datum(raw["url"], "string"),
        "headers": {k: Datum(v, "string") for k, v in raw["headers"].items()},
        "query": {k: Datum(v, "string") for k, v in raw["query"].items()},
        "params": {k: Datum(v, "string") for k, v in raw["params"].items()},
        "body": Datum(raw["body"]["value"].encode(), raw["body"]["type"]),
    }
    request: func.HttpRequest = HttpRequestConverter.decode(Datum(value, "http"), trigger_metadata={})
    return request


def change_feed_event(documents: list[dict[str, Any]] | None = None) -> func.DocumentList:
    body = json.dumps(load_event("azure", "cosmos_change_feed") if documents is None else documents)
    batch = CosmosDBTriggerConverter.decode(Datum(body, "json"), trigger_metadata={})
    assert batch is not None
    return batch


def timer_event() -> func.TimerRequest:
    timer: func.TimerRequest = TimerRequestConverter.decode(
        Datum(json.dumps(load_event("azure", "timer_anti_entropy")), "json"), trigger_metadata={}
    )
    return timer


@pytest.fixture
def azure_app(cosmos_container: Any, replication_peer: ReplicationPeer) -> Iterator[Overcast]:
    overcast = entrypoints.build(replication_peer.azure_env(), container=cosmos_container)
    entrypoints.install(overcast)
    try:
        yield overcast
    finally:
        entrypoints.install(None)


def body(response: func.HttpResponse) -> Any:
    return json.loads(response.get_body())


# -- HTTP ----------------------------------------------------------------------------------------


def test_recorded_post_creates_a_message_in_cosmos(azure_app: Overcast) -> None:
    response = entrypoints.http(http_event("http_post_message"), LocalContext("http"))
    assert response.status_code == 201
    assert response.mimetype == "application/json"
    created = body(response)
    assert created["served_by"] == {"provider": "azure", "region": "local"}
    assert response.headers["location"] == f"/channels/london/messages/{created['id']}"
    stored = azure_app.store.get("london", created["id"])
    assert stored is not None and stored.text == "Hello London" and stored.origin == "azure"
    # The recorded request carries an Idempotency-Key: the same request again is the same message.
    again = entrypoints.http(http_event("http_post_message"), LocalContext("http"))
    assert again.status_code == 201 and body(again)["id"] == created["id"]
    assert again.headers["idempotent-replayed"] == "true"


def test_recorded_list_uses_query_params_and_the_clients_request_id(azure_app: Overcast) -> None:
    for text in ("one", "two", "three"):
        azure_app.service.post("london", "ada", text)
    response = entrypoints.http(http_event("http_list_messages"), LocalContext("http"))
    assert response.status_code == 200
    page = body(response)
    assert [m["text"] for m in page["items"]] == ["three", "two"] and page["next_cursor"]
    assert response.headers["x-request-id"] == "client-trace-42"


def test_invocation_id_is_the_request_id_when_the_client_sends_none(azure_app: Overcast) -> None:
    context = LocalContext("http")
    response = entrypoints.http(http_event("http_health_deep"), context)
    assert response.status_code == 200 and body(response)["store"] == "cosmos"
    assert response.headers["x-request-id"] == context.invocation_id


def test_path_comes_from_the_url_when_the_route_param_is_missing(azure_app: Overcast) -> None:
    request = http_event("http_health_deep", params={})
    assert api_path(request) == "/health/deep"
    assert entrypoints.http(request, LocalContext("http")).status_code == 200
    bare = http_event("http_health_deep", params={}, url="https://func-overcast-secondary.example.net/api")
    answer = entrypoints.http(bare, LocalContext("http"))
    assert answer.status_code == 404 and body(answer)["error"]["code"] == "route_not_found"


def test_route_prefix_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    request = func.HttpRequest("GET", "https://func.example.net/v1/health", body=b"")
    assert to_request(request, route_prefix="v1").path == "/health"
    assert to_request(request, route_prefix="").path == "/v1/health"
    routed = func.HttpRequest("GET", "https://func.example.net/v1/health", route_params={"path": "health"}, body=b"")
    assert to_request(routed, route_prefix="v1").path == "/health"


def test_bad_json_is_a_400_json_error(azure_app: Overcast) -> None:
    request = http_event("http_post_message", body={"type": "bytes", "value": "{not json"})
    response = entrypoints.http(request, LocalContext("http"))
    assert response.status_code == 400 and body(response)["error"]["code"] == "invalid_json"


def test_missing_configuration_is_a_503_that_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    entrypoints.install(None)
    monkeypatch.delenv("COSMOS_ENDPOINT", raising=False)
    response = entrypoints.http(http_event("http_health_deep"), LocalContext("http"))
    assert response.status_code == 503
    assert (
        body(response)["error"]["code"] == "misconfigured" and "COSMOS_ENDPOINT" in body(response)["error"]["message"]
    )
    assert response.headers["retry-after"]
    entrypoints.install(None)


# -- change feed ---------------------------------------------------------------------------------


def test_change_feed_forwards_locally_originated_changes_only(
    azure_app: Overcast, replication_peer: ReplicationPeer
) -> None:
    local, tombstone, from_aws = load_event("azure", "cosmos_change_feed")
    entrypoints.changes(change_feed_event(), LocalContext("changes"))
    assert replication_peer.has(local["channel"], local["id"]) == Message.from_record(local)
    delivered = replication_peer.has(tombstone["channel"], tombstone["id"])
    assert delivered is not None and delivered.deleted
    assert replication_peer.has(from_aws["channel"], from_aws["id"]) is None  # aws's own to spread


def test_failed_push_raises_so_the_retry_policy_redelivers(
    azure_app: Overcast, replication_peer: ReplicationPeer
) -> None:
    local = load_event("azure", "cosmos_change_feed")[0]
    replication_peer.stop()  # the peer cloud is down
    with pytest.raises(entrypoints.ReplicationIncomplete) as failure:
        entrypoints.changes(change_feed_event(), LocalContext("changes"))
    assert failure.value.status == 503 and "not delivered" in failure.value.message
    replication_peer.start()  # back on the same address: the platform's retry delivers
    entrypoints.changes(change_feed_event(), LocalContext("changes", retry_count=1, max_retry_count=8))
    assert replication_peer.has(local["channel"], local["id"]) == Message.from_record(local)


def test_unreadable_documents_are_skipped_and_the_rest_delivered(
    azure_app: Overcast, replication_peer: ReplicationPeer
) -> None:
    local = load_event("azure", "cosmos_change_feed")[0]
    foreign = {"id": "lease-or-junk", "channel": "london", "_rid": "x", "_ts": 1}
    entrypoints.changes(change_feed_event([foreign, local]), LocalContext("changes"))
    assert replication_peer.has(local["channel"], local["id"]) is not None


def test_a_batch_with_nothing_local_does_not_touch_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    entrypoints.install(None)
    monkeypatch.delenv("COSMOS_ENDPOINT", raising=False)  # building the app would fail
    entrypoints.changes(change_feed_event([{"id": "junk"}]), LocalContext("changes"))


# -- anti-entropy timer --------------------------------------------------------------------------


def test_timer_anti_entropy_repairs_what_the_feed_missed(
    azure_app: Overcast, replication_peer: ReplicationPeer
) -> None:
    now = time.time_ns() // 1_000_000
    missed = Message("tokyo", new_message_id(now), "kenji", "Konnichiwa", now, Version(now, 0, "azure"))
    azure_app.store.create(missed)  # written, but its change-feed delivery was lost
    entrypoints.anti_entropy(timer_event(), LocalContext("anti_entropy"))
    assert replication_peer.has("tokyo", missed.id) == missed


def test_timer_anti_entropy_fails_the_invocation_when_a_peer_is_down(
    azure_app: Overcast, replication_peer: ReplicationPeer
) -> None:
    replication_peer.stop()
    with pytest.raises(AntiEntropyError):
        entrypoints.anti_entropy(timer_event(), LocalContext("anti_entropy"))


# -- Cosmos error translation with the SDK's real exceptions --------------------------------------


@pytest.fixture
def proxied_store(cosmos_fault_proxy: CosmosFaultProxy, cosmos_container: Any) -> Iterator[CosmosMessageStore]:
    from adapters.azure.store import cosmos_client
    from emulators.cosmos import KEY
    from tests.fixtures.cosmos import DATABASE

    client = cosmos_client(cosmos_fault_proxy.endpoint, KEY, throttle_retries=1, enable_endpoint_discovery=False)
    container = client.get_database_client(DATABASE).get_container_client(cosmos_container.id)
    store = CosmosMessageStore(container, timeout_s=3.0, ping_timeout_s=1.0)
    try:
        yield store
    finally:
        cosmos_fault_proxy.faults.clear()


def _message() -> Message:
    now = time.time_ns() // 1_000_000
    return Message("london", new_message_id(now), "ada", "hi", now, Version(now, 0, "azure"))


def test_throttling_is_unavailable_with_the_services_retry_after(
    proxied_store: CosmosMessageStore, cosmos_fault_proxy: CosmosFaultProxy
) -> None:
    message = _message()
    proxied_store.create(message)  # the path through the proxy works
    # More 429s than the SDK's own throttling retries (1 here), each with the service's hint.
    cosmos_fault_proxy.fail_next(429, {"x-ms-retry-after-ms": "150", "x-ms-substatus": "3200"}, times=5)
    with pytest.raises(Unavailable) as throttled:
        proxied_store.get(message.channel, message.id)
    assert throttled.value.code == "store_throttled" and throttled.value.retry_after == 0.15
    cosmos_fault_proxy.faults.clear()
    assert proxied_store.get(message.channel, message.id) == message  # and it recovers


def test_service_unavailable_is_unavailable(
    proxied_store: CosmosMessageStore, cosmos_fault_proxy: CosmosFaultProxy
) -> None:
    cosmos_fault_proxy.fail_next(503, times=10)  # more than the SDK's own retries
    with pytest.raises(Unavailable) as outage:
        proxied_store.create(_message())
    assert outage.value.status == 503 and not isinstance(outage.value, ConfigurationError)


def test_bad_key_is_a_configuration_error(
    proxied_store: CosmosMessageStore, cosmos_fault_proxy: CosmosFaultProxy
) -> None:
    cosmos_fault_proxy.fail_next(401)
    with pytest.raises(ConfigurationError, match="COSMOS_KEY"):
        proxied_store.list("london", 10)


def test_put_if_newer_retries_a_lost_etag_race(
    proxied_store: CosmosMessageStore, cosmos_fault_proxy: CosmosFaultProxy
) -> None:
    message = _message()
    proxied_store.create(message)
    update = Message(
        **{**message.__dict__, "text": "edited", "version": Version(message.version.physical_ms + 1, 0, "azure")}
    )
    # Read answers normally; the replace is refused once as if another writer had moved the etag.
    cosmos_fault_proxy.faults.extend([])  # nothing queued for the read
    original_read = proxied_store._read

    def read_then_arm(channel: str, message_id: str) -> Any:
        item = original_read(channel, message_id)
        if not getattr(read_then_arm, "armed", False):
            read_then_arm.armed = True  # type: ignore[attr-defined]
            cosmos_fault_proxy.fail_next(412)
        return item

    proxied_store._read = read_then_arm  # type: ignore[method-assign]
    assert proxied_store.put_if_newer(update) is True
    assert proxied_store.get(message.channel, message.id) == update


def test_contention_past_the_bound_is_unavailable(
    proxied_store: CosmosMessageStore, cosmos_fault_proxy: CosmosFaultProxy
) -> None:
    message = _message()
    proxied_store.create(message)
    update = Message(**{**message.__dict__, "version": Version(message.version.physical_ms + 1, 0, "azure")})
    proxied_store.max_write_attempts = 3
    original_read = proxied_store._read

    def read_then_arm(channel: str, message_id: str) -> Any:
        item = original_read(channel, message_id)
        cosmos_fault_proxy.fail_next(412)  # every replace loses the race
        return item

    proxied_store._read = read_then_arm  # type: ignore[method-assign]
    with pytest.raises(Unavailable) as contended:
        proxied_store.put_if_newer(update)
    assert contended.value.code == "store_contention"


def test_missing_container_is_a_configuration_error(cosmos_client: Any) -> None:
    from tests.fixtures.cosmos import DATABASE

    store = CosmosMessageStore(cosmos_client.get_database_client(DATABASE).get_container_client("no-such-container"))
    with pytest.raises(ConfigurationError, match="not found"):
        store.ping()
    with pytest.raises(ConfigurationError):
        store.create(_message())


def test_unreachable_account_is_unavailable_at_client_build() -> None:
    from adapters.azure.store import cosmos_client
    from emulators.base import free_port
    from emulators.cosmos import KEY

    with pytest.raises(Unavailable) as unreachable:
        cosmos_client(f"https://127.0.0.1:{free_port()}", KEY, connection_timeout_s=0.5)
    assert unreachable.value.code == "store_unreachable"


def test_a_hung_store_fails_the_ping_within_its_bound(
    proxied_store: CosmosMessageStore, cosmos_fault_proxy: CosmosFaultProxy
) -> None:
    proxied_store.ping()
    cosmos_fault_proxy.hang_next(3.0)
    started = time.monotonic()
    with pytest.raises(Unavailable) as hung:
        proxied_store.ping()
    assert hung.value.code == "store_unreachable"
    assert time.monotonic() - started < 2.0  # a Route 53 checker waits 2 s

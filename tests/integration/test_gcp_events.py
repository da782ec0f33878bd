"""Firestore change events → replication, through the real functions-framework app.

The recorded deliveries (tests/events/gcp) are POSTed to the Flask app functions-framework builds
for ``main.changes`` (signature ``cloudevent``) — the code path Cloud Run / Eventarc
uses — and for 1st gen background events. The function forwards the change to a real peer (the
local provider's HTTP server on SQLite), which verifies the HMAC signature and applies it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from cloudevents.http import from_http

import handlers.gcp
import handlers.local
from adapters.gcp.events import FirestoreDocumentEvent
from adapters.local.http_server import LocalHttpServer
from core.bootstrap import Overcast
from core.errors import ValidationError
from core.model import Version
from core.settings import Settings
from emulators.base import free_port
from tests.events.gcp import request

pytestmark = pytest.mark.emulator("firestore")
ROOT = Path(__file__).resolve().parents[2]
SECRET = "integration-pair-secret"
FIXTURE_ID = "2fkw8hg7vxtrzmdtakszh1c7de"


def _settings(origin: str, peer: str, url: str) -> Settings:
    peers = json.dumps([{"name": peer, "url": url, "secret_env": "PAIR_SECRET"}])
    return Settings.from_env(
        {"OVERCAST_ORIGIN": origin, "OVERCAST_PEERS": peers, "PAIR_SECRET": SECRET, "OVERCAST_PROVIDER": origin}
    )


@dataclass
class Peer:
    overcast: Overcast
    url: str

    @property
    def store(self) -> Any:
        return self.overcast.store


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[Peer]:
    """The local provider as the peer cloud, on a real socket."""
    overcast = handlers.local.build(tmp_path / "peer.sqlite", _settings("local", "gcp", "http://127.0.0.1:9"))
    server = LocalHttpServer(overcast.app, "127.0.0.1", free_port()).start_background()
    yield Peer(overcast, server.url)
    server.stop()
    overcast.store.close()


def _gcp(client: Any, peer_url: str, origin: str = "gcp", **extra: str) -> Overcast:
    peers = json.dumps([{"name": "local", "url": peer_url, "secret_env": "PAIR_SECRET"}])
    env = {"OVERCAST_ORIGIN": origin, "PAIR_SECRET": SECRET, "OVERCAST_PEERS": peers, **extra}
    return handlers.gcp.build(env, client=client)


@pytest.fixture
def gcp(firestore_db: Any, peer: Peer, monkeypatch: pytest.MonkeyPatch) -> Overcast:
    overcast = _gcp(firestore_db, peer.url)
    monkeypatch.setattr(handlers.gcp.overcast, "_app", overcast)  # what overcast() builds on a cold start
    return overcast


@pytest.fixture(scope="module")
def event_app() -> Any:
    return functions_framework.create_app("changes", str(ROOT / "main.py"), "cloudevent").test_client()


@pytest.fixture(scope="module")
def legacy_app() -> Any:
    return functions_framework.create_app("changes", str(ROOT / "main.py"), "event").test_client()


# -- mapping ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["firestore_written_created_binary", "firestore_written_created_json", "firestore_written_tombstone_structured"],
)
def test_cloud_events_decode_to_the_written_message(name: str) -> None:
    headers, body = request(name)
    event = FirestoreDocumentEvent.from_cloud_event(from_http(headers, body))  # as functions-framework parses it
    message = event.message()
    assert message is not None
    assert (message.channel, message.id) == ("london", FIXTURE_ID)
    assert event.document == f"channels/london/messages/{FIXTURE_ID}"
    assert event.event_type == "google.cloud.firestore.document.v1.written"
    if "tombstone" in name:
        assert message.deleted and message.text == "" and message.version == Version(1_767_225_660_000, 0, "gcp")
        assert event.data.old_value.fields["text"].string_value == "Hello London 👋"
        assert set(event.data.update_mask.field_paths) == {"author", "deleted", "text", "version"}
    else:
        assert (message.author, message.text, message.deleted) == ("Ada", "Hello London 👋", False)
        assert message.version == Version(1_767_225_600_000, 0, "gcp") and message.created_ms == 1_767_225_600_000


def test_hard_delete_event_has_no_message() -> None:
    headers, body = request("firestore_written_deleted_binary")
    event = FirestoreDocumentEvent.from_cloud_event(from_http(headers, body))
    assert event.deleted_document and event.message() is None
    assert event.data.old_value.fields["deleted"].boolean_value is True


def test_legacy_background_event_decodes_like_the_cloud_event() -> None:
    _, body = request("legacy_document_write_created")
    payload = json.loads(body)
    event = FirestoreDocumentEvent.from_background(payload["data"], payload["context"])
    cloud = FirestoreDocumentEvent.from_cloud_event(from_http(*request("firestore_written_created_binary")))
    assert event.message() == cloud.message()
    assert event.event_type == "google.cloud.firestore.document.v1.written"


@pytest.mark.parametrize(
    ("attributes", "data"),
    [
        ({"type": "google.cloud.storage.object.v1.finalized", "id": "1", "source": "//storage"}, b""),
        (
            {
                "type": "google.cloud.firestore.document.v1.written",
                "id": "1",
                "source": "//f",
                "datacontenttype": "application/protobuf",
            },
            b"\xff\xff",
        ),
        ({"type": "google.cloud.firestore.document.v1.written", "id": "1", "source": "//f"}, None),
    ],
    ids=["other-event-type", "garbage-protobuf", "no-data"],
)
def test_unusable_events_are_validation_errors(attributes: dict[str, str], data: Any) -> None:
    from cloudevents.http import CloudEvent

    with pytest.raises(ValidationError):
        FirestoreDocumentEvent.from_cloud_event(CloudEvent({**attributes, "specversion": "1.0"}, data))


# -- replication through functions-framework ----------------------------------------------------


@pytest.mark.parametrize("name", ["firestore_written_created_binary", "firestore_written_tombstone_structured"])
def test_event_function_forwards_the_change_to_the_peer(gcp: Overcast, peer: Peer, event_app: Any, name: str) -> None:
    headers, body = request(name)
    answer = event_app.post("/", headers=headers, data=body)
    assert answer.status_code == 200, answer.data
    stored = peer.store.get("london", FIXTURE_ID)
    assert stored is not None and stored.origin == "gcp"
    assert stored.deleted is ("tombstone" in name)


def test_redelivery_is_harmless(gcp: Overcast, peer: Peer, event_app: Any) -> None:
    headers, body = request("firestore_written_created_binary")
    for _ in range(3):
        assert event_app.post("/", headers=headers, data=body).status_code == 200
    assert [m.id for m in peer.store.list("london", 10).items] == [FIXTURE_ID]


def test_legacy_trigger_forwards_the_change(gcp: Overcast, peer: Peer, legacy_app: Any) -> None:
    headers, body = request("legacy_document_write_created")
    answer = legacy_app.post("/", headers=headers, data=body)
    assert answer.status_code == 200, answer.data
    assert peer.store.get("london", FIXTURE_ID) is not None


def test_failed_push_fails_the_invocation_so_the_platform_retries(
    firestore_db: Any, monkeypatch: pytest.MonkeyPatch, event_app: Any
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: the peer is down
    monkeypatch.setattr(handlers.gcp.overcast, "_app", _gcp(firestore_db, dead, OVERCAST_REPLICATION_TIMEOUT_S="1"))
    headers, body = request("firestore_written_created_binary")
    assert event_app.post("/", headers=headers, data=body).status_code == 500


def test_hard_deletes_are_acknowledged_without_a_push(gcp: Overcast, peer: Peer, event_app: Any) -> None:
    headers, body = request("firestore_written_deleted_binary")
    assert event_app.post("/", headers=headers, data=body).status_code == 200
    assert peer.store.changes_since(None, 10) == []


def test_changes_that_arrived_from_a_peer_are_not_pushed_again(
    firestore_db: Any, peer: Peer, monkeypatch: pytest.MonkeyPatch, event_app: Any
) -> None:
    # The fixture's record has origin "gcp"; on a replica whose origin is "gcp-eu" it is a
    # replicated write, which its origin spreads: forwarding it again would loop.
    monkeypatch.setattr(handlers.gcp.overcast, "_app", _gcp(firestore_db, peer.url, origin="gcp-eu"))
    headers, body = request("firestore_written_created_binary")
    assert event_app.post("/", headers=headers, data=body).status_code == 200
    assert peer.store.get("london", FIXTURE_ID) is None


def test_cloudevent_function_also_takes_a_1st_gen_delivery(gcp: Overcast, peer: Peer, event_app: Any) -> None:
    # functions-framework converts a background event into a CloudEvent with JSON data.
    headers, body = request("legacy_document_write_created")
    assert event_app.post("/", headers=headers, data=body).status_code == 200
    assert peer.store.get("london", FIXTURE_ID) is not None


# -- the scheduled anti-entropy function (Pub/Sub message from Cloud Scheduler) -------------------

PUBSUB_EVENT = {
    "context": {
        "eventId": "4242424242",
        "timestamp": "2026-01-01T00:10:00.000Z",
        "eventType": "google.pubsub.topic.publish",
        "resource": {
            "service": "pubsub.googleapis.com",
            "name": "projects/demo-overcast/topics/overcast-anti-entropy-dev",
            "type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
        },
    },
    "data": {"@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage", "attributes": {}, "data": "e30="},
}


@pytest.fixture(scope="module")
def anti_entropy_app() -> Any:
    return functions_framework.create_app("anti_entropy", str(ROOT / "main.py"), "event").test_client()


def test_anti_entropy_repairs_a_change_whose_event_was_lost(gcp: Overcast, peer: Peer, anti_entropy_app: Any) -> None:
    missed = gcp.service.post("london", "ada", "the event for this one never fired").message
    assert peer.store.get("london", missed.id) is None
    answer = anti_entropy_app.post("/", json=PUBSUB_EVENT)
    assert answer.status_code == 200, answer.data
    assert peer.store.get("london", missed.id) == missed


def test_anti_entropy_fails_the_invocation_when_a_peer_is_unreachable(
    firestore_db: Any, monkeypatch: pytest.MonkeyPatch, anti_entropy_app: Any
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setattr(handlers.gcp.overcast, "_app", _gcp(firestore_db, dead, OVERCAST_REPLICATION_TIMEOUT_S="1"))
    handlers.gcp.overcast().service.post("london", "ada", "stranded")
    assert anti_entropy_app.post("/", json=PUBSUB_EVENT).status_code == 500


@pytest.mark.parametrize(
    "event_type", ["providers/cloud.firestore/eventTypes/document.archive", "google.pubsub.topic.publish"]
)
def test_unknown_background_event_types_are_validation_errors(event_type: str) -> None:
    _, body = request("legacy_document_write_created")
    payload = json.loads(body)
    with pytest.raises(ValidationError):
        FirestoreDocumentEvent.from_background(payload["data"], {**payload["context"], "eventType": event_type})

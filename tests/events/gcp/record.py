"""Record the Firestore event fixtures from a live Firestore emulator.

    python -m tests.events.gcp.record

Real documents are written to the official emulator through ``FirestoreMessageStore`` (create, a
tombstone update, a hard delete by hand); runtime.gcp's listener turns each change into the
binary-mode CloudEvent Eventarc delivers (DocumentEventData serialized with protobuf, the
attributes Eventarc sets: source, subject, dataschema, location, project, database, namespace,
document); those are saved as they would arrive. From the same changes it derives the other
deliveries Cloud Functions makes: structured mode (``application/cloudevents+json`` with
``data_base64``), a JSON-encoded payload (proto3 JSON mapping), and the 1st gen background event
(``providers/cloud.firestore/eventTypes/document.write``, ``{"context", "data"}``).

No Google endpoint was involved: the shapes follow Google's published event format (the
google-cloudevents data.proto and the Eventarc attribute list); the bytes are the emulator's
documents.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

from adapters.gcp.events import DocumentEventData
from adapters.gcp.store import FirestoreMessageStore
from core.model import Message, Version, idempotent_message_id
from emulators.firestore import FirestoreEmulator
from runtime.gcp import FirestoreTrigger

HERE = Path(__file__).parent
CREATED_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
LOCATION = "europe-west1"


class _Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], bytes]] = []

    def submit(self, headers: dict[str, str], body: bytes) -> None:
        self.events.append((headers, body))


def record() -> None:
    with FirestoreEmulator() as emulator:
        client = emulator.client()
        recorder = _Recorder()
        trigger = FirestoreTrigger(client, emulator.project, recorder).start()  # type: ignore[arg-type]
        store = FirestoreMessageStore(client)
        message = Message(
            channel="london",
            id=idempotent_message_id("london", "fixture-1"),
            author="Ada",
            text="Hello London 👋",
            created_ms=CREATED_MS,
            version=Version(CREATED_MS, 0, "gcp"),
        )
        store.create(message)
        _wait(recorder, 1)
        store.put_if_newer(message.tombstone(Version(CREATED_MS + 60_000, 0, "gcp")))
        _wait(recorder, 2)
        client.document("channels", "london", "messages", message.id).delete()
        _wait(recorder, 3)
        trigger.stop()
        client.close()
    (created, updated, deleted) = recorder.events
    for headers, _ in recorder.events:
        headers["ce-location"] = LOCATION
    _write("firestore_written_created_binary", _binary(*created))
    _write("firestore_written_tombstone_structured", _structured(*updated))
    _write("firestore_written_deleted_binary", _binary(*deleted))
    _write("firestore_written_created_json", _json_payload(*created))
    _write("legacy_document_write_created", _background(*created))


def _wait(recorder: _Recorder, count: int) -> None:
    deadline = time.monotonic() + 20
    while len(recorder.events) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(recorder.events)} events recorded")
        time.sleep(0.05)


def _binary(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {"mode": "binary", "headers": headers, "body_base64": base64.b64encode(body).decode()}


def _structured(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    attributes = {k.removeprefix("ce-"): v for k, v in headers.items() if k.startswith("ce-")}
    envelope = {
        **attributes,
        "datacontenttype": headers["content-type"],
        "data_base64": base64.b64encode(body).decode(),
    }
    return {
        "mode": "structured",
        "headers": {"content-type": "application/cloudevents+json; charset=utf-8"},
        "body": envelope,
    }


def _json_payload(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    data = json.loads(DocumentEventData.to_json(DocumentEventData.deserialize(body)))
    headers = {**headers, "content-type": "application/json"}
    headers.pop("ce-dataschema", None)
    return {"mode": "binary", "headers": headers, "body": data}


def _background(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    data = json.loads(DocumentEventData.to_json(DocumentEventData.deserialize(body)))
    data.setdefault("oldValue", {})
    data.setdefault("updateMask", {})
    context = {
        "eventId": headers["ce-id"],
        "timestamp": headers["ce-time"],
        "eventType": "providers/cloud.firestore/eventTypes/document.write",
        "resource": headers["ce-source"].removeprefix("//firestore.googleapis.com/")
        + "/documents/"
        + headers["ce-document"],
    }
    return {
        "mode": "background",
        "headers": {"content-type": "application/json"},
        "body": {"context": context, "data": data},
    }


def _write(name: str, fixture: dict[str, Any]) -> None:
    path = HERE / f"{name}.json"
    path.write_text(json.dumps(fixture, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(HERE.parent.parent.parent)}")


if __name__ == "__main__":
    record()

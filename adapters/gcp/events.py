"""Google Cloud event shapes ↔ core: the HTTP function's request and response, and Firestore
document-change events → the changed message, for replication.

HTTP: functions-framework's request (a ``flask.Request``) → core ``Request``; core ``Response`` →
the ``(body, status, headers)`` tuple a Flask view may return. Duck-typed on purpose:
functions-framework has already imported Flask when it calls us, and not importing it here keeps
``import handlers.gcp`` as cheap as the Firestore SDK it needs anyway (the protobuf types below
come with that SDK: importing this module adds nothing to the HTTP function's cold start).

Changes: two deliveries of the same change, one class:

* **Eventarc CloudEvents** (2nd gen functions): ``type`` ``google.cloud.firestore.document.v1.written``
  (or ``created``/``updated``/``deleted``, optionally ``.withAuthContext``), ``source``
  ``//firestore.googleapis.com/projects/P/databases/(default)``, ``subject`` ``documents/<path>``,
  ``datacontenttype`` ``application/protobuf`` and the data a serialized
  ``google.events.cloud.firestore.v1.DocumentEventData``. functions-framework hands the function a
  ``cloudevents`` ``CloudEvent`` whose ``data`` is those bytes (binary or structured mode). A
  JSON-encoded payload (``application/json``, proto3 JSON mapping) is accepted too.
* **Legacy background events** (1st gen ``providers/cloud.firestore/eventTypes/document.write``
  triggers, what serverless-google-cloudfunctions deploys): ``(data, context)`` where ``data`` is
  the same message in proto3 JSON (``{"value": {"fields": {"text": {"stringValue": ...}}}}``).

``DocumentEventData`` is declared here with proto-plus on the Firestore SDK's own ``Document`` and
``DocumentMask`` types rather than pulling in the ``google-events`` package: its ``Document`` and
``Value`` messages use the same field numbers as ``google.firestore.v1``'s (data.proto:
value = 1, old_value = 2, update_mask = 3), so the bytes decode identically.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import proto
from google.cloud.firestore_v1.types import common as firestore_common
from google.cloud.firestore_v1.types import document as firestore_document

from adapters.protocols import ChangeRecord, from_delivery, messages_of, unreadable
from core.errors import PayloadTooLarge, ValidationError
from core.http import Request, Response
from core.model import Message

__protobuf__ = proto.module(package="overcast.gcp.events")

EVENT_TYPE_PREFIX = "google.cloud.firestore.document.v1."
EVENT_KINDS = ("written", "created", "updated", "deleted")
LEGACY_EVENT_PREFIX = "providers/cloud.firestore/eventTypes/document."
_LEGACY_KINDS = {"write": "written", "create": "created", "update": "updated", "delete": "deleted"}
DATA_SCHEMA = (
    "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/firestore/v1/data.proto"
)


# -- HTTP -------------------------------------------------------------------------------------------

#: Hard cap on what we read off the wire; the app enforces the real (smaller) limits.
MAX_READ_BYTES = 8 * 1024 * 1024


class FlaskRequest(Protocol):
    """The part of ``flask.Request`` we read."""

    method: str
    path: str
    content_length: int | None

    @property
    def args(self) -> Any: ...

    @property
    def headers(self) -> Any: ...

    def get_data(self, cache: bool = ..., as_text: bool = ..., parse_form_data: bool = ...) -> Any: ...


def to_request(request: FlaskRequest) -> Request:
    """Raises ``PayloadTooLarge`` before reading a body larger than ``MAX_READ_BYTES``."""
    if (request.content_length or 0) > MAX_READ_BYTES:
        raise PayloadTooLarge(f"request body larger than {MAX_READ_BYTES} bytes")
    headers = {str(name).lower(): str(value) for name, value in request.headers.items()}
    return Request(
        method=request.method.upper(),
        path=request.path or "/",
        # First value of each query parameter, like the other providers' mappings.
        query={str(k): str(v) for k, v in request.args.items()},
        headers=headers,
        body=request.get_data(cache=False) or b"",
        request_id=_request_id(headers),
    )


def to_response(response: Response) -> tuple[bytes, int, dict[str, str]]:
    return response.body, response.status, dict(response.headers)


def _request_id(headers: dict[str, str]) -> str:
    """The Cloud Trace id when the request carries one (it joins the platform's request log and
    any service the trace passes through), else the execution id functions-framework or the 1st
    gen runtime sets. Empty when neither is there: the app then makes one up."""
    trace = headers.get("x-cloud-trace-context", "")  # "TRACE_ID/SPAN_ID;o=1"
    trace_id = trace.split("/", 1)[0].split(";", 1)[0]
    return trace_id or headers.get("function-execution-id", "")


# -- Firestore document changes ---------------------------------------------------------------------


class DocumentEventData(proto.Message):
    """google.events.cloud.firestore.v1.DocumentEventData, wire-compatible."""

    value = proto.Field(proto.MESSAGE, number=1, message=firestore_document.Document)
    old_value = proto.Field(proto.MESSAGE, number=2, message=firestore_document.Document)
    update_mask = proto.Field(proto.MESSAGE, number=3, message=firestore_common.DocumentMask)


@dataclass(frozen=True)
class FirestoreDocumentEvent:
    """One document change. ``raw_event`` is what the platform delivered, for debugging."""

    event_id: str
    event_type: str  # the CloudEvent type, e.g. google.cloud.firestore.document.v1.written
    document: str  # the document path, e.g. channels/london/messages/01J...
    data: Any  # the raw protobuf DocumentEventData
    raw_event: Any = None

    # -- parsing ----------------------------------------------------------------------------------

    @classmethod
    def from_cloud_event(cls, event: Any) -> FirestoreDocumentEvent:
        """From a ``cloudevents`` CloudEvent (or anything with ``[attr]``/``get`` and ``data``)."""
        try:
            attributes = event.get_attributes() if hasattr(event, "get_attributes") else event
            event_type = str(attributes["type"])
            event_id = str(attributes.get("id") or "")
            content_type = str(attributes.get("datacontenttype") or "")
            subject = str(attributes.get("subject") or "")
            document = str(attributes.get("document") or "")
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValidationError(f"not a CloudEvent: {exc}", code="unknown_event") from exc
        _check_type(event_type)
        data = _decode_data(getattr(event, "data", None), content_type)
        document = document or subject.removeprefix("documents/") or _document_path(data)
        return cls(event_id, event_type, document, data, event)

    @classmethod
    def from_background(cls, data: Mapping[str, Any], context: Any) -> FirestoreDocumentEvent:
        """From a 1st gen background function's ``(data, context)``."""
        legacy_type = str(_context_field(context, "event_type", "eventType"))
        if not legacy_type.startswith(LEGACY_EVENT_PREFIX):
            raise ValidationError(f"not a Firestore document event: {legacy_type!r}", code="unknown_event")
        kind = _LEGACY_KINDS.get(legacy_type.removeprefix(LEGACY_EVENT_PREFIX))
        if kind is None:
            raise ValidationError(f"unknown Firestore event type {legacy_type!r}", code="unknown_event")
        event_type = EVENT_TYPE_PREFIX + kind
        parsed = _decode_data(data, "application/json")
        resource = str(_context_field(context, "resource") or "")
        document = resource.split("/documents/", 1)[1] if "/documents/" in resource else _document_path(parsed)
        return cls(
            str(_context_field(context, "event_id", "eventId") or ""), event_type, document, parsed, (data, context)
        )

    # -- meaning ----------------------------------------------------------------------------------

    @property
    def deleted_document(self) -> bool:
        """The document is gone (a hard delete: this app only ever writes tombstones)."""
        return not self.data.value.name

    def message(self) -> Message | None:
        """The message as written, or None for a hard delete. Raises ValidationError for a document
        that is not a message record (wrong path, missing or malformed fields)."""
        if self.deleted_document:
            return None
        try:
            record = {name: decode_value(value) for name, value in self.data.value.fields.items()}
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # e.g. a timestamp out of range
            raise ValidationError(f"unreadable document field: {type(exc).__name__}", code="invalid_record") from exc
        message = Message.from_record(record)
        parts = _document_path(self.data).split("/")
        if len(parts) < 4 or parts[-3] != message.channel or parts[-1] != message.id:
            raise ValidationError(
                f"document {self.data.value.name} does not hold message {message.channel}/{message.id}"
            )
        return message


def decode_value(value: Any) -> Any:
    """A protobuf ``google.firestore.v1.Value`` → Python (the types our records use, and the rest)."""
    kind = value.WhichOneof("value_type")
    if kind in ("string_value", "integer_value", "boolean_value", "double_value", "bytes_value", "reference_value"):
        return getattr(value, kind)
    if kind == "null_value" or kind is None:
        return None
    if kind == "map_value":
        return {name: decode_value(item) for name, item in value.map_value.fields.items()}
    if kind == "array_value":
        return [decode_value(item) for item in value.array_value.values]
    if kind == "timestamp_value":
        return value.timestamp_value.ToDatetime()
    if kind == "geo_point_value":
        return (value.geo_point_value.latitude, value.geo_point_value.longitude)
    raise ValidationError(f"unsupported Firestore value type {kind}")


def encode_value(value: Any) -> firestore_document.Value:
    """Python → ``google.firestore.v1.Value`` (the inverse of ``decode_value`` for record types)."""
    if value is None:
        return firestore_document.Value(null_value=0)
    if isinstance(value, bool):
        return firestore_document.Value(boolean_value=value)
    if isinstance(value, int):
        return firestore_document.Value(integer_value=value)
    if isinstance(value, float):
        return firestore_document.Value(double_value=value)
    if isinstance(value, str):
        return firestore_document.Value(string_value=value)
    if isinstance(value, bytes):
        return firestore_document.Value(bytes_value=value)
    if isinstance(value, Mapping):
        fields = {str(k): encode_value(v) for k, v in value.items()}
        return firestore_document.Value(map_value=firestore_document.MapValue(fields=fields))
    if isinstance(value, list | tuple):
        return firestore_document.Value(
            array_value=firestore_document.ArrayValue(values=[encode_value(v) for v in value])
        )
    if isinstance(value, datetime.datetime):
        return firestore_document.Value(timestamp_value=value)
    raise TypeError(f"cannot encode {type(value).__name__} as a Firestore value")


def document(
    name: str,
    fields: Mapping[str, Any],
    create_time: datetime.datetime | None = None,
    update_time: datetime.datetime | None = None,
) -> firestore_document.Document:
    """A ``Document`` message as Firestore sends it in events: full resource name, typed fields."""
    return firestore_document.Document(
        name=name,
        fields={key: encode_value(value) for key, value in fields.items()},
        create_time=create_time,
        update_time=update_time,
    )


def encode_event_data(value: Any | None, old_value: Any | None = None, update_mask: list[str] | None = None) -> bytes:
    """Serialize a DocumentEventData from firestore_v1 ``Document`` messages (local runtimes, tests)."""
    data = DocumentEventData(value=value, old_value=old_value)
    if update_mask:
        data.update_mask = firestore_common.DocumentMask(field_paths=update_mask)
    return DocumentEventData.serialize(data)


def _check_type(event_type: str) -> None:
    kind = event_type.removeprefix(EVENT_TYPE_PREFIX).removesuffix(".withAuthContext")
    if not event_type.startswith(EVENT_TYPE_PREFIX) or kind not in EVENT_KINDS:
        raise ValidationError(f"not a Firestore document event: {event_type!r}", code="unknown_event")


def _decode_data(data: Any, content_type: str) -> Any:
    """The event data → a raw protobuf DocumentEventData, whatever encoding it came in."""
    try:
        if isinstance(data, Mapping):
            parsed = DocumentEventData.from_json(json.dumps(data), ignore_unknown_fields=True)
        elif isinstance(data, bytes | bytearray | str):
            raw = bytes(data, "utf-8") if isinstance(data, str) else bytes(data)
            if "json" in content_type.lower():
                parsed = DocumentEventData.from_json(raw.decode("utf-8"), ignore_unknown_fields=True)
            else:
                parsed = DocumentEventData.deserialize(raw)
        else:
            raise ValidationError(f"Firestore event without data ({type(data).__name__})", code="invalid_event")
    except ValidationError:
        raise
    except Exception as exc:  # protobuf's DecodeError and json_format.ParseError, JSON, Unicode, nesting...
        # Whatever the decoder raised, these bytes will never decode: poison, never a retry.
        raise ValidationError(f"unreadable Firestore event data: {type(exc).__name__}", code="invalid_event") from exc
    return DocumentEventData.pb(parsed)


def _document_path(data: Any) -> str:
    name = data.value.name or data.old_value.name
    return name.split("/documents/", 1)[1] if "/documents/" in name else name


def _context_field(context: Any, *names: str) -> Any:
    for name in names:
        if isinstance(context, Mapping) and name in context:
            return context[name]
        if hasattr(context, name):
            return getattr(context, name)
    return None


# -- the event adapter (adapters.protocols.EventAdapter) -------------------------------------------


def to_changes(event: Any, context: Any = None) -> list[ChangeRecord]:
    """One Firestore trigger delivery → its one record, named by the event id (else the document).
    ``changes(cloud_event)`` (Eventarc) or ``changes(data, context)`` (1st gen background event).
    An event that cannot be read, or a document that is not a message, is poison; a hard delete
    has nothing to send (deletes are tombstones, which arrive as updates)."""
    try:
        parsed = (
            FirestoreDocumentEvent.from_cloud_event(event)
            if context is None
            else FirestoreDocumentEvent.from_background(event, context)
        )
    except Exception as error:  # ValidationError, or anything a malformed delivery trips over
        reason = error.message if isinstance(error, ValidationError) else f"unreadable event: {type(error).__name__}"
        return [unreadable(_event_id(event, context), reason)]
    return [ChangeRecord(parsed.event_id or parsed.document, from_delivery(lambda _app: parsed.message()))]


def to_messages(event: Any, context: Any = None) -> list[Message]:
    return messages_of(to_changes(event, context))


def _event_id(event: Any, context: Any) -> str:
    try:
        if context is not None:
            return str(_context_field(context, "event_id", "eventId") or "?")
        attributes = event.get_attributes() if hasattr(event, "get_attributes") else event
        return str(attributes.get("id") or "?")
    except Exception:  # whatever the delivery is, it has no usable id
        return "?"

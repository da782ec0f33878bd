"""AWS event shapes: thin read-only views over the raw Lambda event dict, one class per shape.

* ``ApiGatewayV2Event`` — HTTP API, payload format 2.0 (what serverless.aws.yml deploys).
* ``ApiGatewayV1Event`` — REST API (and HTTP API payload format 1.0).
* ``DynamoDBStreamEvent`` — a batch of DynamoDB Streams records (NEW_AND_OLD_IMAGES).

``infer(event)`` picks the shape. HTTP shapes turn into core's neutral ``Request`` and turn a
``Response`` back into the dict API Gateway expects; the raw event stays reachable as
``raw_event`` for debugging, and core never sees it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from adapters.aws.table import is_tree_key, item_to_message
from adapters.protocols import ChangeRecord, from_delivery, messages_of
from core.errors import ValidationError
from core.http import Request, Response, is_mapping
from core.model import Message, quote

_TEXT_TYPES = ("text/", "application/json", "application/problem+json", "application/xml", "application/javascript")


class _EventView:
    def __init__(self, event: Mapping[str, Any]) -> None:
        self.raw_event = event
        # A direct invocation can pass anything: a view over a non-object reads as empty.
        self._fields: Mapping[str, Any] = event if is_mapping(event) else {}

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._fields.get(key, default)

    def mapping(self, key: str) -> Mapping[str, Any]:
        """A field that should be an object; anything else reads as empty."""
        return _mapping(self._fields.get(key))


class _HttpEvent(_EventView):
    """What both API Gateway payload formats share."""

    def to_request(self) -> Request:
        raise NotImplementedError

    def to_response(self, response: Response) -> dict[str, Any]:
        raise NotImplementedError


class ApiGatewayV2Event(_HttpEvent):
    """HTTP API payload format 2.0."""

    def to_request(self) -> Request:
        # One pass over the event, each field read once: this runs on every request.
        event = self._fields
        context = _mapping(event.get("requestContext"))
        headers = {str(k).lower(): str(v) for k, v in _mapping(event.get("headers")).items()}
        cookies = event.get("cookies")
        if cookies:  # v2 moves Cookie headers into a list
            headers["cookie"] = "; ".join(cookies)
        raw_query = event.get("rawQueryString")
        return Request(
            method=str(_mapping(context.get("http")).get("method") or "GET").upper(),
            path=_strip_stage(unquote(str(event.get("rawPath") or "/")), context),
            query=_first_values(raw_query) if raw_query else {},
            headers=headers,
            body=_body(event),
            request_id=str(context.get("requestId") or ""),
        )

    def to_response(self, response: Response) -> dict[str, Any]:
        headers = dict(response.headers)
        result: dict[str, Any] = {"statusCode": response.status}
        cookie = headers.pop("set-cookie", None)
        if cookie is not None:
            result["cookies"] = [cookie]
        result["headers"] = headers
        result.update(_encode_body(response))
        return result


class ApiGatewayV1Event(_HttpEvent):
    """REST API proxy integration (also HTTP API payload format 1.0)."""

    def to_request(self) -> Request:
        event = self._fields
        context = _mapping(event.get("requestContext"))
        query: dict[str, str] = {}
        for name, values in _mapping(event.get("multiValueQueryStringParameters")).items():
            if values:
                query[name] = str(values[0])
        for name, value in _mapping(event.get("queryStringParameters")).items():
            query.setdefault(name, str(value))
        headers: dict[str, str] = {}
        for name, values in _mapping(event.get("multiValueHeaders")).items():
            if values:
                headers[str(name).lower()] = ", ".join(str(v) for v in values)
        for name, value in _mapping(event.get("headers")).items():
            headers.setdefault(str(name).lower(), str(value))
        return Request(
            method=str(event.get("httpMethod") or "GET").upper(),
            path=_strip_stage(str(event.get("path") or "/"), context),
            query=query,
            headers=headers,
            body=_body(event),
            request_id=str(context.get("requestId") or ""),
        )

    def to_response(self, response: Response) -> dict[str, Any]:
        return {"statusCode": response.status, "headers": dict(response.headers), **_encode_body(response)}


def _mapping(value: Any) -> Mapping[str, Any]:
    """A field that should be an object; anything else (a direct invocation can pass anything)
    reads as empty."""
    return value if is_mapping(value) else {}


def _strip_stage(path: str, context: Mapping[str, Any]) -> str:
    # A named stage appears as the first path segment (HTTP API stages other than $default,
    # REST APIs behind some custom-domain mappings); routes never include it.
    stage = str(context.get("stage") or "")
    if stage and stage != "$default":
        prefix = "/" + stage
        if path == prefix or path.startswith(prefix + "/"):
            return path[len(prefix) :] or "/"
    return path or "/"


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError("request body is not valid base64", code="invalid_body") from exc
    return str(body).encode("utf-8")


class DynamoDBStreamRecord(_EventView):
    @property
    def event_id(self) -> str:
        return _text(self.get("eventID"))

    @property
    def event_name(self) -> str:
        """INSERT, MODIFY or REMOVE."""
        return _text(self.get("eventName"))

    @property
    def dynamodb(self) -> Mapping[str, Any]:
        return self.mapping("dynamodb")

    @property
    def sequence_number(self) -> str:
        """The batch item identifier Lambda expects in ``batchItemFailures`` ("" when missing or
        not a plain digit string: such a record cannot be retried on its own, see new_message)."""
        number = self.dynamodb.get("SequenceNumber")
        return number if isinstance(number, str) and number.isascii() and number.isdigit() else ""

    @property
    def keys(self) -> Mapping[str, Any]:
        return self.dynamodb.get("Keys") or {}

    @property
    def new_image(self) -> Mapping[str, Any] | None:
        return self.dynamodb.get("NewImage")

    @property
    def old_image(self) -> Mapping[str, Any] | None:
        return self.dynamodb.get("OldImage")

    def new_message(self) -> Message:
        """The record's new image as a Message; raises ValidationError if it has none or is not
        a message item."""
        if not self.sequence_number:  # reported for retry, "" would fail the whole batch
            raise ValidationError(f"stream record {quote(self.event_id)} has no SequenceNumber", code="invalid_record")
        image = self.new_image
        if not isinstance(image, Mapping) or not image:
            raise ValidationError(f"stream record {self.event_id} has no NewImage", code="invalid_record")
        return item_to_message(image)


class DynamoDBStreamEvent(_EventView):
    @property
    def records(self) -> Iterator[DynamoDBStreamRecord]:
        records = self.get("Records")
        for record in records if isinstance(records, list) else ():
            yield DynamoDBStreamRecord(record)  # a non-object record reads as empty: poison


HttpEvent = ApiGatewayV1Event | ApiGatewayV2Event


def infer(event: Mapping[str, Any]) -> HttpEvent | DynamoDBStreamEvent:
    """The shape of a raw Lambda event; raises ValidationError for one this app does not take."""
    if not is_mapping(event):
        raise ValidationError(f"event is a {type(event).__name__}, not an object", code="unknown_event")
    records = event.get("Records")
    if (
        isinstance(records, list)
        and records
        and isinstance(records[0], Mapping)
        and records[0].get("eventSource") == "aws:dynamodb"
    ):
        return DynamoDBStreamEvent(event)
    if event.get("version") == "2.0" and "rawPath" in event:
        return ApiGatewayV2Event(event)
    if "httpMethod" in event:
        return ApiGatewayV1Event(event)
    raise ValidationError("event is neither an API Gateway request nor a DynamoDB stream batch", code="unknown_event")


def _first_values(raw_query: str) -> dict[str, str]:
    """A raw query string's parameters; a repeated parameter: the first one counts."""
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query.setdefault(name, value)
    return query


def _encode_body(response: Response) -> dict[str, Any]:
    content_type = response.headers.get("content-type", "")
    if content_type.startswith(_TEXT_TYPES) or not response.body:
        try:
            return {"body": response.body.decode("utf-8"), "isBase64Encoded": False}
        except UnicodeDecodeError:
            pass
    return {"body": base64.b64encode(response.body).decode("ascii"), "isBase64Encoded": True}


# -- the event adapter (adapters.protocols.EventAdapter) -------------------------------------------


def to_request(event: Mapping[str, Any]) -> Request:
    """An API Gateway event (v2 or v1) → core Request; anything else is a ValidationError."""
    shape = infer(event)
    if not isinstance(shape, ApiGatewayV1Event | ApiGatewayV2Event):
        raise ValidationError("the http function takes API Gateway events", code="unknown_event")
    return shape.to_request()


def to_response(response: Response) -> dict[str, Any]:
    """Core Response → the HTTP API (payload 2.0) answer serverless.aws.yml deploys."""
    return ApiGatewayV2Event({}).to_response(response)


def to_changes(event: Mapping[str, Any]) -> list[ChangeRecord]:
    """A DynamoDB Streams batch → one record per stream record, named by its sequence number. A
    REMOVE is a hard delete, which this app never makes (deletes are tombstones): nothing to send."""
    batch = DynamoDBStreamEvent(event if isinstance(event, Mapping) else {})
    return [ChangeRecord(record.sequence_number, _reader(record)) for record in batch.records if not _is_tree(record)]


def _is_tree(record: DynamoDBStreamRecord) -> bool:
    """A write of the kept digest tree (adapters/aws/digests.py), which shares the table and so
    the stream: bookkeeping, not a change to replicate or to note (acknowledged by leaving it out)."""
    pk = record.keys.get("pk") if isinstance(record.keys, Mapping) else None
    return isinstance(pk, Mapping) and isinstance(pk.get("S"), str) and is_tree_key(pk["S"])


def to_messages(event: Mapping[str, Any]) -> list[Message]:
    return messages_of(to_changes(event))


def _reader(record: DynamoDBStreamRecord) -> Callable[[Callable[[], Any]], Message | None]:
    def read(_app: Any) -> Message | None:
        return None if record.event_name == "REMOVE" else record.new_message()

    return from_delivery(read)


def _text(value: Any) -> str:
    # A string field, or "": str() of an arbitrary delivery could recurse thousands deep.
    return value if isinstance(value, str) else ""

"""OpenWhisk / IBM Cloud Functions event shapes <-> core.

Web actions (deployed with ``web-export: true`` and ``raw-http: true``) are invoked with one
dict of parameters: the bound (package/action) parameters plus the request as

    __ow_method   "get", "post", ... (lower-case)
    __ow_path     the path after the action's URL, e.g. "/channels/london/messages"
    __ow_headers  request headers, names lower-case
    __ow_query    the raw query string (raw-http mode)
    __ow_body     the body as a string: base64 for JSON and binary content, plain for text

and answer ``{"statusCode", "headers", "body"}`` (a string: plain for text and JSON, base64 for
anything else).

Change deliveries come as the Cloudant ``_changes`` feed shape (``{"results": [{"id", "seq",
"changes", "doc"}], "last_seq"}``, ``include_docs=true``), or as the Cloudant trigger's event,
one change without the document (``{"dbname", "id", "seq", "changes"}``): those are returned as
keys to read (``ChangeBatch.to_read``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from adapters.protocols import ChangeRecord
from core.errors import ValidationError
from core.http import Request, Response
from core.logs import get_logger, log
from core.model import Message, quote, validate_channel, validate_message_id

logger = get_logger("openwhisk")

#: Bodies of these content types arrive as plain strings in raw-http mode; everything else
#: (JSON included) arrives base64-encoded.
_PLAIN_TYPES = ("text/", "application/x-www-form-urlencoded")
_TEXT_RESPONSE_TYPES = ("text/", "application/json", "application/problem+json")


def is_web_action(params: Mapping[str, Any]) -> bool:
    return "__ow_method" in params


def to_request(params: Mapping[str, Any]) -> Request:
    """The web action's ``__ow_*`` parameters → a core Request. Raises ValidationError when the
    invocation is not a web action call or its body is not decodable."""
    method = str(params.get("__ow_method") or "").upper()
    if not method:
        raise ValidationError("not a web action invocation (no __ow_method)", code="invalid_event")
    raw_headers = params.get("__ow_headers") or {}
    headers = {str(k).lower(): str(v) for k, v in dict(raw_headers).items()}
    path = str(params.get("__ow_path") or "/")
    if not path.startswith("/"):
        path = "/" + path
    return Request(
        method=method,
        path=path,
        query=_query(params.get("__ow_query")),
        headers=headers,
        body=_body(params.get("__ow_body"), headers.get("content-type", "")),
        # The platform's activation id (set in the action's environment per invocation) joins our
        # log lines to `ibmcloud fn activation get`; a client's own x-request-id wins.
        request_id="" if headers.get("x-request-id") else os.environ.get("__OW_ACTIVATION_ID", ""),
    )


def _query(raw: Any) -> dict[str, str]:
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    query: dict[str, str] = {}
    for key, value in parse_qsl(str(raw or ""), keep_blank_values=True):
        query.setdefault(key, value)  # the first value, like the other providers' mappings
    return query


def _body(raw: Any, content_type: str) -> bytes:
    if raw is None or raw == "":
        return b""
    if isinstance(raw, (Mapping, list)):  # a non-raw web action merges JSON; keep it usable
        return json.dumps(raw, ensure_ascii=False).encode("utf-8")
    text = str(raw)
    if content_type.lower().startswith(_PLAIN_TYPES):
        return text.encode("utf-8")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        # Not base64 after all (a platform that passed the text through): take it as it is.
        return text.encode("utf-8")


def to_response(response: Response) -> dict[str, Any]:
    """A core Response → the web action result. Text and JSON bodies stay strings; any other
    content type is base64 (the platform decodes it)."""
    content_type = response.headers.get("content-type", "")
    body: str
    if not response.body:
        body = ""
    elif content_type.lower().startswith(_TEXT_RESPONSE_TYPES):
        body = response.body.decode("utf-8")
    else:
        body = base64.b64encode(response.body).decode("ascii")
    return {"statusCode": response.status, "headers": dict(response.headers), "body": body}


@dataclass
class ChangeBatch:
    """A change delivery as messages. Documents that are not message records (design documents,
    hard deletes, anything else) are logged and left out — no retry can make them messages."""

    messages: list[Message] = field(default_factory=list)
    to_read: list[tuple[str, str]] = field(default_factory=list)  # (channel, id) changed, body not delivered
    skipped: list[str] = field(default_factory=list)
    last_seq: str | None = None

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> ChangeBatch:
        batch = cls()
        if not isinstance(event, Mapping):
            raise ValidationError(f"a change event is an object, not a {type(event).__name__}", code="invalid_event")
        if isinstance(event.get("results"), list):
            rows = event["results"]
            last_seq = event.get("last_seq")
            batch.last_seq = str(last_seq) if isinstance(last_seq, str | int) else None  # CouchDB 1.x: an int
        elif "id" in event and "changes" in event:  # the Cloudant trigger: one change per event
            rows = [event]
        else:
            raise ValidationError("not a Cloudant change event (no results, no id/changes)", code="invalid_event")
        for row in rows:
            batch._add(row)
        return batch

    def _add(self, row: Mapping[str, Any]) -> None:
        if not isinstance(row, Mapping):
            self.skipped.append("?")
            log(logger, logging.ERROR, "change row is not an object; dropped", row_type=type(row).__name__)
            return
        ident = row.get("id")
        ident = ident if isinstance(ident, str) else ""  # str() of a hostile value could recurse
        if ident.startswith("_design/") or ident.startswith("_local/"):
            self.skipped.append(ident)
            return
        if row.get("deleted") or (isinstance(row.get("doc"), Mapping) and row["doc"].get("_deleted")):
            # This app never deletes documents (deletes are tombstone records).
            self.skipped.append(ident)
            log(logger, logging.WARNING, "hard delete ignored (deletes are tombstones)", id=ident)
            return
        doc = row.get("doc")
        try:
            if isinstance(doc, Mapping):
                self.messages.append(Message.from_record(doc))
            else:
                self.to_read.append(parse_doc_id(ident))
        except ValidationError as error:
            self.skipped.append(ident)
            log(logger, logging.ERROR, "change is not a message; dropped", id=ident, error=error.message)


def parse_doc_id(ident: str) -> tuple[str, str]:
    channel, sep, message_id = ident.partition(":")
    if not sep:
        raise ValidationError(f"document id {quote(ident)} is not <channel>:<id>", code="invalid_record")
    return validate_channel(channel), validate_message_id(message_id)


def to_messages(event: Mapping[str, Any]) -> list[Message]:
    """The messages a ``_changes`` delivery carries (documents included)."""
    return ChangeBatch.from_event(event).messages


def to_changes(event: Mapping[str, Any]) -> list[ChangeRecord]:
    """One record per change row, named by its document id (design documents and hard deletes are
    skipped by ``ChangeBatch``; a document that is not a message was already logged there). A row
    of the Cloudant trigger names its document only: its reader asks the store (a store that does
    not answer fails the record, so it is retried; a document gone since is nothing to send)."""
    batch = ChangeBatch.from_event(event)
    records = [ChangeRecord(f"{m.channel}:{m.id}", _carried(m)) for m in batch.messages]
    records += [
        ChangeRecord(f"{channel}:{message_id}", _stored(channel, message_id)) for channel, message_id in batch.to_read
    ]
    return records


def _carried(message: Message) -> Callable[[Callable[[], Any]], Message | None]:
    return lambda _app: message


def _stored(channel: str, message_id: str) -> Callable[[Callable[[], Any]], Message | None]:
    return lambda app: app().store.get(channel, message_id)

"""The benchmarks' GET of one message done in one function: every check the app makes on the
way, with the same leaf functions (the router, the access policy, the id checks, the record →
Message validation, the response encoder, the access line), but none of the layers between them:
no event view, no Response object, no service, no store port.

* ``build_aws_get``: API Gateway v2 event in, Lambda result out, as ``handlers.aws.http``.
* ``build_gcp_get``: the ``Request`` functions-framework's mapping gives in (what ``bench gcp``
  hands ``HttpApp.handle``), the HTTP function's ``(body, status, headers)`` out.

``bench aws`` and ``bench gcp`` measure them beside the handler, each paired with the bare SDK
call. The gap between the two ratios is what the layering costs; the gap between this one and
1.00 is what the work itself costs in this interpreter. They answer the success path only
(anything else raises): measuring sticks, never deployed.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import unquote

from adapters.aws.table import item_to_message
from core import json_text
from core.app import _REQUEST_ID_RE, HttpApp, _new_request_id
from core.errors import NotFound, PayloadTooLarge, Unavailable
from core.http import Request
from core.logs import get_logger, log, request_id_var
from core.model import Message, validate_channel, validate_message_id

logger = get_logger("http")


def build_aws_get(app: HttpApp, client: Any, table: str) -> Any:
    """A Lambda handler ``(event, context) -> response`` for ``GET /channels/{c}/messages/{id}``
    in an API Gateway v2 event, reading ``table`` through ``client`` (a DynamoDB client)."""
    limits, policy, served_by = app.settings.limits, app.policy, app.served_by

    def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        # The event, read as adapters.aws.events reads it (objects checked, text coerced).
        if not (type(event) is dict and event.get("version") == "2.0" and "rawPath" in event):
            raise TypeError("not an API Gateway v2 event")
        context_ = event.get("requestContext")
        context_ = context_ if type(context_) is dict else {}
        raw_headers = event.get("headers")
        headers = {str(k).lower(): str(v) for k, v in (raw_headers if type(raw_headers) is dict else {}).items()}
        http = context_.get("http")
        method = str((http if type(http) is dict else {}).get("method") or "GET").upper()
        path = unquote(str(event.get("rawPath") or "/"))
        stage = str(context_.get("stage") or "")
        if stage and stage != "$default" and (path == f"/{stage}" or path.startswith(f"/{stage}/")):
            path = path[len(stage) + 1 :] or "/"
        body = event.get("body")
        body = b"" if body is None else str(body).encode("utf-8")
        request_id = str(context_.get("requestId") or "")
        if not (request_id and _REQUEST_ID_RE.match(request_id)):
            candidate = headers.get("x-request-id") or ""
            request_id = candidate if candidate and _REQUEST_ID_RE.match(candidate) else _new_request_id()
        # The app's checks, in its order.
        token = request_id_var.set(request_id)
        started = time.perf_counter_ns()
        try:
            if len(body) > limits.max_body_bytes:
                raise PayloadTooLarge("request body too large")
            _, params, route = app.router.resolve(method, path.rstrip("/") or "/")
            policy.reader(headers.get("authorization"))
            channel = validate_channel(params["channel"])
            message_id = validate_message_id(params["message_id"])
            try:
                answer = client.get_item(
                    TableName=table, Key={"pk": {"S": channel}, "sk": {"S": message_id}}, ConsistentRead=True
                )
            except Exception as exc:
                raise Unavailable(f"DynamoDB: {type(exc).__name__}") from exc
            item = answer.get("Item")
            message = item_to_message(item) if item else None
            if message is None or message.deleted:
                raise NotFound("no such message")
            text = json_text.compact({**message.to_api(), "served_by": served_by})
        finally:
            request_id_var.reset(token)
        _access_line(request_id, method, route, started)
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json", "x-request-id": request_id},
            "body": text,
            "isBase64Encoded": False,
        }

    return handler


def build_gcp_get(app: HttpApp, store: Any) -> Any:
    """An HTTP function body ``(Request) -> (body, status, headers)`` for
    ``GET /channels/{c}/messages/{id}``, reading through the SDK calls ``store`` (a
    FirestoreMessageStore) makes: the same document path, retry and timeout."""
    limits, policy, served_by = app.settings.limits, app.policy, app.served_by
    client, collection, messages = store.client, store.collection, store.messages
    retry, timeout_s = store._retry, store.timeout_s

    def handler(request: Request) -> tuple[bytes, int, dict[str, str]]:
        request_id = HttpApp._request_id(request)  # the app's own choice: a Request is in hand
        token = request_id_var.set(request_id)
        started = time.perf_counter_ns()
        try:
            if len(request.body) > limits.max_body_bytes:
                raise PayloadTooLarge("request body too large")
            _, params, route = app.router.resolve(request.method, request.path.rstrip("/") or "/")
            policy.reader(request.headers.get("authorization"))
            channel = validate_channel(params["channel"])
            message_id = validate_message_id(params["message_id"])
            try:
                snapshot = client.document(collection, channel, messages, message_id).get(
                    retry=retry, timeout=timeout_s
                )
            except Exception as exc:
                raise Unavailable(f"Firestore: {type(exc).__name__}") from exc
            record = snapshot.to_dict() if snapshot.exists else None
            message = Message.from_record(record) if record else None
            if message is None or message.deleted:
                raise NotFound("no such message")
            body = json_text.compact({**message.to_api(), "served_by": served_by}).encode("utf-8")
        finally:
            request_id_var.reset(token)
        _access_line(request_id, request.method, route, started)
        return body, 200, {"content-type": "application/json", "x-request-id": request_id}

    return handler


def _access_line(request_id: str, method: str, route: str, started_ns: int) -> None:
    """The line HttpApp.handle writes for a 200 answer: the same fields, the same rounding."""
    log(
        logger,
        logging.INFO,
        "request",
        request_id=request_id,
        method=method,
        route=route,
        status=200,
        ms=(time.perf_counter_ns() - started_ns) // 10_000 / 100,
    )

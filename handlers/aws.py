"""Composition root of the AWS provider: Lambda entrypoints for API Gateway, DynamoDB Streams and
the anti-entropy schedule.

    http(event, context)          API Gateway HTTP API (payload 2.0) or REST API (1.0) → the app
    changes(event, context)       DynamoDB Streams batch → replication to peers, batchItemFailures
    anti_entropy(event, context)  EventBridge schedule → one anti-entropy pass against every peer

The store, the DynamoDB client and the app are built once per process, on the first invocation
(not at import: importing stays cheap and never touches the network), and reused while the
execution environment stays warm.

Environment (besides core's OVERCAST_* settings, see ``python -m core.settings``):

    OVERCAST_DYNAMODB_TABLE       table name (required)
    OVERCAST_DYNAMODB_ENDPOINT    endpoint URL of a local DynamoDB (moto server, DynamoDB Local);
                                  unset on AWS
    AWS_REGION                    set by Lambda; also the default for OVERCAST_REGION
    OVERCAST_ANTI_ENTROPY_WINDOW_S  how far back a scheduled pass compares (default 900)
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from adapters.aws.events import ApiGatewayV1Event, ApiGatewayV2Event, DynamoDBStreamEvent, infer
from adapters.aws.store import DynamoDBMessageStore, make_client
from adapters.http_peer import UrllibPeerTransport
from core.bootstrap import Overcast, bootstrap
from core.errors import OvercastError, ValidationError
from core.http import Response
from core.logs import get_logger, log
from core.model import Message
from core.settings import Settings

logger = get_logger("aws")
_overcast: Overcast | None = None
_lock = threading.Lock()


def build(environ: Mapping[str, str] | None = None) -> Overcast:
    """Build the app from the environment: one DynamoDB client, one store, one Overcast."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("OVERCAST_PROVIDER", "aws")
    if env.get("AWS_REGION"):
        env.setdefault("OVERCAST_REGION", env["AWS_REGION"])
    settings = Settings.from_env(env)
    client = make_client(env.get("AWS_REGION") or None, env.get("OVERCAST_DYNAMODB_ENDPOINT") or None)
    store = DynamoDBMessageStore(client, env.get("OVERCAST_DYNAMODB_TABLE", ""))
    return bootstrap(settings, store, UrllibPeerTransport())


def overcast() -> Overcast:
    """The process-wide app, built on first use. A failed build (bad configuration) raises and is
    retried on the next invocation, so fixing an environment variable needs no redeploy of code."""
    global _overcast
    if _overcast is None:
        with _lock:
            if _overcast is None:
                _overcast = build()
    return _overcast


def reset() -> None:
    """Forget the built app (tests; a local runtime that changes the environment)."""
    global _overcast
    with _lock:
        _overcast = None


# -- entrypoints --------------------------------------------------------------------------------


def http(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """API Gateway → core app → API Gateway. Never raises: every failure is a JSON response."""
    try:
        shape = infer(event)
        if not isinstance(shape, ApiGatewayV1Event | ApiGatewayV2Event):
            raise ValidationError("the http function takes API Gateway events", code="unknown_event")
        request = shape.to_request()
    except ValidationError as error:
        log(logger, logging.WARNING, "unusable http event", error=error.message)
        bad = ApiGatewayV2Event(event if isinstance(event, dict) else {})
        return bad.to_response(Response.from_error(error))
    fallback_id = str(getattr(context, "aws_request_id", "") or "")
    if not request.request_id and fallback_id:
        request = replace(request, request_id=fallback_id)
    try:
        app = overcast().app
    except OvercastError as error:  # misconfiguration: a 503 that says what to fix
        log(logger, logging.ERROR, "cannot build the app", code=error.code, error=error.message)
        return shape.to_response(Response.from_error(error, request.request_id))
    except Exception:
        logger.exception("cannot build the app")
        return shape.to_response(Response.from_error(OvercastError("internal error; see logs"), request.request_id))
    return shape.to_response(app.handle(request))


def changes(event: dict[str, Any], context: Any = None) -> dict[str, list[dict[str, str]]]:
    """DynamoDB Streams batch → forward locally-originated changes to every peer.

    Returns ``batchItemFailures`` with the sequence number of every record that was not delivered
    (with ``ReportBatchItemFailures``, Lambda retries the batch from the lowest of them; the
    on-failure destination gets what exhausts its retries). REMOVE records are hard deletes, which
    this app never makes (deletes are tombstones), so they are logged and skipped.
    """
    batch = DynamoDBStreamEvent(event)
    failed: list[str] = []
    pending: list[tuple[str, Message]] = []  # (sequence number, message) in stream order
    for record in batch.records:
        if record.event_name == "REMOVE":
            log(logger, logging.WARNING, "ignoring hard delete in stream", keys=record.keys, seq=record.sequence_number)
            continue
        try:
            pending.append((record.sequence_number, record.new_message()))
        except ValidationError as error:
            log(logger, logging.ERROR, "unreadable stream record", seq=record.sequence_number, error=error.message)
            failed.append(record.sequence_number)
    if pending:
        try:
            result = overcast().replicator.forward([message for _, message in pending])
            undelivered = {_key(m) for m in result.failed}
        except Exception:  # nothing was confirmed delivered (bad settings, a bug): retry all of it
            logger.exception("replication forward failed")
            undelivered = {_key(m) for _, m in pending}
        failed.extend(seq for seq, message in pending if _key(message) in undelivered)
    if failed:
        log(logger, logging.WARNING, "stream batch partially failed", failed=len(failed), records=len(pending))
    order = {seq: i for i, seq in enumerate(r.sequence_number for r in batch.records)}
    return {"batchItemFailures": [{"itemIdentifier": seq} for seq in sorted(set(failed), key=order.__getitem__)]}


def anti_entropy(event: dict[str, Any] | None = None, context: Any = None) -> dict[str, Any]:
    """Scheduled repair pass. Fails the invocation when a peer could not be repaired, so the
    platform counts an error and alarms can fire."""
    from core import anti_entropy as anti_entropy_pass  # imported where used: only this entrypoint runs a pass

    window_s = int(os.environ.get("OVERCAST_ANTI_ENTROPY_WINDOW_S", "900"))
    remaining_ms = getattr(context, "get_remaining_time_in_millis", lambda: 300_000)()
    report = anti_entropy_pass.run(overcast(), window_s=window_s, budget_s=max(5.0, remaining_ms / 1000 - 20))
    summary = report.to_dict()
    log(logger, logging.INFO, "anti-entropy done", ok=summary["ok"], pushed=summary["pushed"], pulled=summary["pulled"])
    report.raise_for_errors()
    return summary


def _key(message: Message) -> tuple[str, str, str]:
    return (message.channel, message.id, str(message.version))

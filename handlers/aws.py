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
    OVERCAST_SECRETSMANAGER_ENDPOINT  endpoint URL of a local Secrets Manager (moto server); unset on AWS
    AWS_REGION                    set by Lambda; also the default for OVERCAST_REGION
    OVERCAST_ANTI_ENTROPY_WINDOW_S  how far back a scheduled pass compares (default 900)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from adapters.aws.events import ApiGatewayV1Event, ApiGatewayV2Event, infer, to_changes
from adapters.aws.secrets import SecretsManagerSecretStore
from adapters.aws.store import DynamoDBMessageStore, make_client
from adapters.http_peer import UrllibPeerTransport
from adapters.jwt_auth import authorizer_for
from core.bootstrap import Overcast, bootstrap
from core.errors import ValidationError
from core.http import Request, Response
from core.logs import get_logger, log
from core.settings import Settings
from handlers.kit import LazyApp, deliver_changes, serve_http

logger = get_logger("aws")


def build(environ: Mapping[str, str] | None = None) -> Overcast:
    """Build the app from the environment: one DynamoDB client, one store, one Overcast."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("OVERCAST_PROVIDER", "aws")
    if env.get("AWS_REGION"):
        env.setdefault("OVERCAST_REGION", env["AWS_REGION"])
    settings = Settings.from_env(env, secrets=SecretsManagerSecretStore.from_env(env))
    client = make_client(env.get("AWS_REGION") or None, env.get("OVERCAST_DYNAMODB_ENDPOINT") or None)
    store = DynamoDBMessageStore(
        client, env.get("OVERCAST_DYNAMODB_TABLE", ""), digests=env.get("OVERCAST_DYNAMODB_DIGESTS") or "scan"
    )
    # Metrics as CloudWatch embedded metric format (core/metrics.py).
    return bootstrap(
        settings, store, UrllibPeerTransport(), authorizer=authorizer_for(settings.auth), metrics_format="emf"
    )


#: The process-wide app (handlers.kit.LazyApp): built on the first invocation, retried after a failed build.
overcast = LazyApp(build)
reset = overcast.reset


# -- entrypoints --------------------------------------------------------------------------------


def http(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """API Gateway → core app → API Gateway. Never raises: every failure is a JSON response."""

    def parse() -> tuple[Request, Any]:
        shape = infer(event)
        if not isinstance(shape, ApiGatewayV1Event | ApiGatewayV2Event):
            raise ValidationError("the http function takes API Gateway events", code="unknown_event")
        request = shape.to_request()
        fallback_id = str(getattr(context, "aws_request_id", "") or "")
        if not request.request_id and fallback_id:
            request = request.with_request_id(fallback_id)
        return request, shape.to_response

    def unreadable(response: Response) -> dict[str, Any]:
        return ApiGatewayV2Event({}).to_response(response)

    return serve_http(logger, parse, unreadable, overcast)


def changes(event: dict[str, Any], context: Any = None) -> dict[str, list[dict[str, str]]]:
    """DynamoDB Streams batch → forward locally-originated changes to every peer.

    Returns ``batchItemFailures`` with the sequence number of every record whose push failed
    (with ``ReportBatchItemFailures``, Lambda retries the batch from the lowest of them; the
    on-failure destination gets what exhausts its retries). A record that cannot be read is
    poison: logged with its sequence number and acknowledged, never retried (handlers.kit). REMOVE
    records are hard deletes, which this app never makes (deletes are tombstones): skipped.
    """
    try:
        records = to_changes(event)
    except Exception as exc:  # not a stream batch at all: no retry can fix it
        log(logger, logging.ERROR, "unreadable stream batch acknowledged", error=f"{type(exc).__name__}: {exc}")
        return {"batchItemFailures": []}
    report = deliver_changes(logger, records, overcast)
    return {"batchItemFailures": [{"itemIdentifier": ident} for ident in dict.fromkeys(report.undelivered)]}


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

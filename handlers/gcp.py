"""Composition root of the Google Cloud provider: Cloud Functions entrypoints (functions-framework).

    http(request)                      HTTP function: flask.Request → the app → (body, status, headers)
    changes(cloud_event)               Eventarc CloudEvent (google.cloud.firestore.document.v1.written,
                                       protobuf DocumentEventData): replicate the change
    changes(data, context)             1st gen Firestore trigger (document.write): the same
    anti_entropy(event, context=None)  Cloud Scheduler → Pub/Sub → one anti-entropy pass

``main.py`` at the repository root re-exports these (the Python runtime loads ``main.py``).
The Firestore client, the store and the app are built once per process, on the first invocation
(importing never touches the network), and reused while the instance stays warm. An event
function raises when a change could not be pushed to every peer, so the platform retries it
(deploy with retries on); a change that can never be read is logged and dropped instead.

Environment (besides core's OVERCAST_* settings, see ``python -m core.settings``):

    OVERCAST_FIRESTORE_PROJECT     project of the database (default: GOOGLE_CLOUD_PROJECT, else the
                                   runtime's own project from its credentials)
    OVERCAST_FIRESTORE_DATABASE    database id (default "(default)")
    OVERCAST_FIRESTORE_COLLECTION  top-level collection (default "channels")
    OVERCAST_FIRESTORE_TIMEOUT_MS  bound on one store operation, retries included (default 5000)
    FIRESTORE_EMULATOR_HOST        127.0.0.1:PORT of a local emulator (local runs only)
    OVERCAST_ANTI_ENTROPY_WINDOW_S how far back a scheduled pass compares (default 900)
    OVERCAST_ANTI_ENTROPY_BUDGET_S time budget of one pass (default 240; keep under the timeout)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from google.auth import exceptions as auth_exceptions
from google.cloud import firestore

from adapters.gcp.events import to_changes, to_request, to_response
from adapters.gcp.store import FirestoreMessageStore
from adapters.http_peer import UrllibPeerTransport
from adapters.jwt_auth import authorizer_for
from core.bootstrap import Overcast, bootstrap
from core.errors import ConfigurationError, Unavailable
from core.http import Request
from core.logs import get_logger, log
from core.settings import Settings
from handlers.kit import LazyApp, deliver_changes, serve_http

logger = get_logger("gcp")


def make_client(project: str | None, database: str) -> firestore.Client:
    """A Firestore client; honours FIRESTORE_EMULATOR_HOST (then no credentials are needed)."""
    try:
        return firestore.Client(project=project or None, database=database or None)
    except auth_exceptions.GoogleAuthError as exc:
        raise ConfigurationError(f"Firestore credentials: {exc}") from exc
    except OSError as exc:  # "Project was not passed and could not be determined from the environment"
        raise ConfigurationError(f"Firestore project: {exc}; set OVERCAST_FIRESTORE_PROJECT") from exc


def build(environ: Mapping[str, str] | None = None, client: firestore.Client | None = None) -> Overcast:
    """Build the app from the environment (and an optional prebuilt client)."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("OVERCAST_PROVIDER", "gcp")
    settings = Settings.from_env(env)
    timeout_s = _timeout_ms(env.get("OVERCAST_FIRESTORE_TIMEOUT_MS", "5000")) / 1000
    if client is None:
        project = env.get("OVERCAST_FIRESTORE_PROJECT") or env.get("GOOGLE_CLOUD_PROJECT") or None
        client = make_client(project, env.get("OVERCAST_FIRESTORE_DATABASE") or "(default)")
    store = FirestoreMessageStore(
        client,
        collection=env.get("OVERCAST_FIRESTORE_COLLECTION") or "channels",
        timeout_s=timeout_s,
        ping_timeout_s=settings.deep_health_timeout_s,
    )
    # Metrics as Cloud Logging structured lines (core/metrics.py).
    return bootstrap(
        settings, store, UrllibPeerTransport(), authorizer=authorizer_for(settings.auth), metrics_format="cloudlogging"
    )


def _timeout_ms(text: str) -> int:
    if not text.strip().isdigit() or not 100 <= int(text) <= 60_000:
        raise ConfigurationError(f"OVERCAST_FIRESTORE_TIMEOUT_MS={text!r} must be a whole number from 100 to 60000")
    return int(text)


#: The process-wide app (handlers.kit.LazyApp): built on the first invocation, retried after a
#: failed build, so fixing an environment variable needs no code change.
overcast = LazyApp(build)


def reset() -> None:
    """Forget the built app and close its store (tests; a local runtime that changes the environment)."""
    overcast.reset(close=True)


# -- entrypoints --------------------------------------------------------------------------------


def http(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """functions-framework HTTP function. Never raises: every failure is a JSON response."""

    def parse() -> tuple[Request, Any]:
        return to_request(request), to_response

    return serve_http(logger, parse, to_response, overcast)


def changes(event: Any, context: Any = None) -> None:
    """The Firestore trigger, either delivery: an Eventarc (2nd gen) CloudEvent with protobuf (or
    JSON) DocumentEventData, called ``changes(cloud_event)`` (signature ``cloudevent``), or a 1st
    gen background event (providers/cloud.firestore/eventTypes/document.write), called
    ``changes(data, context)`` (signature ``event``).

    Forwards the changed message to every peer and RAISES if a push failed, so the platform
    retries the event (deploy with retries on). An event that cannot be read or a document that
    is not a message is poison, and a hard delete has nothing to send: both are logged and
    acknowledged (handlers.kit). Re-delivery is harmless: peers apply with put_if_newer, and
    records that arrived from a peer are not forwarded again (their origin is elsewhere).
    """
    report = deliver_changes(logger, to_changes(event, context), overcast)
    if not report.ok:
        raise Unavailable(
            f"replication of {', '.join(report.undelivered)} failed: {report.summary()}",
            retry_after=5,
            code="replication_failed",
        )
    if report.sent:
        log(logger, logging.INFO, "change replicated", event=report.delivered, sent=report.sent)


def anti_entropy(event: Any = None, context: Any = None) -> dict[str, Any]:
    """Scheduled repair pass (Pub/Sub message from Cloud Scheduler; the payload is ignored).
    Raises when a peer could not be repaired, so the invocation counts as failed and alerts fire."""
    from core import anti_entropy as anti_entropy_pass  # only the scheduled function pays for it

    window_s = int(os.environ.get("OVERCAST_ANTI_ENTROPY_WINDOW_S", "900"))
    budget_s = float(os.environ.get("OVERCAST_ANTI_ENTROPY_BUDGET_S", "240"))
    report = anti_entropy_pass.run(overcast(), window_s=window_s, budget_s=budget_s)
    summary = report.to_dict()
    log(logger, logging.INFO, "anti-entropy done", ok=summary["ok"], pushed=summary["pushed"], pulled=summary["pulled"])
    report.raise_for_errors()
    return summary

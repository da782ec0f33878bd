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
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from google.auth import exceptions as auth_exceptions
from google.cloud import firestore

from adapters.gcp.events import to_request, to_response
from adapters.gcp.store import FirestoreMessageStore
from adapters.http_peer import UrllibPeerTransport
from core.bootstrap import Overcast, bootstrap
from core.errors import ConfigurationError, OvercastError, Unavailable, ValidationError
from core.http import Response
from core.logs import get_logger, log
from core.settings import Settings

if TYPE_CHECKING:
    from adapters.gcp.events import FirestoreDocumentEvent

logger = get_logger("gcp")
_overcast: Overcast | None = None
_lock = threading.Lock()


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
    return bootstrap(settings, store, UrllibPeerTransport())


def _timeout_ms(text: str) -> int:
    if not text.strip().isdigit() or not 100 <= int(text) <= 60_000:
        raise ConfigurationError(f"OVERCAST_FIRESTORE_TIMEOUT_MS={text!r} must be a whole number from 100 to 60000")
    return int(text)


def overcast() -> Overcast:
    """The process-wide app, built on first use. A failed build (bad configuration) raises and is
    retried on the next invocation, so fixing an environment variable needs no code change."""
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
        built, _overcast = _overcast, None
    if built is not None:
        built.store.close()


# -- entrypoints --------------------------------------------------------------------------------


def http(request: Any) -> tuple[bytes, int, dict[str, str]]:
    """functions-framework HTTP function. Never raises: every failure is a JSON response."""
    try:
        core_request = to_request(request)
    except OvercastError as error:
        return to_response(Response.from_error(error))
    try:
        app = overcast().app
    except OvercastError as error:  # misconfiguration: a 503 that says what to fix
        log(logger, logging.ERROR, "cannot build the app", code=error.code, error=error.message)
        return to_response(Response.from_error(error, core_request.request_id))
    except Exception:
        logger.exception("cannot build the app")
        return to_response(Response.from_error(OvercastError("internal error; see logs"), core_request.request_id))
    return to_response(app.handle(core_request))


def changes(event: Any, context: Any = None) -> None:
    """The Firestore trigger, either delivery: an Eventarc (2nd gen) CloudEvent with protobuf (or
    JSON) DocumentEventData, called ``changes(cloud_event)`` (signature ``cloudevent``), or a 1st
    gen background event (providers/cloud.firestore/eventTypes/document.write), called
    ``changes(data, context)`` (signature ``event``)."""
    from adapters.gcp.events import FirestoreDocumentEvent  # the HTTP function's cold start skips it

    try:
        if context is None:
            parsed = FirestoreDocumentEvent.from_cloud_event(event)
        else:
            parsed = FirestoreDocumentEvent.from_background(event, context)
    except ValidationError as error:
        log(logger, logging.ERROR, "unreadable Firestore event dropped", error=error.message)
        return
    replicate(parsed)


def replicate(event: FirestoreDocumentEvent) -> None:
    """Forward the changed message to every peer; raise (→ platform retry) if any push failed.

    Events that no retry can fix are dropped with an error log: a hard delete (this app only
    writes tombstones, which arrive as updates) and a document that is not a message record.
    Re-delivery is harmless: peers apply with put_if_newer, and records that arrived from a peer
    are not forwarded again (their origin is elsewhere).
    """
    try:
        message = event.message()
    except ValidationError as error:
        log(
            logger,
            logging.ERROR,
            "Firestore document is not a message; dropped",
            document=event.document,
            error=error.message,
        )
        return
    if message is None:
        log(
            logger,
            logging.WARNING,
            "hard delete ignored (deletes are tombstones)",
            document=event.document,
            event_id=event.event_id,
        )
        return
    result = overcast().replicator.forward([message])
    if not result.ok:
        raise Unavailable(
            f"replication of {event.document} failed: {'; '.join(result.errors)}",
            retry_after=5,
            code="replication_failed",
        )
    log(
        logger,
        logging.INFO,
        "change replicated",
        document=event.document,
        version=str(message.version),
        sent=result.sent,
    )


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

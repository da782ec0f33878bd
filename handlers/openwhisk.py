"""Composition root of the openwhisk provider.

    http(event)          HTTP function: platform event -> core app -> platform response (never raises)
    changes(event)       change feed / stream trigger -> forward locally-originated changes to peers;
                         reports failure when a push failed, so the platform retries
    anti_entropy(event)  scheduled trigger -> one anti-entropy pass against every peer

The SDK client, the store and the app are built once per process on the first invocation (never
at import) and reused while the instance stays warm.

Environment (besides core's OVERCAST_* settings, see ``python -m core.settings``; docs/openwhisk.md):

    TODO(scaffold): the provider's own variables (endpoint, database, credentials by reference)
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from adapters.http_peer import UrllibPeerTransport
from adapters.openwhisk.events import to_messages, to_request, to_response
from adapters.openwhisk.store import OpenwhiskMessageStore
from core.bootstrap import Overcast, bootstrap
from core.errors import OvercastError, Unavailable
from core.http import Response
from core.logs import get_logger, log
from core.settings import Settings

logger = get_logger("openwhisk")
_overcast: Overcast | None = None
_lock = threading.Lock()


def make_client(env: Mapping[str, str]) -> Any:
    raise NotImplementedError("TODO(scaffold): build the SDK client from env; ConfigurationError naming a bad variable")


def build(environ: Mapping[str, str] | None = None, client: Any = None) -> Overcast:
    env = dict(os.environ if environ is None else environ)
    env.setdefault("OVERCAST_PROVIDER", "openwhisk")
    settings = Settings.from_env(env)
    store = OpenwhiskMessageStore(client if client is not None else make_client(env))
    return bootstrap(settings, store, UrllibPeerTransport())


def overcast() -> Overcast:
    global _overcast
    if _overcast is None:
        with _lock:
            if _overcast is None:
                _overcast = build()
    return _overcast


def install(app: Overcast | None) -> None:
    """Use a prebuilt app (a local runtime, tests), or forget it with None."""
    global _overcast
    with _lock:
        _overcast = app


def http(event: Mapping[str, Any]) -> Any:
    try:
        request = to_request(event)
    except OvercastError as error:
        return to_response(Response.from_error(error))
    try:
        app = overcast().app
    except OvercastError as error:  # misconfiguration: a 503 that says what to fix
        log(logger, logging.ERROR, "cannot build the app", code=error.code, error=error.message)
        return to_response(Response.from_error(error, request.request_id))
    return to_response(app.handle(request))


def changes(event: Mapping[str, Any]) -> dict[str, Any]:
    messages = to_messages(event)
    if not messages:
        return {"forwarded": 0}
    result = overcast().replicator.forward(messages)
    if result.failed:
        # TODO(scaffold): report the failure the way this platform retries (raise, an error result, ...)
        raise Unavailable(f"{len(result.failed)} changes not delivered", retry_after=5, code="replication_failed")
    return {"forwarded": result.sent}


def anti_entropy(event: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from core import anti_entropy as anti_entropy_pass

    report = anti_entropy_pass.run(overcast(), window_s=int(os.environ.get("OVERCAST_ANTI_ENTROPY_WINDOW_S", "900")))
    report.raise_for_errors()
    return report.to_dict()

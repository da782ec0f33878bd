"""Composition root of the Azure provider: the Azure Functions entrypoints (Python programming model
v1 — one ``function.json`` per function, which is what serverless-azure-functions generates).

    http(req, context)             HTTP trigger, route "{*path}" → core app → HttpResponse
    changes(documents, context)    Cosmos DB trigger (change feed) → replication to peers;
                                   raises when a push failed, so the retry policy re-delivers
    anti_entropy(timer, context)   timer trigger → one anti-entropy pass against every peer

serverless-azure-functions maps ``handler: handlers/azure.http`` to ``"scriptFile":
"../handlers/azure.py", "entryPoint": "http"`` in ``http/function.json``; the Python worker
imports the script as module ``__app__.handlers.azure`` (one module for all three functions, so
they share the process-wide app), and the app root is on ``sys.path``, so ``core`` and
``adapters`` import as usual. Parameter names match the binding names in function.json (``req``,
``documents``, ``timer``; ``context`` is injected by the worker). The worker resolves the
annotations when it loads a function and refuses a ``context`` annotated with anything but
``func.Context`` itself (no ``| None``), so ``context`` is a required parameter.

The Cosmos client, the store and the app are built once per worker process, on the first
invocation (not at import: importing stays cheap and never touches the network), and reused
while the worker stays warm.

Environment (besides core's OVERCAST_* settings, see ``python -m core.settings``; docs/azure.md):

    COSMOS_ENDPOINT     account endpoint, https://<account>.documents.azure.com:443/   (required)
    COSMOS_KEY          account key (a Key Vault reference in the app settings)         (required)
    COSMOS_DATABASE     database name (default "overcast")
    COSMOS_CONTAINER    container name, partition key /channel (default "messages")
    OVERCAST_AZURE_ROUTE_PREFIX     host.json routePrefix (default "api")
    OVERCAST_ANTI_ENTROPY_WINDOW_S  how far back a scheduled pass compares (default 900)
    REGION_NAME         set by App Service; the default for OVERCAST_REGION
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import azure.functions as func

from adapters.azure.events import DEFAULT_ROUTE_PREFIX, to_changes, to_request, to_response
from adapters.azure.store import CosmosMessageStore, cosmos_client
from adapters.http_peer import UrllibPeerTransport
from adapters.jwt_auth import authorizer_for
from core.bootstrap import Overcast, bootstrap
from core.errors import ConfigurationError, Unavailable
from core.http import Request
from core.logs import get_logger, log
from core.settings import Settings
from handlers.kit import LazyApp, deliver_changes, serve_http

logger = get_logger("azure")

DEFAULT_DATABASE = "overcast"
DEFAULT_CONTAINER = "messages"


def build(environ: Mapping[str, str] | None = None, *, container: Any = None) -> Overcast:
    """Build the app from the environment: one CosmosClient, one store, one Overcast.

    ``container`` (a prebuilt ``ContainerProxy``) skips building the client: the local host and
    tests pass one pointed at the emulator.
    """
    env = dict(os.environ if environ is None else environ)
    env.setdefault("OVERCAST_PROVIDER", "azure")
    if env.get("REGION_NAME"):
        env.setdefault("OVERCAST_REGION", env["REGION_NAME"].replace(" ", "").lower())
    settings = Settings.from_env(env)
    if container is None:
        endpoint, key = env.get("COSMOS_ENDPOINT", "").strip(), env.get("COSMOS_KEY", "").strip()
        if not endpoint.startswith("https://"):
            raise ConfigurationError("COSMOS_ENDPOINT must be the account's https:// endpoint")
        if not key:
            raise ConfigurationError("COSMOS_KEY is not set (a Key Vault reference in the app settings)")
        client = cosmos_client(endpoint, key, timeout_s=5.0, connection_timeout_s=2.0)
        database = client.get_database_client(env.get("COSMOS_DATABASE") or DEFAULT_DATABASE)
        container = database.get_container_client(env.get("COSMOS_CONTAINER") or DEFAULT_CONTAINER)
    # The store's ping bound stays under the deep health check's own bound (Route 53 waits 2 s).
    store = CosmosMessageStore(container, ping_timeout_s=min(1.5, settings.deep_health_timeout_s))
    # Metrics as Application Insights structured lines (core/metrics.py).
    return bootstrap(
        settings, store, UrllibPeerTransport(), authorizer=authorizer_for(settings.auth), metrics_format="appinsights"
    )


#: The process-wide app (handlers.kit.LazyApp): built on the first invocation, retried after a
#: failed build, so fixing an app setting needs no redeploy of code. ``install`` puts a prebuilt
#: one in place (the local host, tests).
overcast = LazyApp(build)
install = overcast.install


# -- entrypoints --------------------------------------------------------------------------------


def http(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    """HTTP trigger → core app → HttpResponse. Never raises: every failure is a JSON response."""

    def parse() -> tuple[Request, Any]:
        request = to_request(
            req,
            route_prefix=os.environ.get("OVERCAST_AZURE_ROUTE_PREFIX", DEFAULT_ROUTE_PREFIX),
            invocation_id=str(getattr(context, "invocation_id", "") or ""),
        )
        return request, to_response

    return serve_http(logger, parse, to_response, overcast)


class ReplicationIncomplete(Unavailable):
    """Raised by the change-feed function so the Functions retry policy re-delivers the batch."""

    code = "replication_incomplete"


def changes(documents: func.DocumentList, context: func.Context) -> None:
    """Cosmos DB change feed → forward locally-originated changes to every peer.

    If any push failed the invocation RAISES: with the function's retry policy the host runs the
    same batch again and the lease checkpoint does not advance past it meanwhile (re-delivery is
    harmless, peers apply last-writer-wins). When the retries are exhausted the host moves on and
    the scheduled anti-entropy pass repairs what is still missing. A failed push is never
    reported as done.
    """
    report = deliver_changes(logger, to_changes(documents), overcast)
    if not report.ok:
        retry = getattr(context, "retry_context", None)
        log(
            logger,
            logging.WARNING,
            "change-feed batch not delivered",
            retry=getattr(retry, "retry_count", None),
            max_retries=getattr(retry, "max_retry_count", None),
        )
        raise ReplicationIncomplete(report.summary(), retry_after=10)
    if report.sent:
        log(logger, logging.INFO, "change-feed batch replicated", sent=report.sent, records=report.records)


def anti_entropy(timer: func.TimerRequest, context: func.Context) -> None:
    """Scheduled repair pass. Fails the invocation when a peer could not be repaired, so the
    platform counts a failure and alerts can fire."""
    from core import anti_entropy as anti_entropy_pass  # only the scheduled function pays for it

    if getattr(timer, "past_due", False):
        log(logger, logging.WARNING, "anti-entropy timer is past due")
    window_s = int(os.environ.get("OVERCAST_ANTI_ENTROPY_WINDOW_S", "900"))
    # Consumption plan functions time out at 5 min by default (host.json functionTimeout).
    report = anti_entropy_pass.run(overcast(), window_s=window_s, budget_s=240.0)
    summary = report.to_dict()
    log(logger, logging.INFO, "anti-entropy done", ok=summary["ok"], pushed=summary["pushed"], pulled=summary["pulled"])
    report.raise_for_errors()

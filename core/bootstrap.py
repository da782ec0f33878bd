"""The composition root's one call: every port comes in as an argument, the app comes out.

Each ``handlers/<provider>`` builds its adapters and calls ``bootstrap`` once per process, on
first use (not at import, so cold starts stay cheap and import never touches the network).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from core.app import HttpApp
from core.auth import AccessPolicy, DisabledAuthorizer, authorizer_for
from core.logs import configure, get_logger, log
from core.metrics import MetricsEmitter
from core.model import HybridLogicalClock
from core.ports import Authorizer, MessageStore, PeerTransport
from core.replication import Replicator
from core.replication_status import ReplicationStatus
from core.service import MessageService
from core.settings import Settings

_logger = get_logger("bootstrap")


@dataclass(frozen=True)
class Overcast:
    settings: Settings
    store: MessageStore
    clock: HybridLogicalClock
    service: MessageService
    app: HttpApp
    replicator: Replicator
    status: ReplicationStatus


def bootstrap(
    settings: Settings,
    store: MessageStore,
    transport: PeerTransport,
    clock: HybridLogicalClock | None = None,
    authorizer: Authorizer | None = None,
    metrics_format: str = "log",
) -> Overcast:
    """``authorizer`` verifies bearer tokens (the handler builds one from settings.auth when an
    issuer is configured, e.g. ``adapters.jwt_auth.authorizer_for``); without one, writes are
    refused with a 503 naming the missing setting, unless auth is explicitly disabled.
    ``metrics_format`` is the platform's native metric form (core/metrics.py), chosen by the
    handler; OVERCAST_METRICS_FORMAT overrides it."""
    configure(settings.log_level, provider=settings.provider, region=settings.region)
    policy = AccessPolicy(authorizer_for(settings.auth, authorizer), settings.auth)
    if isinstance(policy.authorizer, DisabledAuthorizer):
        log(_logger, logging.WARNING, "AUTH DISABLED: anyone can post and delete (OVERCAST_AUTH_DISABLED=true)")
    elif not settings.auth.configured:
        log(_logger, logging.ERROR, "auth not configured: writes answer 503 until OVERCAST_AUTH_ISSUER is set")
    clock = clock or HybridLogicalClock(settings.origin)
    service = MessageService(store, clock, settings.limits)
    now_s = lambda: int(time.time())  # noqa: E731
    metrics = MetricsEmitter(settings.metrics_format or metrics_format, settings.origin)
    status = ReplicationStatus(
        settings.origin,
        [p.name for p in settings.peers],
        max_skew_s=settings.replication_max_skew_s,
        lag_bound_s=settings.replication_lag_bound_s,
        metrics=metrics,
    )
    replicator = Replicator(
        settings.origin, settings.peers, transport, now_s, settings.limits, settings.replication_timeout_s, status
    )
    app = HttpApp(service, settings, now_s, policy, status)
    return Overcast(settings, store, clock, service, app, replicator, status)

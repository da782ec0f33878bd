"""The composition root's one call: every port comes in as an argument, the app comes out.

Each ``handlers/<provider>`` builds its adapters and calls ``bootstrap`` once per process, on
first use (not at import, so cold starts stay cheap and import never touches the network).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from core.app import HttpApp
from core.logs import configure
from core.model import HybridLogicalClock
from core.ports import MessageStore, PeerTransport
from core.replication import Replicator
from core.service import MessageService
from core.settings import Settings


@dataclass(frozen=True)
class Overcast:
    settings: Settings
    store: MessageStore
    clock: HybridLogicalClock
    service: MessageService
    app: HttpApp
    replicator: Replicator


def bootstrap(
    settings: Settings,
    store: MessageStore,
    transport: PeerTransport,
    clock: HybridLogicalClock | None = None,
) -> Overcast:
    configure(settings.log_level, provider=settings.provider, region=settings.region)
    clock = clock or HybridLogicalClock(settings.origin)
    service = MessageService(store, clock, settings.limits)
    now_s = lambda: int(time.time())  # noqa: E731
    replicator = Replicator(
        settings.origin, settings.peers, transport, now_s, settings.limits, settings.replication_timeout_s
    )
    return Overcast(settings, store, clock, service, HttpApp(service, settings, now_s), replicator)

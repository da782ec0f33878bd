"""Clouds in one process for replication tests: each an Overcast over its own store, wired to the
others through a transport that calls the peer's HttpApp directly (the same signed bytes a real
HTTP transport would carry), with switches to take a link down."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from core.bootstrap import Overcast, bootstrap
from core.errors import Unavailable
from core.http import Request
from core.model import HybridLogicalClock
from core.ports import MessageStore, PeerResponse, PeerTransport
from core.settings import Settings


@dataclass
class AppTransport(PeerTransport):
    """Delivers to ``apps[url-prefix]`` in-process; ``down`` holds names of unreachable peers."""

    apps: dict[str, Overcast] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        base, _, rest = url.partition("/replication/")
        name = base.rsplit("/", 1)[-1]
        self.calls.append((name, rest))
        if name in self.down or name not in self.apps:
            raise Unavailable(f"{url}: connection refused", code="peer_unavailable")
        request = Request("POST", "/replication/" + rest, {}, {k.lower(): v for k, v in headers.items()}, body)
        response = self.apps[name].app.handle(request)
        return PeerResponse(response.status, response.body)


def secrets_env(names: Sequence[str], me: str) -> dict[str, str]:
    """OVERCAST_PEERS and one secret variable per pair (the pair's secret is its sorted names)."""
    peers = [
        {"name": n, "url": f"http://peer.invalid/{n}", "secret_env": f"SECRET_{n.upper()}"} for n in names if n != me
    ]
    env = {
        "OVERCAST_PROVIDER": me,
        "OVERCAST_ORIGIN": me,
        "OVERCAST_PEERS": json.dumps(peers),
        "OVERCAST_LOG_LEVEL": "ERROR",
    }
    for n in names:
        if n != me:
            env[f"SECRET_{n.upper()}"] = "secret-" + "-".join(sorted((n, me)))
    return env


def mesh(
    stores: Mapping[str, MessageStore],
    now_ms: Mapping[str, Callable[[], int]] | None = None,
    now_s: Callable[[], int] | None = None,
) -> tuple[dict[str, Overcast], AppTransport]:
    """One Overcast per named store, all wired to each other through one AppTransport."""
    transport = AppTransport()
    names = list(stores)
    for name, store in stores.items():
        settings = Settings.from_env(secrets_env(names, name))
        clock = HybridLogicalClock(name, (now_ms or {}).get(name))
        overcast = bootstrap(settings, store, transport, clock)
        if now_s is not None:
            overcast.app.now_s = now_s
            overcast.replicator.now_s = now_s
        transport.apps[name] = overcast
    return dict(transport.apps), transport

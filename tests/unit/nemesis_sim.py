"""The nemesis workload on clouds in one process, on a network the seed controls.

Each cloud is an Overcast over an in-memory store, with a hand-driven clock (skewable). Every
write a cloud originates is forwarded by its real Replicator; the signed batches wait in a
queue, and between steps the network delivers some of them (in any order, some twice) to the
receiver's real ``POST /replication/batch`` route. The nemesis partitions the link (batches are
lost; the origin's stream delivered them, so only anti-entropy can repair), skews a cloud's
clock, floods duplicates, and takes a store away. The heal runs one anti-entropy pass from each
cloud. The same failover.nemesis.workload drives it as drives the real mesh.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core import anti_entropy
from core.bootstrap import Overcast, bootstrap
from core.errors import Unavailable
from core.http import Request
from core.model import HybridLogicalClock, Message
from core.ports import MessageStore, PeerResponse, PeerTransport
from core.replication import ORIGIN_HEADER
from core.settings import Settings
from failover.nemesis.workload import Workload
from tests.fakes import InMemoryMessageStore
from tests.property.inprocess import secrets_env

BASE_MS = 1_760_000_000_000


class VersionBlindStore(InMemoryMessageStore):
    """A planted bug: put_if_newer overwrites whatever it holds, newer or not."""

    def _put_if_newer(self, message: Message) -> bool:
        self._check()
        with self._lock:
            self._records[(message.channel, message.id)] = message
            return True


@dataclass
class QueueTransport(PeerTransport):
    """Batches wait in ``queue`` (the network); anti-entropy reads are answered at once."""

    apps: dict[str, Overcast] = field(default_factory=dict)
    queue: list[tuple[str, Request]] = field(default_factory=list)
    cut: set[str] = field(default_factory=set)  # clouds whose links are partitioned
    sent: list[tuple[str, Request]] = field(default_factory=list)  # every batch ever handed over

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        name, _, rest = url.removeprefix("http://peer.invalid/").partition("/replication/")
        sender = {k.lower(): v for k, v in headers.items()}.get(ORIGIN_HEADER.lower(), "")
        request = Request("POST", "/replication/" + rest, {}, {k.lower(): v for k, v in headers.items()}, body)
        if rest == "batch":
            if name in self.cut or sender in self.cut:
                return PeerResponse(200, b"{}")  # the stream handed it over; the network lost it
            self.queue.append((name, request))
            self.sent.append((name, request))
            return PeerResponse(200, b"{}")
        if name in self.cut or sender in self.cut:
            raise Unavailable(f"{url}: partitioned", code="peer_unavailable")
        response = self.apps[name].app.handle(request)
        return PeerResponse(response.status, response.body)

    def deliver(self, index: int, keep: bool = False) -> None:
        name, request = self.queue[index] if keep else self.queue.pop(index)
        self.apps[name].app.handle(request)


class AppTarget:
    def __init__(self, overcast: Overcast) -> None:
        self.overcast = overcast

    def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None, timeout: float = 10.0
    ) -> tuple[int, Any]:
        raw = json.dumps(body).encode() if body is not None else b""
        headers = {"content-type": "application/json", **{k.lower(): v for k, v in (headers or {}).items()}}
        response = self.overcast.app.handle(Request(method, path, {}, headers, raw))
        return response.status, (json.loads(response.body) if response.body else None)


class SimNemesis:
    def __init__(self, world: SimWorld) -> None:
        self.world = world

    def act(self, rng: random.Random) -> dict[str, Any]:
        w = self.world
        name = rng.choice(sorted(w.clouds))
        fault = rng.choice(["partition", "heal-partition", "skew", "duplicates", "store-down", "store-up"])
        if fault == "partition":
            w.transport.cut.add(name)
        elif fault == "heal-partition":
            w.transport.cut.discard(name)
        elif fault == "skew":
            w.now[name] += rng.randint(-3000, 3000)
        elif fault == "duplicates" and w.transport.queue:
            for _ in range(5):
                w.transport.deliver(rng.randrange(len(w.transport.queue)), keep=True)
        elif fault == "store-down":
            w.stores[name].available = False
        elif fault == "store-up":
            w.stores[name].available = True
        return {"f": fault, "cloud": name}

    def lift(self) -> list[dict[str, Any]]:
        self.world.transport.cut.clear()
        for store in self.world.stores.values():
            store.available = True  # type: ignore[attr-defined]
        return [{"f": "lift-all"}]


class SimWorld:
    def __init__(self, names: tuple[str, ...], store_class: type[InMemoryMessageStore], seed: int) -> None:
        self.rng = random.Random(seed ^ 0x5EED)
        self.transport = QueueTransport()
        self.stores: dict[str, MessageStore] = {n: store_class() for n in names}
        self.now = {n: BASE_MS for n in names}
        self.clouds: dict[str, Overcast] = {}
        self.cursor: dict[str, str | None] = {n: None for n in names}
        for name in names:
            env = {**secrets_env(list(names), name), "OVERCAST_AUTH_DISABLED": "true"}
            clock = HybridLogicalClock(name, lambda n=name: self.now[n])  # type: ignore[misc]
            overcast = bootstrap(Settings.from_env(env), self.stores[name], self.transport, clock)
            overcast.app.now_s = overcast.replicator.now_s = lambda: BASE_MS // 1000
            self.transport.apps[name] = overcast
            self.clouds[name] = overcast

    def between(self) -> None:
        """Time passes, each cloud's change stream forwards its new local writes, the network
        delivers some of what waits (random order, sometimes twice)."""
        for name, overcast in self.clouds.items():
            self.now[name] += self.rng.randint(0, 30)
            if not self.stores[name].available:  # type: ignore[attr-defined]
                continue
            changes = overcast.store.changes_since(self.cursor[name], 1000)
            if changes:
                self.cursor[name] = str(max(m.version for m in changes))
                overcast.replicator.forward(changes)
        for _ in range(self.rng.randint(0, 3)):
            if self.transport.queue:
                index = self.rng.randrange(len(self.transport.queue))
                self.transport.deliver(index, keep=self.rng.random() < 0.2)

    def heal(self) -> None:
        """Half of what is in flight arrives, one anti-entropy pass from each cloud, then the rest
        arrives late and the platform re-delivers old batches (a retry storm): last-writer-wins
        must make every late or repeated delivery a no-op."""
        self.between()
        for _ in range(len(self.transport.queue) // 2):
            self.transport.deliver(self.rng.randrange(len(self.transport.queue)))
        for overcast in self.clouds.values():
            anti_entropy.run(overcast, window_s=0)
        while self.transport.queue:
            self.transport.deliver(self.rng.randrange(len(self.transport.queue)))
        for name, request in self.rng.sample(self.transport.sent, min(20, len(self.transport.sent))):
            self.transport.apps[name].app.handle(request)

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        return {n: [m.to_record() for m in s.changes_since(None, 10_000)] for n, s in self.stores.items()}

    def workload(self, seed: int, steps: int) -> Workload:
        return Workload(
            clouds={n: AppTarget(o) for n, o in self.clouds.items()},
            nemesis=SimNemesis(self),
            heal=self.heal,
            snapshot=self.snapshot,
            seed=seed,
            steps=steps,
            nemesis_share=0.15,
            between=self.between,
        )

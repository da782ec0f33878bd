"""Convergence, as a property: whatever the network does, three replicas end identical.

Three clouds (each an Overcast: MessageService, HLC with its own skewed, hand-driven clock,
HttpApp) take random writes — posts with and without Idempotency-Keys (the same key on two
clouds is a client retrying after failover), deletes, concurrent edits — while every change
each cloud originates travels to every peer as a signed batch through the real
``POST /replication/batch`` route, on a network that delivers in any order, duplicates, and
loses. Then the losses heal one of two ways: the platform re-delivers what it never got
acknowledged, or each cloud runs one anti-entropy pass (which repairs even what was lost for
good). Afterwards:

* every store holds identical content (``changes_since(None, ...)``, tombstones included);
* each record holds the greatest version ever written for its key (last-writer-wins, the same
  deterministic winner everywhere);
* no acknowledged write is lost: every acknowledged post or edit is present, or superseded by a
  newer version or a tombstone;
* no duplicates: one record per idempotency key, and no record nobody acknowledged.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.local.store import SqliteMessageStore
from core import anti_entropy
from core.bootstrap import Overcast
from core.errors import Conflict, IdempotencyMismatch, NotFound
from core.http import Request
from core.model import Message, idempotent_message_id
from core.ports import MessageStore
from core.replication import BATCH_PATH, encode_batch, signed_headers
from tests.fakes import InMemoryMessageStore
from tests.property.inprocess import mesh

CLOUDS = ("aws", "azure", "gcp")
CHANNELS = ("london", "portland")
BASE_MS = 1_760_000_000_000


@dataclass
class World:
    clouds: dict[str, Overcast]
    now: dict[str, int]
    in_flight: list[tuple[str, Message]] = field(default_factory=list)  # (to cloud, record)
    lost: list[tuple[str, Message]] = field(default_factory=list)
    written: dict[tuple[str, str], list[Message]] = field(default_factory=dict)  # every version, acked
    keys: dict[tuple[str, str], str] = field(default_factory=dict)  # (channel, idem key) -> id

    def emit(self, origin: str, message: Message) -> None:
        """The origin's change stream saw a write: it leaves for every peer (maybe many times)."""
        self.written.setdefault((message.channel, message.id), []).append(message)
        self.in_flight.extend((peer, message) for peer in CLOUDS if peer != origin)

    def deliver(self, target: str, messages: list[Message]) -> None:
        """One signed batch through the receiver's real HTTP route, from the records' origin."""
        sender = messages[0].origin
        cloud = self.clouds[target]
        peer = self.clouds[sender].settings.peer(target)
        assert peer is not None
        body = encode_batch(sender, messages)
        headers = signed_headers(sender, peer.secret, cloud.app.now_s(), body)
        response = cloud.app.handle(Request("POST", BATCH_PATH, {}, headers, body))
        assert response.status == 200, response.body


def build(stores: dict[str, MessageStore], skew: dict[str, int]) -> World:
    now = {name: BASE_MS + skew[name] for name in CLOUDS}
    clocks: dict[str, Callable[[], int]] = {name: (lambda n=name: now[n]) for name in CLOUDS}
    clouds, _ = mesh(stores, clocks)
    return World(clouds, now)


def drive(world: World, data: st.DataObject, steps: int) -> None:
    for _ in range(steps):
        action = data.draw(st.sampled_from(["post", "post", "post_key", "delete", "edit", "tick", "net", "net", "net"]))
        cloud_name = data.draw(st.sampled_from(CLOUDS))
        cloud = world.clouds[cloud_name]
        if action == "tick":
            world.now[cloud_name] += data.draw(st.integers(0, 40))
        elif action in ("post", "post_key"):
            channel = data.draw(st.sampled_from(CHANNELS))
            text = data.draw(st.sampled_from(["hello", "hi", "bonjour"]))
            key = data.draw(st.sampled_from(["k1", "k2", "k3"])) if action == "post_key" else None
            try:
                result = cloud.service.post(channel, "ada", text, key)
            except (Conflict, IdempotencyMismatch):
                continue  # the client got an error: not acknowledged
            if key is not None:
                world.keys[(channel, key)] = result.message.id
            if result.created:
                world.emit(cloud_name, result.message)
        elif action == "delete" and world.written:
            channel, message_id = data.draw(st.sampled_from(list(world.written)))
            try:
                cloud.service.delete(channel, message_id)
            except NotFound:
                continue  # not (yet) here, or already deleted here
            tombstone = cloud.store.get(channel, message_id)
            assert tombstone is not None and tombstone.deleted
            world.emit(cloud_name, tombstone)
        elif action == "edit" and world.written:
            # A concurrent edit: the same record rewritten here while peers may be editing it too.
            channel, message_id = data.draw(st.sampled_from(list(world.written)))
            current = cloud.store.get(channel, message_id)
            if current is None or current.deleted:
                continue
            cloud.clock.observe(current.version)
            edited = replace(current, text=f"edited in {cloud_name}", version=cloud.clock.tick())
            assert cloud.store.put_if_newer(edited)
            world.emit(cloud_name, edited)
        elif action == "net" and world.in_flight:
            index = data.draw(st.integers(0, len(world.in_flight) - 1))
            fate = data.draw(st.sampled_from(["deliver", "deliver", "duplicate", "lose", "batch"]))
            target, message = world.in_flight[index]
            if fate == "lose":
                world.lost.append(world.in_flight.pop(index))
            elif fate == "duplicate":
                world.deliver(target, [message])  # stays in flight: it will arrive again
            elif fate == "deliver":
                world.in_flight.pop(index)
                world.deliver(target, [message])
            else:  # every in-flight record from this origin to this target, in a shuffled batch
                group = [m for t, m in world.in_flight if t == target and m.origin == message.origin]
                world.in_flight = [
                    (t, m) for t, m in world.in_flight if not (t == target and m.origin == message.origin)
                ]
                world.deliver(target, data.draw(st.permutations(group)))


def heal(world: World, data: st.DataObject) -> str:
    how = data.draw(st.sampled_from(["redeliver", "anti_entropy"]))
    if how == "redeliver":
        # The platform retries everything not acknowledged, in any order, some of it twice.
        backlog = data.draw(st.permutations(world.in_flight + world.lost))
        world.in_flight, world.lost = [], []
        for target, message in backlog:
            world.deliver(target, [message])
        for target, message in backlog[: data.draw(st.integers(0, len(backlog)))]:
            world.deliver(target, [message])
    else:
        # What is still in flight may or may not arrive; anti-entropy must not care.
        for target, message in world.in_flight:
            if data.draw(st.booleans()):
                world.deliver(target, [message])
        world.in_flight, world.lost = [], []
        for name in CLOUDS:
            report = anti_entropy.run(world.clouds[name], window_s=0)
            assert report.ok, report.to_dict()
    return how


def check(world: World) -> None:
    contents = {name: [m.to_record() for m in c.store.changes_since(None, 10_000)] for name, c in world.clouds.items()}
    assert contents["aws"] == contents["azure"] == contents["gcp"], "replicas differ"
    final = {(r["channel"], r["id"]): r for r in contents["aws"]}
    # No duplicates and nothing unacknowledged: exactly the keys someone wrote.
    assert set(final) == set(world.written)
    for (channel, key), message_id in world.keys.items():
        assert message_id == idempotent_message_id(channel, key) and (channel, message_id) in final
    for key, versions in world.written.items():
        winner = max(versions, key=lambda m: m.version)
        # LWW: the greatest version ever acknowledged wins, everywhere, with its content.
        assert final[key] == winner.to_record(), f"{key}: {final[key]['version']} is not {winner.version}"
        # Hence no acknowledged write is lost: each is the winner or older than it.
        assert all(str(m.version) <= final[key]["version"] for m in versions)


skews = st.fixed_dictionaries({name: st.integers(-2000, 2000) for name in CLOUDS})


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(skew=skews, data=st.data())
def test_any_delivery_schedule_converges_in_memory(skew: dict[str, int], data: st.DataObject) -> None:
    world = build({name: InMemoryMessageStore() for name in CLOUDS}, skew)
    drive(world, data, data.draw(st.integers(1, 60)))
    heal(world, data)
    check(world)


@contextmanager
def sqlite_stores() -> Iterator[dict[str, MessageStore]]:
    with tempfile.TemporaryDirectory(prefix="overcast-prop-") as tmp:
        stores: dict[str, MessageStore] = {name: SqliteMessageStore(Path(tmp) / f"{name}.sqlite") for name in CLOUDS}
        try:
            yield stores
        finally:
            for store in stores.values():
                store.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(skew=skews, data=st.data())
def test_the_same_property_holds_on_sqlite_stores(skew: dict[str, int], data: st.DataObject) -> None:
    """The merge lives in each store's native conditional write: check a real one agrees."""
    with sqlite_stores() as stores:
        world = build(stores, skew)
        drive(world, data, data.draw(st.integers(1, 40)))
        heal(world, data)
        check(world)

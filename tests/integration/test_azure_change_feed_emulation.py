"""The local host's change-feed emulation (runtime/azure.py) keeps the trigger's promises: starts at
"now", delivers each change once as a real func.DocumentList, in commit order (not version order),
never advances past a batch whose function raised until the retries are spent, does not skip a
write that committed late, and resumes from its lease after a restart."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import azure.functions as func

from core.model import Message, Version, new_message_id
from runtime.azure import ChangeFeedEmulator, Lease

NOW = 1_800_000_000_000
NOW_S = NOW // 1000


class Clock:
    def __init__(self) -> None:
        self.ms = NOW

    def __call__(self) -> int:
        return self.ms // 1000


class Container:
    """A container as the emulator keeps it: each write stamped with its commit second (``_ts``)
    by the container's own clock, and a fresh ``_etag``."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.documents: dict[str, dict[str, Any]] = {}
        self._etags = itertools.count(1)

    def create(self, message: Message) -> None:
        self.documents[message.id] = {**message.to_record(), "_ts": self.clock(), "_etag": str(next(self._etags))}

    def read(self, since_ts: int) -> list[dict[str, Any]]:
        return sorted((d for d in self.documents.values() if d["_ts"] >= since_ts), key=lambda d: d["_ts"])


class Function:
    """Records what the change-feed function received; raises while ``failing`` is set."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int]] = []
        self.failing = False

    def __call__(self, documents: func.DocumentList, context: Any) -> None:
        assert isinstance(documents, func.DocumentList)
        assert all(isinstance(d, func.Document) for d in documents)
        self.calls.append(([d["id"] for d in documents], context.retry_context.retry_count))
        if self.failing:
            raise RuntimeError("peer unreachable")


def message(ms: int, text: str = "hi", origin: str = "azure") -> Message:
    return Message("london", new_message_id(ms), "ada", text, ms, Version(ms, 0, origin))


def feed(store: Container, function: Function, clock: Clock, **kw: Any) -> ChangeFeedEmulator:
    return ChangeFeedEmulator(store, function, retry_min_s=0.001, retry_max_s=0.002, now_s=clock, **kw)


def test_starts_at_now_and_delivers_each_change_once() -> None:
    clock, function = Clock(), Function()
    store = Container(clock)
    old = message(NOW - 5000)
    clock.ms = NOW - 5000
    store.create(old)  # committed before the lease started: not delivered
    clock.ms = NOW
    emulator = feed(store, function, clock)
    new = message(NOW + 5)
    clock.ms = NOW + 1000
    store.create(new)
    assert emulator.poll_once() == 1
    assert emulator.poll_once() == 0  # already delivered, though still inside the overlap
    assert function.calls == [([new.id], 0)]


def test_a_raising_function_holds_the_checkpoint_and_the_batch_is_retried() -> None:
    clock, function = Clock(), Function()
    store = Container(clock)
    emulator = feed(store, function, clock, max_retries=-1)
    first = message(NOW + 1)
    store.create(first)
    function.failing = True
    attempts = 0

    def recover(documents: func.DocumentList, context: Any) -> None:
        nonlocal attempts
        attempts += 1
        function.failing = attempts < 4  # fails three times, then the peer is back
        function(documents, context)

    emulator.function = recover
    assert emulator.poll_once() == 1
    assert [retry for _, retry in function.calls] == [0, 1, 2, 3]
    assert all(ids == [first.id] for ids, _ in function.calls)
    assert emulator.failures == 3 and emulator.given_up == 0


def test_after_the_last_retry_the_batch_is_given_up_like_the_platform_does() -> None:
    clock, function = Clock(), Function()
    store = Container(clock)
    emulator = feed(store, function, clock, max_retries=2)
    store.create(message(NOW + 1))
    function.failing = True
    emulator.poll_once()
    assert [retry for _, retry in function.calls] == [0, 1, 2]
    assert emulator.given_up == 1
    function.failing = False
    assert emulator.poll_once() == 0  # moved on: anti-entropy is the backstop now


def test_a_write_that_commits_late_with_an_older_version_is_not_skipped() -> None:
    clock, function = Clock(), Function()
    store = Container(clock)
    emulator = feed(store, function, clock)
    late = message(NOW + 100)  # took its version first...
    early = message(NOW + 200)
    store.create(early)  # ...but the newer write landed first, in the same second
    emulator.poll_once()
    store.create(late)
    emulator.poll_once()
    assert [ids for ids, _ in function.calls] == [[early.id], [late.id]]


def test_stopping_during_retries_does_not_advance() -> None:
    clock, function = Clock(), Function()
    store = Container(clock)
    emulator = feed(store, function, clock, max_retries=-1)
    store.create(message(NOW + 1))
    function.failing = True
    emulator.stop_event.set()  # a stop while the batch is failing
    assert emulator.poll_once() == 0
    assert emulator.delivered == 0


def test_a_peer_record_from_a_clock_far_ahead_does_not_hide_later_local_writes() -> None:
    clock, function = Clock(), Function()
    store = Container(clock)
    emulator = feed(store, function, clock)
    ahead = message(NOW + 60_000, origin="aws")  # applied from a peer whose clock is a minute ahead
    store.create(ahead)
    clock.ms = NOW + 1000
    assert emulator.poll_once() == 1
    clock.ms = NOW + 2000
    local = message(NOW + 2000)  # a local write after it, with an older version
    store.create(local)
    assert emulator.poll_once() == 1
    assert [ids for ids, _ in function.calls] == [[ahead.id], [local.id]]


def test_a_restarted_host_resumes_from_its_lease_file(tmp_path: Path) -> None:
    clock, function = Clock(), Function()
    store = Container(clock)
    path = tmp_path / "lease.json"
    first = message(NOW + 1)
    store.create(first)
    emulator = feed(store, function, clock, lease=Lease(path))
    assert emulator.poll_once() == 1
    clock.ms = NOW + 60_000  # the host is down for a minute; writes commit meanwhile
    missed = message(NOW + 60_000)
    store.create(missed)
    clock.ms = NOW + 120_000
    restarted = feed(store, function, clock, lease=Lease(path))  # not "now": the lease's position
    assert restarted.poll_once() == 1
    assert [ids for ids, _ in function.calls] == [[first.id], [missed.id]]
    assert restarted.poll_once() == 0


def test_without_a_lease_file_a_restart_starts_at_now() -> None:
    clock, function = Clock(), Function()
    store = Container(clock)
    store.create(message(NOW + 1))
    clock.ms = NOW + 60_000
    assert feed(store, function, clock).poll_once() == 0  # what the lease file is for

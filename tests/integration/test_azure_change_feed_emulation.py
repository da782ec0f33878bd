"""The local host's change-feed emulation (runtime/azure.py) keeps the trigger's promises: starts at
"now", delivers each change once as a real func.DocumentList, never advances past a batch whose
function raised until the retries are spent, and does not skip a write that committed late."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from core.model import Message, Version, new_message_id
from runtime.azure import ChangeFeedEmulator
from tests.fakes import InMemoryMessageStore

NOW = 1_800_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = NOW

    def __call__(self) -> int:
        return self.ms


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


def message(ms: int, text: str = "hi") -> Message:
    return Message("london", new_message_id(ms), "ada", text, ms, Version(ms, 0, "azure"))


def feed(store: InMemoryMessageStore, function: Function, clock: Clock, **kw: Any) -> ChangeFeedEmulator:
    return ChangeFeedEmulator(store, function, retry_min_s=0.001, retry_max_s=0.002, now_ms=clock, **kw)


def test_starts_at_now_and_delivers_each_change_once() -> None:
    store, function, clock = InMemoryMessageStore(), Function(), Clock()
    old = message(NOW - 1000)
    store.create(old)  # before the lease started: not delivered
    emulator = feed(store, function, clock)
    new = message(NOW + 5)
    store.create(new)
    clock.ms = NOW + 10
    assert emulator.poll_once() == 1
    assert emulator.poll_once() == 0  # already delivered, though still inside the overlap
    assert function.calls == [([new.id], 0)]


def test_a_raising_function_holds_the_checkpoint_and_the_batch_is_retried() -> None:
    store, function, clock = InMemoryMessageStore(), Function(), Clock()
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
    store, function, clock = InMemoryMessageStore(), Function(), Clock()
    emulator = feed(store, function, clock, max_retries=2)
    store.create(message(NOW + 1))
    function.failing = True
    emulator.poll_once()
    assert [retry for _, retry in function.calls] == [0, 1, 2]
    assert emulator.given_up == 1
    function.failing = False
    assert emulator.poll_once() == 0  # moved on: anti-entropy is the backstop now


def test_a_write_that_commits_late_with_an_older_version_is_not_skipped() -> None:
    store, function, clock = InMemoryMessageStore(), Function(), Clock()
    emulator = feed(store, function, clock)
    late = message(NOW + 100)  # took its version first...
    early = message(NOW + 200)
    store.create(early)  # ...but the newer write landed first
    clock.ms = NOW + 300
    emulator.poll_once()
    store.create(late)
    emulator.poll_once()
    assert [ids for ids, _ in function.calls] == [[early.id], [late.id]]


def test_stopping_during_retries_does_not_advance() -> None:
    store, function, clock = InMemoryMessageStore(), Function(), Clock()
    emulator = feed(store, function, clock, max_retries=-1)
    store.create(message(NOW + 1))
    function.failing = True
    emulator.stop_event.set()  # a stop while the batch is failing
    assert emulator.poll_once() == 0
    assert emulator.delivered == 0

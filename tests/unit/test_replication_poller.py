"""runtime.local.ChangePoller: the local provider's change delivery (at least once, in order,
checkpoint held on failure, late commits of older versions not skipped)."""

from __future__ import annotations

from collections.abc import Sequence

from core.model import Message, Version, new_message_id
from core.replication import ForwardResult
from runtime.local import ChangePoller, SwitchableStore
from tests.fakes import InMemoryMessageStore

NOW = 1_760_000_000_000


def message(ms: int, text: str = "hi", origin: str = "local") -> Message:
    return Message("london", new_message_id(ms), "ada", text, ms, Version(ms, 0, origin))


class Sink:
    def __init__(self) -> None:
        self.received: list[Message] = []
        self.fail = False
        self.calls = 0

    def __call__(self, batch: Sequence[Message]) -> ForwardResult:
        self.calls += 1
        if self.fail:
            return ForwardResult(failed=list(batch), errors=["peer down"])
        self.received.extend(batch)
        return ForwardResult(sent=len(batch))


def poller(store: InMemoryMessageStore, sink: Sink, clock: list[int], **kw) -> ChangePoller:
    return ChangePoller(store, sink, now_ms=lambda: clock[0], lookback_ms=1000, **kw)


def test_only_changes_from_start_are_delivered_once_each() -> None:
    store, sink, clock = InMemoryMessageStore(), Sink(), [NOW]
    store.create(message(NOW - 10, "before start"))
    feed = poller(store, sink, clock)
    first, second = message(NOW + 1), message(NOW + 2)
    store.create(first)
    store.create(second)
    assert feed.poll_once() and feed.poll_once()
    assert sink.received == [first, second]


def test_a_failed_delivery_holds_the_checkpoint_and_is_retried() -> None:
    store, sink, clock = InMemoryMessageStore(), Sink(), [NOW]
    feed = poller(store, sink, clock)
    sink.fail = True
    lost = message(NOW + 1)
    store.create(lost)
    assert not feed.poll_once()
    clock[0] += 60_000  # far beyond the look-back: only the held checkpoint finds it again
    assert not feed.poll_once()
    sink.fail = False
    later = message(clock[0])
    store.create(later)
    assert feed.poll_once()
    assert sink.received == [lost, later]


def test_an_older_version_committed_late_is_still_delivered() -> None:
    """Writer A takes a version, writer B takes a newer one and commits first, the scan moves
    past B, then A commits: the look-back window finds A."""
    store, sink, clock = InMemoryMessageStore(), Sink(), [NOW]
    feed = poller(store, sink, clock)
    a, b = message(NOW + 5, "a"), message(NOW + 6, "b")
    store.create(b)
    clock[0] = NOW + 10
    assert feed.poll_once()
    store.create(a)
    clock[0] = NOW + 200
    assert feed.poll_once()
    assert sink.received == [b, a]


def test_from_beginning_delivers_history_in_version_order() -> None:
    store, sink, clock = InMemoryMessageStore(), Sink(), [NOW]
    old = [message(NOW - 100_000 + i) for i in range(250)]
    for m in reversed(old):
        store.create(m)
    feed = poller(store, sink, clock, start="beginning", batch_size=100)
    assert feed.poll_once()
    assert sink.received == old and sink.calls == 3


def test_a_store_outage_is_retried_not_fatal() -> None:
    inner, sink, clock = InMemoryMessageStore(), Sink(), [NOW]
    store = SwitchableStore(inner)
    feed = ChangePoller(store, sink, now_ms=lambda: clock[0], poll_s=0.001, backoff_s=(0.001, 0.002))
    store.down = True
    inner.create(message(NOW + 1))
    import threading

    thread = threading.Thread(target=feed.run)
    thread.start()
    try:
        threading.Event().wait(0.05)
        assert sink.received == []
        store.down = False
        for _ in range(200):
            if sink.received:
                break
            threading.Event().wait(0.01)
    finally:
        feed.stop_event.set()
        thread.join(5)
    assert len(sink.received) == 1

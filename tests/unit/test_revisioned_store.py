"""RevisionedMessageStore's compare-and-swap loop (Cosmos etags, Cloudant _rev) on a fake store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.errors import Unavailable
from core.model import Message, Version, new_message_id
from core.ports import RevisionedMessageStore


class FlakyRevisionStore(RevisionedMessageStore):
    """Stores one record; ``lose`` makes the next N conditional writes lose a race."""

    max_write_attempts = 4

    def __init__(self, lose: int = 0) -> None:
        self.record: Message | None = None
        self.revision = 0
        self.lose = lose
        self.writes = 0
        self.reads = 0

    def _read_revision(self, channel: str, message_id: str) -> tuple[str | None, str | None]:
        self.reads += 1
        return (None, None) if self.record is None else (str(self.record.version), str(self.revision))

    def _write_if_revision(self, message: Message, revision: str | None) -> bool:
        self.writes += 1
        if self.lose:
            self.lose -= 1
            return False
        if revision is None and self.record is not None:
            return False  # a create of an id that exists fails (Cosmos 409, Cloudant 409)
        assert revision == (None if self.record is None else str(self.revision))
        self.record, self.revision = message, self.revision + 1
        return True

    def _create(self, message: Message) -> None:  # pragma: no cover - not exercised here
        raise NotImplementedError

    def _get(self, channel: str, message_id: str) -> Message | None:
        return self.record

    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        yield from ()

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        return []

    def _ping(self) -> None:
        pass


MESSAGE_ID = new_message_id(1)


def message(ms: int) -> Message:
    return Message("london", MESSAGE_ID, "ada", f"v{ms}", 1, Version(ms, 0, "aws"))


def test_lost_races_are_retried_until_the_write_lands() -> None:
    store = FlakyRevisionStore(lose=2)
    assert store.put_if_newer(message(10)) is True
    assert store.writes == 3 and store.record == message(10)


def test_an_older_or_equal_version_never_writes() -> None:
    store = FlakyRevisionStore()
    store.put_if_newer(message(10))
    assert store.put_if_newer(message(10)) is False and store.put_if_newer(message(9)) is False
    assert store.writes == 1


def test_endless_contention_is_a_503_not_a_lost_write() -> None:
    store = FlakyRevisionStore(lose=100)
    with pytest.raises(Unavailable) as info:
        store.put_if_newer(message(10))
    assert info.value.code == "store_contention" and store.writes == store.max_write_attempts


def first(ms: int) -> Message:
    """A message's first version: posted at ``ms`` and never deleted."""
    return Message("london", MESSAGE_ID, "ada", "hello", ms, Version(ms, 0, "aws"))


def test_a_first_version_is_created_without_a_read() -> None:
    store = FlakyRevisionStore()
    assert store.put_if_newer(first(5)) is True
    assert (store.reads, store.writes) == (0, 1) and store.record == first(5)


def test_a_first_version_already_held_falls_back_to_compare() -> None:
    store = FlakyRevisionStore()
    store.put_if_newer(first(5))
    assert store.put_if_newer(first(5)) is False  # a re-delivery: the create fails, the read says equal
    assert store.record == first(5)
    tombstone = Message("london", MESSAGE_ID, "ada", "", 5, Version(9, 0, "aws"), deleted=True)
    assert store.put_if_newer(tombstone) is True
    assert store.put_if_newer(first(5)) is False  # a late first version cannot resurrect it
    assert store.record == tombstone


def test_a_tombstone_is_compared_before_it_is_written() -> None:
    store = FlakyRevisionStore()
    tombstone = Message("london", MESSAGE_ID, "ada", "", 5, Version(9, 0, "aws"), deleted=True)
    assert store.put_if_newer(tombstone) is True
    assert (store.reads, store.writes) == (1, 1)

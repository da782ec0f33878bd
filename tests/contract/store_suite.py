"""The MessageStore conformance suite: the definition of what a store must do.

Written once; every store runs all of it with a one-line subclass that provides a ``store``
fixture (empty at the start of each test):

    class TestSqliteStore(MessageStoreConformance): pass   # + a `store` fixture in its module

Capabilities that legitimately differ are fixtures a subclass may override, never
``if provider ==`` branches.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.digest import LEAF_DEPTH, LEAVES, Entry, digests_of, key_leaf, node_of, nodes_at
from core.errors import AlreadyExists, ValidationError
from core.model import Limits, Message, Version, new_message_id
from core.ports import MessageStore

_ids = itertools.count()
BASE_MS = 1_750_000_000_000


def make_message(
    channel: str = "london",
    *,
    created_ms: int | None = None,
    version: Version | None = None,
    author: str = "ada",
    text: str = "Hello London",
    message_id: str | None = None,
) -> Message:
    n = next(_ids)
    created = BASE_MS + n * 10 if created_ms is None else created_ms
    return Message(
        channel=channel,
        id=message_id or new_message_id(created),
        author=author,
        text=text,
        created_ms=created,
        version=version or Version(created, 0, "test"),
    )


def newer(message: Message, *, by_ms: int = 1, origin: str | None = None, **changes: object) -> Message:
    v = message.version
    fields = {**message.__dict__, **changes, "version": Version(v.physical_ms + by_ms, 0, origin or v.origin)}
    return Message(**fields)  # type: ignore[arg-type]


class MessageStoreConformance:
    """Every store must pass every test here."""

    @pytest.fixture
    def store(self) -> MessageStore:
        raise NotImplementedError("a conformance subclass must provide a `store` fixture")

    @pytest.fixture
    def concurrency(self) -> int:
        """Writer threads in the race tests. A capability: a slow emulator may lower it, not skip it."""
        return 8

    @pytest.fixture
    def limits(self) -> Limits:
        return Limits()

    # -- create / get ---------------------------------------------------------------------------

    def test_create_then_get_returns_the_same_message(self, store: MessageStore) -> None:
        message = make_message()
        store.create(message)
        assert store.get(message.channel, message.id) == message

    def test_get_of_missing_returns_none(self, store: MessageStore) -> None:
        assert store.get("london", new_message_id(BASE_MS)) is None

    def test_duplicate_create_fails_and_keeps_the_original(self, store: MessageStore) -> None:
        original = make_message()
        store.create(original)
        impostor = Message(**{**original.__dict__, "text": "overwritten?"})
        with pytest.raises(AlreadyExists):
            store.create(impostor)
        assert store.get(original.channel, original.id) == original

    def test_same_id_in_two_channels_are_two_messages(self, store: MessageStore) -> None:
        first = make_message("london")
        second = Message(**{**first.__dict__, "channel": "portland", "text": "Hello Portland"})
        store.create(first)
        store.create(second)
        assert store.get("london", first.id) == first
        assert store.get("portland", first.id) == second

    def test_get_rejects_malformed_keys(self, store: MessageStore) -> None:
        with pytest.raises(ValidationError):
            store.get("London!", new_message_id(BASE_MS))
        with pytest.raises(ValidationError):
            store.get("london", "../../etc")

    # -- put_if_newer ---------------------------------------------------------------------------

    def test_put_if_newer_writes_when_missing(self, store: MessageStore) -> None:
        message = make_message()
        assert store.put_if_newer(message) is True
        assert store.get(message.channel, message.id) == message

    def test_put_if_newer_ignores_older_and_equal_versions(self, store: MessageStore) -> None:
        current = make_message()
        store.create(current)
        older = Message(
            **{**current.__dict__, "text": "older", "version": Version(current.version.physical_ms - 1, 5, "zzz")}
        )
        equal = Message(**{**current.__dict__, "text": "same version, other text"})
        assert store.put_if_newer(older) is False
        assert store.put_if_newer(equal) is False
        assert store.get(current.channel, current.id) == current

    def test_put_if_newer_replaces_with_newer_version(self, store: MessageStore) -> None:
        current = make_message()
        store.create(current)
        update = newer(current, text="edited", created_ms=current.created_ms + 5)
        assert store.put_if_newer(update) is True
        assert store.get(current.channel, current.id) == update

    def test_version_order_uses_counter_then_origin(self, store: MessageStore) -> None:
        base = make_message()
        store.create(base)
        v = base.version
        by_counter = Message(
            **{**base.__dict__, "text": "counter", "version": Version(v.physical_ms, v.counter + 1, v.origin)}
        )
        assert store.put_if_newer(by_counter) is True
        by_origin = Message(
            **{**base.__dict__, "text": "origin", "version": Version(v.physical_ms, v.counter + 1, "zz")}
        )
        assert store.put_if_newer(by_origin) is True
        loser = Message(**{**base.__dict__, "text": "loser", "version": Version(v.physical_ms, v.counter + 1, "aa")})
        assert store.put_if_newer(loser) is False
        assert store.get(base.channel, base.id) == by_origin

    # -- tombstones -----------------------------------------------------------------------------

    def test_tombstone_hides_message_from_list_but_get_returns_it(self, store: MessageStore) -> None:
        message = make_message()
        store.create(message)
        tombstone = message.tombstone(Version(message.version.physical_ms + 1, 0, "test"))
        assert store.put_if_newer(tombstone) is True
        stored = store.get(message.channel, message.id)
        assert stored is not None and stored.deleted and stored.text == ""
        assert store.list(message.channel, 10).items == []

    def test_older_write_cannot_resurrect_a_tombstone(self, store: MessageStore) -> None:
        message = make_message()
        tombstone = message.tombstone(Version(message.version.physical_ms + 10, 0, "test"))
        assert store.put_if_newer(tombstone) is True  # the delete arrives before the create
        assert store.put_if_newer(message) is False
        with pytest.raises(AlreadyExists):
            store.create(message)
        assert store.get(message.channel, message.id) == tombstone

    # -- listing --------------------------------------------------------------------------------

    def test_list_pages_newest_first_until_exhausted(self, store: MessageStore) -> None:
        messages = [make_message("london") for _ in range(25)]
        for message in messages:
            store.create(message)
        seen, cursor, pages = [], None, 0
        while True:
            page = store.list("london", 10, cursor)
            pages += 1
            seen.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert pages == 3
        assert [m.id for m in seen] == [m.id for m in sorted(messages, key=lambda m: m.sort_key, reverse=True)]

    def test_exact_multiple_of_page_size_ends_without_an_empty_page(self, store: MessageStore) -> None:
        for _ in range(4):
            store.create(make_message("london"))
        first = store.list("london", 2)
        second = store.list("london", 2, first.next_cursor)
        assert len(second.items) == 2 and second.next_cursor is None

    def test_pages_stay_stable_while_newer_messages_arrive(self, store: MessageStore) -> None:
        older = [make_message("london") for _ in range(12)]
        for message in older:
            store.create(message)
        first = store.list("london", 5)
        for _ in range(5):
            store.create(make_message("london"))  # newer than everything listed so far
        second = store.list("london", 5, first.next_cursor)
        third = store.list("london", 5, second.next_cursor)
        expected = [m.id for m in sorted(older, key=lambda m: m.sort_key, reverse=True)]
        assert [m.id for m in first.items + second.items + third.items] == expected
        assert third.next_cursor is None

    def test_list_fills_pages_past_runs_of_tombstones(self, store: MessageStore) -> None:
        live = [make_message("london") for _ in range(3)]
        dead = [make_message("london") for _ in range(15)]  # newer than the live ones
        for message in live + dead:
            store.create(message)
        for message in dead:
            assert store.put_if_newer(message.tombstone(Version(message.version.physical_ms + 1, 0, "test")))
        page = store.list("london", 3)
        assert {m.id for m in page.items} == {m.id for m in live}

    def test_same_millisecond_messages_order_by_id(self, store: MessageStore) -> None:
        twins = [make_message("london", created_ms=BASE_MS) for _ in range(3)]
        for message in twins:
            store.create(message)
        assert [m.id for m in store.list("london", 10).items] == sorted((m.id for m in twins), reverse=True)

    def test_list_is_per_channel(self, store: MessageStore) -> None:
        store.create(make_message("london"))
        portland = make_message("portland")
        store.create(portland)
        assert store.list("portland", 10).items == [portland]
        assert store.list("tokyo", 10).items == []

    def test_newer_version_with_new_created_time_moves_in_listing(self, store: MessageStore) -> None:
        a, b = make_message("london"), make_message("london")
        store.create(a)
        store.create(b)
        assert [m.id for m in store.list("london", 10).items] == [b.id, a.id]
        moved = newer(a, created_ms=b.created_ms + 100)
        assert store.put_if_newer(moved)
        assert [m.id for m in store.list("london", 10).items] == [a.id, b.id]

    # -- changes since --------------------------------------------------------------------------

    def test_changes_since_returns_everything_newer_in_version_order(self, store: MessageStore) -> None:
        messages = [make_message(channel) for channel in ("london", "portland", "tokyo") for _ in range(4)]
        for message in reversed(messages):
            store.create(message)
        tomb = messages[0].tombstone(Version(BASE_MS + 10**6, 0, "test"))
        store.put_if_newer(tomb)
        all_changes = store.changes_since(None, 100)
        expected = sorted([*messages[1:], tomb], key=lambda m: str(m.version))
        assert all_changes == expected
        middle = str(expected[5].version)
        assert store.changes_since(middle, 100) == expected[6:]
        assert store.changes_since(None, 4) == expected[:4]
        assert store.changes_since(str(expected[-1].version), 100) == []

    def test_changes_since_pages_through_everything(self, store: MessageStore) -> None:
        messages = [make_message("london") for _ in range(23)]
        for message in messages:
            store.create(message)
        collected: list[Message] = []
        since = None
        while batch := store.changes_since(since, 7):
            collected.extend(batch)
            since = str(batch[-1].version)
        assert [m.id for m in collected] == [m.id for m in messages]

    # -- digest tree (anti-entropy) -------------------------------------------------------------

    def _tree_fixture(self, store: MessageStore) -> list[Entry]:
        """Fifteen records in three channels, one deleted and one edited: the entries they list as."""
        messages = [make_message(channel) for channel in ("london", "portland", "tokyo") for _ in range(5)]
        for message in messages:
            store.create(message)
        tomb = messages[0].tombstone(Version(messages[0].version.physical_ms + 10**6, 0, "test"))
        edited = newer(messages[1], text="edited")
        assert store.put_if_newer(tomb) and store.put_if_newer(edited)
        held = [tomb, edited, *messages[2:]]
        return sorted((key_leaf(m.channel, m.id), m.channel, m.id, str(m.version)) for m in held)

    def test_tree_digests_sum_every_record_at_every_depth(self, store: MessageStore) -> None:
        entries = self._tree_fixture(store)
        for depth in range(LEAF_DEPTH + 1):
            assert store.tree_digests(depth, 0, nodes_at(depth)) == digests_of(entries, depth)
        node = node_of(entries[-1][0], 2)
        assert store.tree_digests(2, node, node + 1) == {node: digests_of(entries, 2)[node]}
        assert store.tree_digests(3, 0, 0) == {}

    def test_tree_digests_since_a_version_cover_only_newer_records(self, store: MessageStore) -> None:
        entries = self._tree_fixture(store)
        since = sorted(e[3] for e in entries)[9]
        recent = [e for e in entries if e[3] > since]
        assert store.tree_digests(1, 0, nodes_at(1), since) == digests_of(recent, 1)
        assert store.tree_digests(LEAF_DEPTH, 0, LEAVES, since) == digests_of(recent, LEAF_DEPTH)

    def test_tree_entries_list_leaves_in_key_order_and_page(self, store: MessageStore) -> None:
        entries = self._tree_fixture(store)
        assert store.tree_entries(0, LEAVES, None, 100) == entries
        pages: list[Entry] = []
        after = None
        while page := store.tree_entries(0, LEAVES, after, 4):
            pages.extend(page)
            after = page[-1][:3]
        assert pages == entries
        start, stop = entries[3][0], entries[8][0] + 1
        assert store.tree_entries(start, stop, None, 100) == [e for e in entries if start <= e[0] < stop]
        since = sorted(e[3] for e in entries)[9]
        assert store.tree_entries(0, LEAVES, None, 100, since) == [e for e in entries if e[3] > since]

    def test_tree_refuses_out_of_range_questions(self, store: MessageStore) -> None:
        for bad in ((LEAF_DEPTH + 1, 0, 1), (1, 0, nodes_at(1) + 1), (2, 5, 4)):
            with pytest.raises(ValidationError):
                store.tree_digests(*bad)
        with pytest.raises(ValidationError):
            store.tree_entries(0, LEAVES + 1, None, 10)

    # -- races ----------------------------------------------------------------------------------

    def test_concurrent_put_if_newer_keeps_the_highest_version(self, store: MessageStore, concurrency: int) -> None:
        base = make_message()
        store.create(base)
        candidates = [newer(base, by_ms=i + 1, text=f"writer {i}") for i in range(concurrency)]
        _race(concurrency, lambda i: store.put_if_newer(candidates[i]))
        assert store.get(base.channel, base.id) == candidates[-1]

    def test_concurrent_identical_put_if_newer_has_exactly_one_winner(
        self, store: MessageStore, concurrency: int
    ) -> None:
        base = make_message()
        store.create(base)
        update = newer(base, text="once")
        results = _race(concurrency, lambda i: store.put_if_newer(update))
        assert results.count(True) == 1

    def test_concurrent_create_of_one_id_has_exactly_one_winner(self, store: MessageStore, concurrency: int) -> None:
        base = make_message()
        variants = [Message(**{**base.__dict__, "text": f"creator {i}"}) for i in range(concurrency)]

        def attempt(i: int) -> bool:
            try:
                store.create(variants[i])
                return True
            except AlreadyExists:
                return False

        results = _race(concurrency, attempt)
        assert results.count(True) == 1
        assert store.get(base.channel, base.id) == variants[results.index(True)]

    # -- payloads -------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "text",
        ["Hello 👋 Portland 🌲", "مرحبا لندن", "こんにちは、東京", "e\u0301 \u200d quotes ' \" \\ %s {} $x ${y} <b>"],
        ids=["emoji", "rtl", "cjk", "combining-and-specials"],
    )
    def test_unicode_round_trips_exactly(self, store: MessageStore, text: str) -> None:
        message = make_message(text=text, author="Zoë 🚀")
        store.create(message)
        assert store.get(message.channel, message.id) == message
        assert store.list(message.channel, 1).items == [message]

    def test_maximum_size_payload_round_trips(self, store: MessageStore, limits: Limits) -> None:
        # Four-byte characters make the largest UTF-8 payload the API accepts.
        message = make_message(author="𝒜" * limits.max_author_chars, text="𝄞" * limits.max_text_chars)
        store.create(message)
        assert store.get(message.channel, message.id) == message
        update = newer(message, text="😀" * limits.max_text_chars)
        assert store.put_if_newer(update)
        assert store.get(message.channel, message.id) == update

    # -- health ---------------------------------------------------------------------------------

    def test_ping_answers(self, store: MessageStore) -> None:
        store.ping()


def _race(n: int, work: Callable[[int], bool]) -> list[bool]:
    """Run ``work(i)`` on n threads released together, so the writes really overlap."""
    barrier = threading.Barrier(n)

    def run(i: int) -> bool:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))

"""The digest tree kept in the DynamoDB table (adapters/aws/digests.py), on moto server and
DynamoDB Local: applying a change feed at least once, gaps in it, rebuilding, and anti-entropy
healing a change the tree never saw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.aws import digests as kept
from adapters.aws.events import to_changes
from adapters.aws.store import DynamoDBMessageStore
from adapters.local.store import SqliteMessageStore
from core import anti_entropy
from core.digest import LEAF_DEPTH, LEAVES, digests_of, key_leaf, nodes_at
from core.model import Message
from tests.contract.store_suite import make_message, newer
from tests.property.inprocess import mesh


def entries_of(messages: list[Message]) -> list[tuple[int, str, str, str]]:
    return sorted((key_leaf(m.channel, m.id), m.channel, m.id, str(m.version)) for m in messages)


def assert_tree_holds(store: DynamoDBMessageStore, messages: list[Message]) -> None:
    entries = entries_of(messages)
    for depth in range(LEAF_DEPTH + 1):
        assert store.tree_digests(depth, 0, nodes_at(depth)) == digests_of(entries, depth), depth
    assert store.tree_entries(0, LEAVES, None, 1000) == entries


def test_a_feed_applied_twice_and_out_of_order_leaves_the_tree_exact(dynamodb_client: Any, dynamodb_table: str) -> None:
    store = DynamoDBMessageStore(dynamodb_client, dynamodb_table, digests="kept")
    first = [make_message(channel) for channel in ("london", "portland", "tokyo-2") for _ in range(6)]
    for m in first:
        store.create(m)
    edited = newer(first[0], text="edited")
    tomb = first[1].tombstone(newer(first[1]).version)
    assert store.put_if_newer(edited) and store.put_if_newer(tomb)
    store.note_changes(first)
    store.note_changes([edited, tomb, *first])  # a batch retried from its middle: old and new together
    store.note_changes(first[:2])  # a late re-delivery of versions the tree has moved past
    assert_tree_holds(store, [edited, tomb, *first[2:]])
    assert store.tree.apply([edited, tomb]) == 0  # nothing moved


def test_a_gap_in_the_feed_is_closed_by_the_next_change(dynamodb_client: Any, dynamodb_table: str) -> None:
    store = DynamoDBMessageStore(dynamodb_client, dynamodb_table, digests="kept")
    base = make_message()
    second, third = newer(base, text="two"), newer(base, by_ms=2, text="three")
    store.create(base)
    store.note_changes([base])
    assert store.put_if_newer(second) and store.put_if_newer(third)
    store.note_changes([third])  # the record of ``second`` never arrived
    assert_tree_holds(store, [third])


def test_rebuild_derives_the_tree_from_the_records_and_drops_what_they_do_not_hold(
    dynamodb_client: Any, dynamodb_table: str
) -> None:
    store = DynamoDBMessageStore(dynamodb_client, dynamodb_table, digests="kept")
    messages = [make_message(f"c{i % 4}") for i in range(40)]
    for m in messages:
        store.create(m)
    stray = make_message("ghost")  # in the tree, never in the table: must not survive a rebuild
    store.note_changes([messages[0], stray])
    assert store.tree.rebuild(kept.scan_records(store)) == 40
    assert_tree_holds(store, messages)
    # The tree's own items are in neither index: the records read back are exactly the messages.
    assert sorted(m.id for m in kept.scan_records(store)) == sorted(m.id for m in messages)
    assert store.list("ghost", 10).items == []
    assert kept.main(["verify", "--table", dynamodb_table, "--endpoint-url", _endpoint(dynamodb_client)]) == 0
    store.note_changes([make_message("ghost")])
    assert kept.main(["verify", "--table", dynamodb_table, "--endpoint-url", _endpoint(dynamodb_client)]) == 1


def test_anti_entropy_repairs_a_change_the_tree_never_saw(
    dynamodb_client: Any, dynamodb_table: str, tmp_path: Path
) -> None:
    """Both clouds hold a record, but the kept tree missed its feed record: the first full pass
    sees a difference, pulls, changes nothing and re-derives the key; the second finds the trees
    equal at the root."""
    aws = DynamoDBMessageStore(dynamodb_client, dynamodb_table, digests="kept")
    azure = SqliteMessageStore(tmp_path / "azure.sqlite")
    try:
        shared = [make_message() for _ in range(5)]
        for m in shared:
            aws.create(m)
            azure.create(m)
        aws.note_changes(shared[1:])  # shared[0]'s stream record was lost
        now = shared[-1].created_ms + 1000
        clouds, _ = mesh({"aws": aws, "azure": azure}, {"aws": lambda: now, "azure": lambda: now})
        first = anti_entropy.run(clouds["aws"], window_s=0, now_ms=lambda: now)
        [peer] = first.peers
        assert peer.ok and peer.pull_ignored == 1 and peer.pulled == 0 and peer.pushed == 0, peer
        second = anti_entropy.run(clouds["aws"], window_s=0, now_ms=lambda: now)
        [peer] = second.peers
        assert peer.ok and peer.listed_leaves == 0 and peer.requests == 1, peer
        assert_tree_holds(aws, shared)
    finally:
        azure.close()


def test_the_trees_own_stream_records_are_not_changes() -> None:
    def record(pk: str, seq: str) -> dict[str, Any]:
        keys = {"pk": {"S": pk}, "sk": {"S": "n"}}
        return {"eventSource": "aws:dynamodb", "eventName": "MODIFY", "dynamodb": {"Keys": keys, "SequenceNumber": seq}}

    changes = to_changes({"Records": [record("_tree#n#0a", "1"), record("london", "2"), record("_tree#m#ff", "3")]})
    assert [c.ident for c in changes] == ["2"]


def _endpoint(client: Any) -> str:
    return str(client.meta.endpoint_url)

"""The digest tree (core.digest) kept in the messages table, so a full anti-entropy pass reads a
few hundred small items instead of scanning every record.

DynamoDB has no triggers, so the tree follows the table's stream: the ``changes`` function hands
every batch of changed records to ``KeptTree.apply`` (handlers.kit), and ``rebuild`` derives
the whole tree from a scan (a new table, or after the tree was switched on). Three kinds of item,
all under partition keys starting with ``_`` (never a channel: channels start ``[a-z0-9]``), so
they are in neither index (they carry no ``sort_key``, ``vshard`` or ``version``)::

    member  pk "_tree#m#<depth-2 node, 2 hex>"  sk "<leaf, 4 hex>#<channel>#<id>"   v: version
    leaf    pk "_tree#l#<depth-2 node>"         sk "<leaf, 4 hex>"                  c, h
    node    pk "_tree#n#<depth-1 node, 1 hex>"  sk "<depth-2 node, 2 hex>"          c, h

A member says which version of a record the tree holds; ``c`` and ``h`` are a node's count and
hash sum (reduced modulo 2**48 when read: ``ADD`` only accumulates). One record's change is one
transaction: the member moves from the version it held to the new one (conditional on what it
held), and its leaf and depth-2 node ``ADD`` the difference. The stream delivers at least once
and a batch can be retried from its middle, so ``apply`` reads the members first and skips what
the tree already holds: applying a change twice changes nothing.

* Reads: depth 0-2 from the 256 node items (one Query per depth-1 node: 16 for the root, one
  for a depth-1 node's children), depth 3-4 from one Query of leaf items per depth-2 node,
  entries from one Query of members per depth-2 node, in (leaf, channel, id) order because
  ``#`` sorts below every character a channel or id may hold. Queries are charged by the bytes
  they return, so the root costs ~8 read units whatever the table holds.
* Writes: members and leaves spread over 256 partitions each, nodes over 16: a change costs
  one transaction of three items (6 write units), and the node partitions, ~1,000 write units
  a second each, bound the table to roughly 8,000 changes a second.
* The tree lags the table by the stream's delay. Anti-entropy tolerates that: a difference it
  sees early is a push or pull the peer ignores, and ``reindex`` re-derives keys whose pull
  changed nothing. Window passes (``since`` set) scan the table's version index, never the tree.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from adapters.aws.table import TREE_PREFIX
from core import digest
from core.digest import Digest, Entry, Position
from core.model import Message

_NODE_DEPTH = 2  # the depth whose nodes partition the kept items: 256 of them
_LEAVES_PER_NODE = digest.LEAVES >> (digest.FANOUT_BITS * _NODE_DEPTH)
_BATCH_GET_MAX = 100  # DynamoDB's BatchGetItem limit
_BATCH_WRITE_MAX = 25  # and BatchWriteItem's
_APPLY_ATTEMPTS = 8

Key = tuple[str, str]


def member_key(channel: str, message_id: str) -> dict[str, dict[str, str]]:
    leaf = digest.key_leaf(channel, message_id)
    return {"pk": {"S": _member_pk(leaf >> 8)}, "sk": {"S": f"{leaf:04x}#{channel}#{message_id}"}}


def leaf_key(leaf: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{TREE_PREFIX}l#{leaf >> 8:02x}"}, "sk": {"S": f"{leaf:04x}"}}


def node_key(node: int) -> dict[str, dict[str, str]]:
    """A depth-2 node's item, in the partition of its depth-1 parent (16 of them)."""
    return {"pk": {"S": f"{TREE_PREFIX}n#{node >> 4:x}"}, "sk": {"S": f"{node:02x}"}}


class TreeConflict(Exception):
    """A change could not be applied in ``_APPLY_ATTEMPTS`` tries (other writers kept winning)."""


class KeptTree:
    """The tree's items in ``table``: reading digests and entries, applying changes, rebuilding.

    ``client`` is the store's low-level DynamoDB client; botocore errors propagate (the store
    translates them). ``counters`` is the store, whose ``items_read`` and ``read_units`` count
    what the tree reads."""

    def __init__(self, client: Any, table: str, counters: Any) -> None:
        self.client, self.table, self.counters = client, table, counters

    # -- reading ------------------------------------------------------------------------------

    def digests(self, depth: int, start: int, stop: int) -> dict[int, Digest]:
        """``(count, hash)`` of the non-empty nodes at ``depth`` in ``[start, stop)``."""
        first_leaf, stop_leaf = _leaf_span(depth, start, stop)
        if first_leaf >= stop_leaf:
            return {}
        nodes = range(first_leaf // _LEAVES_PER_NODE, (stop_leaf - 1) // _LEAVES_PER_NODE + 1)
        out: dict[int, Digest] = {}
        if depth <= _NODE_DEPTH:
            for parent in range(nodes[0] >> 4, (nodes[-1] >> 4) + 1):  # one Query per depth-1 node
                low, high = max(nodes[0], parent << 4), min(nodes[-1], (parent << 4) + 15)
                request = _query(self.table, node_key(low)["pk"]["S"], f"{low:02x}", f"{high:02x}", "sk, c, h")
                for item in self._query(request):
                    _add(out, int(item["sk"]["S"], 16) >> (digest.FANOUT_BITS * (_NODE_DEPTH - depth)), item)
        else:
            for node in nodes:
                low, high = max(first_leaf, node * _LEAVES_PER_NODE), min(stop_leaf, (node + 1) * _LEAVES_PER_NODE)
                request = _query(self.table, leaf_key(low)["pk"]["S"], f"{low:04x}", f"{high - 1:04x}", "sk, c, h")
                for item in self._query(request):
                    _add(out, digest.node_of(int(item["sk"]["S"], 16), depth), item)
        return {node: value for node, value in out.items() if start <= node < stop and value[0] > 0}

    def entries(self, start: int, stop: int, after: Position | None, limit: int) -> list[Entry]:
        """Up to ``limit`` members of leaves ``[start, stop)`` after ``after``, in tree order."""
        found: list[Entry] = []
        if after is not None:
            start = max(start, after[0])
        if start >= stop:
            return found
        after_sk = f"{after[0]:04x}#{after[1]}#{after[2]}" if after is not None else None
        for node in range(start // _LEAVES_PER_NODE, (stop - 1) // _LEAVES_PER_NODE + 1):
            low, high = max(start, node * _LEAVES_PER_NODE), min(stop, (node + 1) * _LEAVES_PER_NODE)
            # ``#`` is the separator and ``$`` the next character: ``<leaf>$`` bounds every member of the leaf.
            low_sk = after_sk if after is not None and after_sk is not None and low == after[0] else f"{low:04x}#"
            request = _query(self.table, _member_pk(node), low_sk, f"{high - 1:04x}$", "sk, v")
            request["Limit"] = limit - len(found) + 1
            for item in self._query(request):
                sk = item["sk"]["S"]
                if sk == after_sk:
                    continue
                leaf, channel, message_id = sk.split("#", 2)
                found.append((int(leaf, 16), channel, message_id, item["v"]["S"]))
                if len(found) >= limit:
                    return found
        return found

    # -- keeping it ---------------------------------------------------------------------------

    def apply(self, messages: Iterable[Message]) -> int:
        """Bring the tree up to date with these records (a stream batch, or records re-read from
        the table); returns how many members moved. Idempotent; older versions than the tree
        holds are ignored. Raises TreeConflict when contention outlasts the retries."""
        latest: dict[Key, str] = {}
        for message in messages:
            key, version = (message.channel, message.id), str(message.version)
            if version > latest.get(key, ""):
                latest[key] = version
        if not latest:
            return 0
        held = self._held_versions(list(latest))
        moved = 0
        for key, version in latest.items():
            moved += self._move(key, held.get(key), version)
        return moved

    def _move(self, key: Key, held: str | None, version: str) -> int:
        channel, message_id = key
        leaf = digest.key_leaf(channel, message_id)
        for attempt in range(_APPLY_ATTEMPTS):
            if held is not None and held >= version:
                return 0  # the tree already holds this version or a newer one: a re-delivery
            if attempt:
                time.sleep(random.uniform(0, 0.01 * attempt))  # de-synchronise contending writers
            count = 0 if held is not None else 1
            change = digest.entry_hash(channel, message_id, version)
            if held is not None:
                change -= digest.entry_hash(channel, message_id, held)
            delta = {":c": {"N": str(count)}, ":h": {"N": str(change)}}
            add = {"UpdateExpression": "ADD #c :c, #h :h", "ExpressionAttributeNames": {"#c": "c", "#h": "h"}}
            put: dict[str, Any] = {
                "TableName": self.table,
                "Item": {**member_key(channel, message_id), "v": {"S": version}},
            }
            if held is None:
                put["ConditionExpression"] = "attribute_not_exists(pk)"
            else:
                put["ConditionExpression"] = "#v = :held"
                put["ExpressionAttributeNames"] = {"#v": "v"}
                put["ExpressionAttributeValues"] = {":held": {"S": held}}
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        {"Put": put},
                        {
                            "Update": {
                                "TableName": self.table,
                                "Key": leaf_key(leaf),
                                **add,
                                "ExpressionAttributeValues": delta,
                            }
                        },
                        {
                            "Update": {
                                "TableName": self.table,
                                "Key": node_key(leaf >> 8),
                                **add,
                                "ExpressionAttributeValues": delta,
                            }
                        },
                    ]
                )
                return 1
            except ClientError as exc:
                if not _is_contention(exc):
                    raise
            held = self._held_versions([key]).get(key)  # someone moved it first: read and retry
        raise TreeConflict(f"digest tree: {channel}/{message_id} stayed contended for {_APPLY_ATTEMPTS} attempts")

    def _held_versions(self, keys: list[Key]) -> dict[Key, str]:
        out: dict[Key, str] = {}
        for item in self._batch_get([member_key(c, i) for c, i in keys], "sk, v", consistent=True):
            _, channel, message_id = item["sk"]["S"].split("#", 2)
            out[(channel, message_id)] = item["v"]["S"]
        return out

    def rebuild(self, records: Iterable[Message], *, progress: Any = None) -> int:
        """Replace the whole tree with one derived from ``records`` (every record in the table:
        see ``scan_records``). For a table whose tree is new or not trusted, while no writes are
        in flight (a change applied during the rebuild may be overwritten; the next anti-entropy
        pass repairs what that costs). Returns the number of records."""
        members: dict[Key, str] = {}
        for message in records:
            members[(message.channel, message.id)] = str(message.version)
        leaves: dict[int, Digest] = {}
        for (channel, message_id), version in members.items():
            leaf = digest.key_leaf(channel, message_id)
            leaves[leaf] = digest.combine(
                leaves.get(leaf, (0, 0)), (1, digest.entry_hash(channel, message_id, version))
            )
        nodes: dict[int, Digest] = {}
        for leaf, value in leaves.items():
            nodes[leaf >> 8] = digest.combine(nodes.get(leaf >> 8, (0, 0)), value)
        stale = {(k["pk"]["S"], k["sk"]["S"]) for k in self._tree_item_keys()}

        def items() -> Iterator[dict[str, Any]]:
            for (channel, message_id), version in members.items():
                yield {**member_key(channel, message_id), "v": {"S": version}}
            for leaf, (count, total) in leaves.items():
                yield {**leaf_key(leaf), "c": {"N": str(count)}, "h": {"N": str(total)}}
            for node, (count, total) in nodes.items():
                yield {**node_key(node), "c": {"N": str(count)}, "h": {"N": str(total)}}

        written = 0
        pending: list[dict[str, Any]] = []
        for item in items():
            stale.discard((item["pk"]["S"], item["sk"]["S"]))
            pending.append({"PutRequest": {"Item": item}})
            if len(pending) == _BATCH_WRITE_MAX:
                written += self._batch_write(pending)
                pending = []
                if progress is not None and written % 10_000 < _BATCH_WRITE_MAX:
                    progress(written)
        written += self._batch_write(pending)
        deletes = [{"DeleteRequest": {"Key": {"pk": {"S": pk}, "sk": {"S": sk}}}} for pk, sk in sorted(stale)]
        for start in range(0, len(deletes), _BATCH_WRITE_MAX):
            self._batch_write(deletes[start : start + _BATCH_WRITE_MAX])
        return len(members)

    # -- helpers ------------------------------------------------------------------------------

    def _tree_item_keys(self) -> Iterator[dict[str, Any]]:
        """Every tree item's key (a scan: only ``rebuild`` pays it)."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "pk, sk",
            "FilterExpression": "begins_with(pk, :p)",
            "ExpressionAttributeValues": {":p": {"S": TREE_PREFIX}},
        }
        while True:
            answer = self.client.scan(**request)
            yield from answer.get("Items", ())
            if not answer.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _batch_get(
        self, keys: list[dict[str, Any]], projection: str, *, consistent: bool = False
    ) -> Iterator[dict[str, Any]]:
        for start in range(0, len(keys), _BATCH_GET_MAX):
            pending: dict[str, Any] = {
                self.table: {"Keys": keys[start : start + _BATCH_GET_MAX], "ProjectionExpression": projection}
            }
            if consistent:
                pending[self.table]["ConsistentRead"] = True
            for attempt in range(_APPLY_ATTEMPTS):
                answer = self.client.batch_get_item(RequestItems=pending, ReturnConsumedCapacity="TOTAL")
                self._count(answer.get("ConsumedCapacity", ()))
                found = answer.get("Responses", {}).get(self.table, [])
                self.counters.items_read += len(found)
                yield from found
                pending = answer.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))  # throttled: back off, then the rest
            else:
                raise TreeConflict("digest tree: BatchGetItem left keys unprocessed after every retry")

    def _batch_write(self, requests: list[dict[str, Any]]) -> int:
        pending: dict[str, Any] = {self.table: requests} if requests else {}
        for attempt in range(_APPLY_ATTEMPTS * 2):
            if not pending:
                return len(requests)
            answer = self.client.batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}
            if pending:
                time.sleep(random.uniform(0, 0.05 * (attempt + 1)))
        raise TreeConflict("digest tree: BatchWriteItem left items unprocessed after every retry")

    def _query(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            answer = self.client.query(**request)
            self._count([answer.get("ConsumedCapacity") or {}])
            items = answer.get("Items", ())
            self.counters.items_read += len(items)
            yield from items
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            request = {**request, "ExclusiveStartKey": last}

    def _count(self, consumed: Iterable[dict[str, Any]]) -> None:
        for entry in consumed:
            self.counters.read_units += entry.get("CapacityUnits", 0.0)


def _member_pk(node: int) -> str:
    return f"{TREE_PREFIX}m#{node:02x}"


def _query(table: str, pk: str, low: str, high: str, projection: str) -> dict[str, Any]:
    """A Query of one partition's items with ``low <= sk <= high``."""
    return {
        "TableName": table,
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": {":pk": {"S": pk}, ":low": {"S": low}, ":high": {"S": high}},
        "ProjectionExpression": projection,
        "ReturnConsumedCapacity": "TOTAL",
    }


def _leaf_span(depth: int, start: int, stop: int) -> tuple[int, int]:
    if start >= stop:
        return 0, 0
    return digest.leaf_range(depth, start)[0], digest.leaf_range(depth, stop - 1)[1]


def _add(out: dict[int, Digest], node: int, item: dict[str, Any]) -> None:
    count, total = out.get(node, (0, 0))
    out[node] = count + int(item["c"]["N"]), (total + int(item["h"]["N"])) % digest.HASH_MOD


def _is_contention(exc: ClientError) -> bool:
    """A transaction cancelled by its condition (the member moved) or by a concurrent transaction."""
    error = exc.response.get("Error", {}).get("Code", "")
    if error == "TransactionConflictException":
        return True
    if error != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    codes = {r.get("Code") for r in reasons if isinstance(r, dict)}
    if codes:
        return codes <= {"None", "ConditionalCheckFailed", "TransactionConflict", None}
    message = exc.response.get("Error", {}).get("Message", "")
    return "ConditionalCheckFailed" in message or "TransactionConflict" in message


def scan_records(store: Any) -> Iterator[Message]:
    """Every record of a DynamoDBMessageStore's table, tombstones included, through its version
    index (what ``rebuild`` derives the tree from)."""
    from core.replication import iter_changes

    return iter_changes(store, None, page_size=1000)


def main(argv: list[str] | None = None) -> int:
    """``python -m adapters.aws.digests {rebuild,verify} --table NAME [--endpoint-url URL]``:
    derive the kept digest tree from the table's records, or compare it with them."""
    import argparse
    import os

    from adapters.aws.store import DynamoDBMessageStore, make_client

    parser = argparse.ArgumentParser(prog="python -m adapters.aws.digests", description=main.__doc__)
    parser.add_argument("action", choices=("rebuild", "verify"))
    parser.add_argument("--table", default=os.environ.get("OVERCAST_DYNAMODB_TABLE", ""))
    parser.add_argument("--endpoint-url", default=os.environ.get("OVERCAST_DYNAMODB_ENDPOINT") or None)
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    args = parser.parse_args(argv)
    credentials: dict[str, str] = {}
    if args.endpoint_url:  # an emulator takes any credentials
        credentials = {
            "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        }
    store = DynamoDBMessageStore(make_client(args.region, args.endpoint_url, **credentials), args.table, digests="kept")
    started = time.monotonic()
    if args.action == "rebuild":
        count = store.tree.rebuild(
            scan_records(store), progress=lambda n: print(f"  {n:,} tree items written", flush=True)
        )
        print(f"digest tree of {args.table}: rebuilt from {count:,} records in {time.monotonic() - started:.1f} s")
        return 0
    scanned = DynamoDBMessageStore(store.client, args.table, digests="scan")
    kept_leaves = store.tree_digests(digest.LEAF_DEPTH, 0, digest.LEAVES)
    scanned_leaves = scanned.tree_digests(digest.LEAF_DEPTH, 0, digest.LEAVES)
    differing = sorted(set(kept_leaves) | set(scanned_leaves), key=int)
    differing = [leaf for leaf in differing if kept_leaves.get(leaf) != scanned_leaves.get(leaf)]
    records = sum(c for c, _ in scanned_leaves.values())
    if differing:
        print(
            f"digest tree of {args.table}: {len(differing):,} of {digest.LEAVES:,} leaves differ from the "
            f"{records:,} records (first: {differing[:5]}); the stream may still be catching up, else rebuild"
        )
        return 1
    print(f"digest tree of {args.table}: matches its {records:,} records")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

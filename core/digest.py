"""The digest tree anti-entropy compares: the same numbers on every store holding the same records.

Every record (tombstones included) falls in one of ``LEAVES`` leaves by a hash of its key
``(channel, id)`` — never of its version, so an update stays in its leaf. A node's digest is
``(count, hash)``: how many records its leaves hold and the sum, modulo 2**48, of each record's
``entry_hash(channel, id, version)``. Sums are order-free and can be updated by subtracting a
record's old hash and adding its new one, so a store can keep them up to date at write time
(adapters/local/store.py does, with triggers in the write's own transaction); a store that does
not gets them computed by scanning (``MessageStore._tree_digests``).

The tree has ``LEAF_DEPTH + 1`` levels of fanout ``FANOUT``: node ``i`` at depth ``d`` covers the
leaves ``[i * FANOUT**(LEAF_DEPTH-d), (i+1) * FANOUT**(LEAF_DEPTH-d))``; depth 0 is the whole
store, depth ``LEAF_DEPTH`` the leaves. Two stores whose root digests agree hold the same
(key, version) set, but for a 2**-48 chance per difference.
"""

from __future__ import annotations

import hashlib

FANOUT_BITS = 4
FANOUT = 1 << FANOUT_BITS
LEAF_DEPTH = 4
LEAF_BITS = FANOUT_BITS * LEAF_DEPTH
LEAVES = 1 << LEAF_BITS  # 65,536: ~150 records a leaf at 10 M records
HASH_BITS = 48
HASH_MOD = 1 << HASH_BITS  # sums of 48-bit hashes stay exact in a signed 64-bit integer (SQLite)

Digest = tuple[int, int]  # (count, hash)
#: Position in the tree's leaf order: (leaf, channel, id).
Position = tuple[int, str, str]
#: One record as the tree lists it: (leaf, channel, id, version).
Entry = tuple[int, str, str, str]


def key_leaf(channel: str, message_id: str) -> int:
    """The leaf of a record's key: uniform over the leaves whatever the channels and ids look like."""
    raw = hashlib.blake2b(f"{channel}\x00{message_id}".encode(), digest_size=4, person=b"overcast-leaf").digest()
    return int.from_bytes(raw, "big") >> (32 - LEAF_BITS)


def entry_hash(channel: str, message_id: str, version: str) -> int:
    """A record's 48-bit contribution to its nodes' hashes."""
    raw = f"{channel}\x00{message_id}\x00{version}".encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=6, person=b"overcast-entry").digest(), "big")


def nodes_at(depth: int) -> int:
    """How many nodes the tree has at ``depth``."""
    return 1 << (FANOUT_BITS * depth)


def node_of(leaf: int, depth: int) -> int:
    """The node at ``depth`` that holds ``leaf``."""
    return leaf >> (FANOUT_BITS * (LEAF_DEPTH - depth))


def leaf_range(depth: int, index: int) -> tuple[int, int]:
    """The leaves ``[start, stop)`` under node ``index`` at ``depth``."""
    shift = FANOUT_BITS * (LEAF_DEPTH - depth)
    return index << shift, (index + 1) << shift


def children(depth: int, index: int) -> range:
    """The indexes, at ``depth + 1``, of a node's children."""
    return range(index * FANOUT, (index + 1) * FANOUT)


def combine(a: Digest, b: Digest) -> Digest:
    return a[0] + b[0], (a[1] + b[1]) % HASH_MOD


def digests_of(entries: list[Entry] | tuple[Entry, ...], depth: int) -> dict[int, Digest]:
    """Aggregate listed entries into the digests of their nodes at ``depth`` (for tests and scans)."""
    out: dict[int, Digest] = {}
    for leaf, channel, message_id, version in entries:
        node = node_of(leaf, depth)
        count, total = out.get(node, (0, 0))
        out[node] = count + 1, (total + entry_hash(channel, message_id, version)) % HASH_MOD
    return out

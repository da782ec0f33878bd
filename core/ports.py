"""Ports: the abstract interfaces core depends on. Adapters implement them per vendor.

Public methods do the shared bookkeeping (validation, pagination, tombstone filtering) and call
an abstract ``_step`` that the adapter fills in with its vendor's native operation, so no two
adapters repeat the same logic.
"""

from __future__ import annotations

import builtins
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from core import digest
from core.digest import Digest, Entry, Position
from core.errors import InvalidToken, Unauthenticated, Unavailable, ValidationError
from core.model import Message, Page, decode_cursor, encode_cursor, validate_channel, validate_message_id


class MessageStore(ABC):
    """Durable message storage. The conformance suite in tests/contract is its definition.

    Records are keyed by (channel, id). Deleted messages stay as tombstones so that deletes
    replicate and a late, older write cannot resurrect them.
    """

    #: A short name for logs and health output ("sqlite", "dynamodb", ...).
    kind: str = "store"

    def create(self, message: Message) -> None:
        """Insert a new record; raises AlreadyExists if (channel, id) exists, tombstone or not."""
        self._create(message)

    def put_if_newer(self, message: Message) -> bool:
        """Atomically write ``message`` only if its version is newer than the stored one (or none
        is stored). Returns whether it wrote. Equal versions do not write: re-delivery is a no-op."""
        return self._put_if_newer(message)

    def get(self, channel: str, message_id: str) -> Message | None:
        """The record, tombstones included; None if never seen."""
        validate_channel(channel)
        validate_message_id(message_id)
        return self._get(channel, message_id)

    def list(self, channel: str, limit: int, cursor: str | None = None) -> Page:
        """Live messages newest first. Pages are stable: the cursor marks a position in the
        sort order, so inserts of newer messages never shift or repeat later pages."""
        validate_channel(channel)
        if not 1 <= limit <= 1000:
            raise ValidationError("limit out of range", code="invalid_limit")
        before = decode_cursor(cursor) if cursor else None
        items: list[Message] = []
        for message in self._scan_newest_first(channel, before, limit + 1):
            if message.deleted:
                continue
            items.append(message)
            if len(items) > limit:
                break
        if len(items) > limit:
            items = items[:limit]
            return Page(items, encode_cursor(items[-1].sort_key))
        return Page(items, None)

    def changes_since(self, since: str | None, limit: int) -> builtins.list[Message]:
        """Up to ``limit`` records (tombstones included) whose version string is greater than
        ``since``, in ascending version order. Feeds anti-entropy, verification and emulated
        change feeds. ``since=None`` starts from the beginning."""
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit out of range", code="invalid_limit")
        changes = self._changes_since(since, limit)
        self.items_read += len(changes)
        return changes

    def tree_digests(self, depth: int, start: int, stop: int, since: str | None = None) -> dict[int, Digest]:
        """The digest tree (core.digest): ``(count, hash)`` of every non-empty node at ``depth``
        whose index is in ``[start, stop)``, over every record (tombstones included) — or, with
        ``since``, over the records whose version is greater. Equal on any two stores that hold
        the same (key, version) set; anti-entropy compares it top-down."""
        if not 0 <= depth <= digest.LEAF_DEPTH:
            raise ValidationError(f"depth must be 0-{digest.LEAF_DEPTH}", code="invalid_request")
        if not 0 <= start <= stop <= digest.nodes_at(depth):
            raise ValidationError("node range out of bounds", code="invalid_request")
        return self._tree_digests(depth, start, stop, since)

    def tree_entries(
        self, start: int, stop: int, after: Position | None, limit: int, since: str | None = None
    ) -> builtins.list[Entry]:
        """Up to ``limit`` records as ``(leaf, channel, id, version)`` whose leaf is in
        ``[start, stop)``, in (leaf, channel, id) order, strictly after ``after``; with ``since``,
        only records whose version is greater. Anti-entropy lists the leaves whose digests differ."""
        if not 0 <= start <= stop <= digest.LEAVES:
            raise ValidationError("leaf range out of bounds", code="invalid_request")
        if not 1 <= limit <= 10_000:
            raise ValidationError("limit out of range", code="invalid_limit")
        return self._tree_entries(start, stop, after, limit, since)

    def note_changes(self, messages: builtins.list[Message]) -> None:  # noqa: B027 - optional hook
        """Records this store's own change feed delivered (handlers.kit calls it with each batch,
        after forwarding it). A store that keeps derived state from its feed (DynamoDB's digest
        tree, adapters/aws/digests.py) brings it up to date here; it must be idempotent, as feeds
        deliver at least once. Default: nothing to keep."""

    def reindex(self, keys: builtins.list[tuple[str, str]]) -> None:  # noqa: B027 - optional hook
        """Re-derive kept digests for these ``(channel, id)`` keys from the records themselves:
        anti-entropy calls it for keys the trees said differed but whose pull changed nothing, so a
        feed record that never arrived cannot hide a difference forever. Default: nothing kept."""

    def ping(self) -> None:
        """A real round trip to the backing service; raises Unavailable if it does not answer."""
        self._ping()

    #: Records (or digest rows) this store object has read for anti-entropy and change scans, and
    #: the read units its service charged where it reports them: figures for benchmarks and logs.
    items_read: int = 0
    read_units: float = 0.0
    #: Whether ``tree_digests`` over every record (``since=None``) reads kept digests (a few
    #: hundred rows) rather than scanning: anti-entropy then asks for each run of nodes apart.
    maintains_digests: bool = False

    # -- digest tree: computed by scanning unless a store keeps it up to date --------------------

    def _tree_digests(self, depth: int, start: int, stop: int, since: str | None) -> dict[int, Digest]:
        """Default: one scan of every record in scope (``changes_since``). Linear in the store (or
        the window); a store that maintains digests at write time overrides this."""
        out: dict[int, Digest] = {}
        for message in self._scan_versions(since):
            leaf = digest.key_leaf(message.channel, message.id)
            node = digest.node_of(leaf, depth)
            if start <= node < stop:
                count, total = out.get(node, (0, 0))
                out[node] = (
                    count + 1,
                    (total + digest.entry_hash(message.channel, message.id, str(message.version))) % (digest.HASH_MOD),
                )
        return out

    def _tree_entries(
        self, start: int, stop: int, after: Position | None, limit: int, since: str | None
    ) -> builtins.list[Entry]:
        """Default: one scan of every record in scope, keeping the requested leaves."""
        found: builtins.list[Entry] = []
        for message in self._scan_versions(since):
            leaf = digest.key_leaf(message.channel, message.id)
            if start <= leaf < stop and (after is None or (leaf, message.channel, message.id) > after):
                found.append((leaf, message.channel, message.id, str(message.version)))
        found.sort()
        return found[:limit]

    def _scan_versions(self, since: str | None) -> Iterator[Message]:
        """Every record with a version after ``since``, a page at a time (ties kept whole)."""
        from core.replication import iter_changes  # core.replication imports this module

        return iter_changes(self, since, page_size=1000)

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing to release
        """Release connections. Optional."""

    @abstractmethod
    def _create(self, message: Message) -> None: ...

    @abstractmethod
    def _put_if_newer(self, message: Message) -> bool: ...

    @abstractmethod
    def _get(self, channel: str, message_id: str) -> Message | None: ...

    @abstractmethod
    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        """Yield the channel's records (tombstones included) with ``sort_key < before`` (all when
        None), in descending sort_key order. ``page_hint`` is how many the caller probably wants:
        fetch in batches of about that size and keep yielding lazily."""

    @abstractmethod
    def _changes_since(self, since: str | None, limit: int) -> builtins.list[Message]: ...

    @abstractmethod
    def _ping(self) -> None: ...


class RevisionedMessageStore(MessageStore):
    """A store whose conditional write is compare-and-swap on a revision token it issues (Cosmos
    DB etags, CouchDB/Cloudant ``_rev``). ``put_if_newer`` is the same loop for all of them — read
    the stored version and revision, compare versions, write only if the revision is unchanged,
    start over when another writer got in first — so it lives here, and an adapter supplies the
    two vendor steps."""

    #: Attempts before a contended write gives up with a 503 (the caller retries later).
    max_write_attempts = 10

    def _put_if_newer(self, message: Message) -> bool:
        incoming = str(message.version)
        # A message's first version (posted, not deleted since: a tombstone is a later version) is
        # almost always new to the store it is replicated to, so it is created without reading
        # first: one round trip instead of two. If the id exists (a re-delivery, or the other copy
        # of a cross-cloud idempotent retry) the create fails and the loop compares as always.
        first_version = not message.deleted and message.version.physical_ms == message.created_ms
        if first_version and self._write_if_revision(message, None):
            return True
        for attempt in range(self.max_write_attempts):
            if attempt:
                time.sleep(random.uniform(0, 0.002 * attempt))  # de-synchronise contending writers
            stored_version, revision = self._read_revision(message.channel, message.id)
            if stored_version is not None and stored_version >= incoming:
                return False
            if self._write_if_revision(message, revision):
                return True
        raise Unavailable(
            f"message {message.channel}/{message.id} stayed contended for {self.max_write_attempts} attempts",
            retry_after=1,
            code="store_contention",
        )

    @abstractmethod
    def _read_revision(self, channel: str, message_id: str) -> tuple[str | None, str | None]:
        """The stored record's version string and revision token; (None, None) when missing."""

    @abstractmethod
    def _write_if_revision(self, message: Message, revision: str | None) -> bool:
        """Write the whole record if the stored revision is still ``revision`` (None: create it,
        only if it does not exist). False when another writer got there first (the loop reads
        again); any other failure raises a core error."""


class Clock(ABC):
    """Wall clock in milliseconds; injected so tests and drills control time."""

    @abstractmethod
    def now_ms(self) -> int: ...


@dataclass(frozen=True)
class PeerResponse:
    status: int
    body: bytes


class PeerTransport(ABC):
    """Sends a signed replication batch to a peer cloud over HTTPS."""

    @abstractmethod
    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        """POST and return the response; raise Unavailable when the peer cannot be reached."""


class SecretStore(ABC):
    """The platform's secret store, read at run time (never a plain environment variable) and
    cached for the life of the process: a warm invocation reads no secret again."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def get(self, secret_id: str) -> str:
        """The secret's value; raises ConfigurationError when it is missing or not readable by
        this function, Unavailable when the store does not answer."""
        if secret_id not in self._cache:
            value = self._fetch(secret_id)
            if not value:
                from core.errors import ConfigurationError

                raise ConfigurationError(f"secret {secret_id!r} is empty")
            self._cache[secret_id] = value
        return self._cache[secret_id]

    @abstractmethod
    def _fetch(self, secret_id: str) -> str: ...


@dataclass(frozen=True)
class Principal:
    """A verified caller: the token's subject, the claim used as message author, its scopes."""

    subject: str
    author: str
    scopes: frozenset[str] = frozenset()


#: Longest Authorization header read: real access tokens are 1-2 KB; anything far bigger is
#: refused before any parsing, so a huge header costs nothing.
MAX_BEARER_TOKEN_CHARS = 8192


class Authorizer(ABC):
    """Verifies a request's bearer credential and says who the caller is."""

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer <token>`` header. Raises Unauthenticated
        when there is no bearer token, InvalidToken when it does not verify, Unavailable when the
        issuer's keys cannot be fetched."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthenticated("a bearer token is required")
        token = token.strip()
        if not token:
            raise InvalidToken("the bearer token is empty")
        if len(token) > MAX_BEARER_TOKEN_CHARS:
            raise InvalidToken("the bearer token is too large")
        return self._verify(token)

    @abstractmethod
    def _verify(self, token: str) -> Principal:
        """Verify the token (signature, issuer, audience, lifetime); raise InvalidToken if not."""


class SystemClock(Clock):
    def now_ms(self) -> int:
        import time

        return time.time_ns() // 1_000_000

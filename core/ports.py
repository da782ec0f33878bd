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
        return self._changes_since(since, limit)

    def ping(self) -> None:
        """A real round trip to the backing service; raises Unavailable if it does not answer."""
        self._ping()

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

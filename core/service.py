"""Use cases of the message board: post, get, list, delete, health, apply_replicated."""

from __future__ import annotations

import concurrent.futures
import logging
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import (
    AlreadyExists,
    Conflict,
    IdempotencyMismatch,
    NotFound,
    OvercastError,
    Unavailable,
    ValidationError,
)
from core.logs import get_logger, log
from core.model import (
    HybridLogicalClock,
    Limits,
    Message,
    Page,
    idempotent_message_id,
    new_message_id,
    request_digest,
    validate_channel,
    validate_message_id,
    validate_record_text,
)
from core.ports import MessageStore

logger = get_logger("service")
_IDEMPOTENCY_KEY_CHARS = set(map(chr, range(0x21, 0x7F)))  # printable ASCII, no space
# An author is one line of display text: no C0/C1 controls, no line or paragraph separators.
_SINGLE_LINE_FORBIDDEN = frozenset({"Cc", "Zl", "Zp"})


@dataclass(frozen=True)
class PostResult:
    message: Message
    created: bool  # False when an Idempotency-Key replayed an existing message


@dataclass(frozen=True)
class ApplyResult:
    applied: int
    ignored: int
    #: The version times (origin clock, ms) of the records applied: their replication lag.
    applied_versions_ms: tuple[int, ...] = ()


class MessageService:
    def __init__(self, store: MessageStore, clock: HybridLogicalClock, limits: Limits | None = None) -> None:
        self.store = store
        self.clock = clock
        self.limits = limits or Limits()
        self._health_pool: concurrent.futures.ThreadPoolExecutor | None = None

    # -- messages ---------------------------------------------------------------------------

    def post(self, channel: str, author: Any, text: Any, idempotency_key: str | None = None) -> PostResult:
        validate_channel(channel)
        author = self._text_field("author", author, self.limits.max_author_chars, single_line=True)
        text = self._text_field("text", text, self.limits.max_text_chars)
        version = self.clock.tick()
        if idempotency_key is None:
            message_id, digest = new_message_id(version.physical_ms), ""
        else:
            self._check_idempotency_key(idempotency_key)
            message_id, digest = idempotent_message_id(channel, idempotency_key), request_digest(author, text)
        message = Message(channel, message_id, author, text, version.physical_ms, version, request_digest=digest)
        try:
            self.store.create(message)
        except AlreadyExists:
            if idempotency_key is None:  # 80 random bits collided: let the client retry
                raise Unavailable("message id collision, retry", retry_after=1) from None
            return PostResult(self._replay(message), created=False)
        # DEBUG: over HTTP the request's access line carries channel, id and version at INFO.
        log(logger, logging.DEBUG, "message posted", channel=channel, id=message_id, version=str(version))
        return PostResult(message, created=True)

    def _replay(self, attempted: Message) -> Message:
        existing = self.store.get(attempted.channel, attempted.id)
        if existing is None:  # create said it exists, get says not: a store in flux; retry is safe
            raise Unavailable("store is settling, retry", retry_after=1)
        if existing.deleted:
            raise Conflict("the message created with this Idempotency-Key was deleted", code="message_deleted")
        if existing.request_digest != attempted.request_digest:
            raise IdempotencyMismatch("this Idempotency-Key was used with a different author or text")
        return existing

    def get(self, channel: str, message_id: str) -> Message:
        message = self.store.get(channel, message_id)
        if message is None or message.deleted:
            raise NotFound(f"no message {message_id} in channel {channel}")
        return message

    def list(self, channel: str, limit: int | None = None, cursor: str | None = None) -> Page:
        size = self.limits.default_page_size if limit is None else limit
        if not 1 <= size <= self.limits.max_page_size:
            raise ValidationError(f"limit must be between 1 and {self.limits.max_page_size}", code="invalid_limit")
        return self.store.list(channel, size, cursor)

    def delete(self, channel: str, message_id: str) -> None:
        validate_message_id(message_id)
        existing = self.get(channel, message_id)
        for _ in range(5):
            self.clock.observe(existing.version, force=True)  # the tombstone must supersede it
            if self.store.put_if_newer(existing.tombstone(self.clock.tick())):
                log(logger, logging.INFO, "message deleted", channel=channel, id=message_id)
                return
            # A newer version landed between our read and write (a replicated edit): retry on it.
            current = self.store.get(channel, message_id)
            if current is None or current.deleted:
                return
            existing = current
        raise Unavailable("message kept changing during delete, retry", retry_after=1)

    # -- replication ------------------------------------------------------------------------

    def apply_replicated(self, messages: Iterable[Message]) -> ApplyResult:
        """Last-writer-wins merge of records from a peer. Re-delivery and reordering are harmless."""
        applied = ignored = 0
        versions_ms: list[int] = []
        for message in messages:
            if not self.clock.observe(message.version):
                log(
                    logger,
                    logging.WARNING,
                    "replicated version is far ahead of this clock; applied, not followed",
                    origin=message.origin,
                    version=str(message.version),
                )
            if self.store.put_if_newer(message):
                applied += 1
                versions_ms.append(message.version.physical_ms)
            else:
                ignored += 1
        return ApplyResult(applied, ignored, tuple(versions_ms))

    # -- health -----------------------------------------------------------------------------

    def deep_health(self, timeout_s: float) -> dict[str, Any]:
        """A real store round trip, bounded so a hung store fails the check instead of hanging it."""
        if self._health_pool is None:
            self._health_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health")
        started = time.perf_counter()
        future = self._health_pool.submit(self.store.ping)
        try:
            future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            raise Unavailable(
                f"store did not answer within {timeout_s:.1f} s", retry_after=5, code="store_timeout"
            ) from None
        except OvercastError:
            raise
        except Exception as exc:  # an adapter that failed to translate: still a 503, and logged
            logger.exception("store ping failed")
            raise Unavailable(f"store ping failed: {type(exc).__name__}", retry_after=5) from exc
        return {
            "status": "ok",
            "store": self.store.kind,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }

    # -- validation -------------------------------------------------------------------------

    @staticmethod
    def _text_field(name: str, value: Any, max_chars: int, *, single_line: bool = False) -> str:
        if value is None:
            raise ValidationError(f"{name} is required", code="missing_field")
        validate_record_text(name, value, max_chars)
        if not value.strip():
            raise ValidationError(f"{name} must not be blank", code="invalid_field")
        # isprintable() is False for every Cc, Zl and Zp character (and some others): only then
        # is the per-character look-up needed.
        if (
            single_line
            and not value.isprintable()
            and any(unicodedata.category(c) in _SINGLE_LINE_FORBIDDEN for c in value)
        ):
            raise ValidationError(f"{name} must not contain control characters or line breaks", code="invalid_field")
        return value

    def _check_idempotency_key(self, key: str) -> None:
        if not 1 <= len(key) <= self.limits.max_idempotency_key_chars or not set(key) <= _IDEMPOTENCY_KEY_CHARS:
            raise ValidationError(
                f"Idempotency-Key must be 1-{self.limits.max_idempotency_key_chars} printable ASCII characters",
                code="invalid_idempotency_key",
            )

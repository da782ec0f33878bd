"""The message-board domain: messages, hybrid-logical-clock versions, pages.

Every record carries a ``Version``. Versions order totally — physical time, then counter, then
origin as a deterministic tie-break — so last-writer-wins resolves identically in every cloud.
Their string form is fixed-width, so a store can compare versions with its native string
comparison (a DynamoDB condition, a SQL ``WHERE``) and get the same order as Python.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from core.errors import ValidationError

# \A...\Z, never ^...$: "$" also matches before a trailing newline, so "london\n" would pass
# (and end up in a Location header). [0-9], never \d: \d matches every script's digits.
ORIGIN_RE = re.compile(r"\A[a-z0-9][a-z0-9-]{0,31}\Z")
CHANNEL_RE = re.compile(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z")
MESSAGE_ID_RE = re.compile(r"\A[0-9a-z]{26}\Z")
_VERSION_RE = re.compile(r"\A([0-9]{13})-([0-9]{6})-([a-z0-9][a-z0-9-]{0,31})\Z")
_REQUEST_DIGEST_RE = re.compile(r"\A[\x21-\x7e]{0,64}\Z")  # ours are 32 hex digits; any short token reads
_MAX_COUNTER = 999_999
#: created_ms and a version's physical time: 13 decimal digits (fixed-width strings sort right).
MAX_TIME_MS = 10**13 - 1
#: The largest author and text any deployment accepts (the OVERCAST_MAX_*_CHARS settings are
#: capped at these). A record beyond them is one no peer will take, so it is refused on parsing.
MAX_RECORD_AUTHOR_CHARS = 1024
MAX_RECORD_TEXT_CHARS = 64_000


@dataclass(frozen=True, order=True)
class Version:
    """Hybrid logical clock timestamp: wall-clock ms, logical counter, origin (tie-break)."""

    physical_ms: int
    counter: int
    origin: str

    def __post_init__(self) -> None:
        if not (_is_int(self.physical_ms) and _is_int(self.counter)):
            raise ValidationError("version parts must be integers", code="invalid_version")
        if not (0 <= self.physical_ms <= MAX_TIME_MS and 0 <= self.counter <= _MAX_COUNTER):
            raise ValidationError(f"version out of range: {self.physical_ms}/{self.counter}", code="invalid_version")
        if not isinstance(self.origin, str) or not ORIGIN_RE.match(self.origin):
            raise ValidationError(f"invalid origin {quote(self.origin)}", code="invalid_version")

    def __str__(self) -> str:
        # Formatted once: a write puts it in the item, the response and the access line.
        text = self.__dict__.get("_text")
        if text is None:
            text = f"{self.physical_ms:013d}-{self.counter:06d}-{self.origin}"
            object.__setattr__(self, "_text", text)
        return text

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION_RE.match(text) if isinstance(text, str) else None
        if not match:
            raise ValidationError(f"invalid version {quote(text)}", code="invalid_version")
        # The pattern admits exactly what __post_init__ checks (13 and 6 digits, an origin of
        # ORIGIN_RE's form), so they are not run again; the text is the version's string form.
        # (Every record read runs this: a page of 20 is 20 versions.)
        version = object.__new__(cls)
        version.__dict__.update(physical_ms=int(match[1]), counter=int(match[2]), origin=match[3], _text=match[0])
        return version

    @classmethod
    def floor(cls, physical_ms: int) -> str:
        """The string that sorts before every version at or after ``physical_ms``."""
        return f"{max(physical_ms, 0):013d}-"


class HybridLogicalClock:
    """Issues versions that are monotonic per process and causally after anything observed.

    ``now_ms`` is the physical clock (injected so tests control time). Thread-safe: local
    servers handle requests on several threads.
    """

    #: How far ahead of this machine's wall clock an observed version may pull the clock. A peer
    #: whose clock is broken (hours ahead) must not drag every replica's versions into its future.
    DEFAULT_MAX_DRIFT_MS = 60_000

    def __init__(
        self, origin: str, now_ms: Callable[[], int] | None = None, max_drift_ms: int = DEFAULT_MAX_DRIFT_MS
    ) -> None:
        if not ORIGIN_RE.match(origin):
            raise ValidationError(f"invalid origin {quote(origin)}: use 1-32 of [a-z0-9-]")
        self.origin = origin
        self.max_drift_ms = max_drift_ms
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._last = Version(0, 0, origin)
        self._lock = threading.Lock()

    def tick(self) -> Version:
        with self._lock:
            physical = self._now_ms()
            if physical > self._last.physical_ms:
                self._last = Version(physical, 0, self.origin)
            else:
                self._last = self._bump(self._last.physical_ms, self._last.counter)
            return self._last

    def observe(self, remote: Version, *, force: bool = False) -> bool:
        """Move past a version seen from elsewhere, so the next local write orders after it.

        A version more than ``max_drift_ms`` ahead of the wall clock is not followed (returns
        False; the caller logs it) unless ``force``: a write that must supersede that very record
        (a delete of it) follows it anyway."""
        with self._lock:
            if not force and remote.physical_ms > self._now_ms() + self.max_drift_ms:
                return False
            if remote.physical_ms > self._last.physical_ms or (
                remote.physical_ms == self._last.physical_ms and remote.counter > self._last.counter
            ):
                self._last = Version(remote.physical_ms, remote.counter, self.origin)
            return True

    def _bump(self, physical: int, counter: int) -> Version:
        if counter >= _MAX_COUNTER:  # a million writes in one ms: borrow the next millisecond
            return Version(physical + 1, 0, self.origin)
        return Version(physical, counter + 1, self.origin)


#: The fields of a stored or replicated record (``Message.to_record()``), in that order: what a
#: store projects in its queries so vendor system properties stay out of results.
RECORD_FIELDS = (
    "channel",
    "id",
    "author",
    "text",
    "created_ms",
    "sort_key",
    "version",
    "origin",
    "deleted",
    "request_digest",
)


@dataclass(frozen=True, init=False)
class Message:
    """One message, or the tombstone of a deleted one (``deleted=True``, content cleared)."""

    channel: str
    id: str
    author: str
    text: str
    created_ms: int
    version: Version
    deleted: bool = False
    # Digest of the request that created it under an Idempotency-Key, to spot key reuse.
    request_digest: str = ""

    def __init__(
        self,
        channel: str,
        id: str,
        author: str,
        text: str,
        created_ms: int,
        version: Version,
        deleted: bool = False,
        request_digest: str = "",
    ) -> None:
        """Every Message is one every store can hold and every peer accepts, however it was
        built (an API post, a replicated record, a change-stream image, a store read).

        Written by hand rather than generated: each field has a cheap test that passes for
        every ordinary value (exact types, ASCII text) and falls back to the full check, which
        raises or admits the rare rest (non-ASCII text, a str subclass); the fields are stored
        in one step, not one ``object.__setattr__`` each. Every record read runs this (a page
        of 20 is 21 records): it costs two thirds of the generated ``__init__`` + ``__post_init__``."""
        if not (type(channel) is str and CHANNEL_RE.match(channel)):
            validate_channel(channel)
        if not (type(id) is str and MESSAGE_ID_RE.match(id)):
            validate_message_id(id)
        if not (type(author) is str and len(author) <= MAX_RECORD_AUTHOR_CHARS and _plain(author)):
            validate_record_text("author", author, MAX_RECORD_AUTHOR_CHARS)
        if not (type(text) is str and len(text) <= MAX_RECORD_TEXT_CHARS and _plain(text)):
            validate_record_text("text", text, MAX_RECORD_TEXT_CHARS)
        if not (_is_int(created_ms) and 0 <= created_ms <= MAX_TIME_MS):
            raise ValidationError("created_ms must be an integer from 0 to 10^13-1", code="invalid_record")
        if not isinstance(version, Version):
            raise ValidationError("version must be a Version", code="invalid_record")
        if not isinstance(deleted, bool):
            raise ValidationError("deleted must be a boolean", code="invalid_record")
        if not (type(request_digest) is str and request_digest == "") and not (  # most records have none
            isinstance(request_digest, str) and _REQUEST_DIGEST_RE.match(request_digest)
        ):
            raise ValidationError("request_digest must be up to 64 printable ASCII characters", code="invalid_record")
        self.__dict__.update(
            channel=channel,
            id=id,
            author=author,
            text=text,
            created_ms=created_ms,
            version=version,
            deleted=deleted,
            request_digest=request_digest,
        )

    @property
    def origin(self) -> str:
        return self.version.origin

    @property
    def sort_key(self) -> str:
        """Newest-first listing order within a channel; unique because the id is in it."""
        return sort_key(self.created_ms, self.id)

    def tombstone(self, version: Version) -> Message:
        return replace(self, author="", text="", deleted=True, version=version)

    def to_record(self) -> dict[str, Any]:
        """Flat, JSON-safe form that every store persists and replication ships."""
        return {
            "channel": self.channel,
            "id": self.id,
            "author": self.author,
            "text": self.text,
            "created_ms": self.created_ms,
            "sort_key": self.sort_key,
            "version": str(self.version),
            "origin": self.origin,
            "deleted": self.deleted,
            "request_digest": self.request_digest,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Message:
        """Validate and build from a stored or replicated record; raises ValidationError (and
        only that) for anything else: a missing field, a wrong type (no coercion: ``None`` is
        not the author "None"), a non-finite or out-of-range number, malformed Unicode."""
        if not isinstance(record, Mapping):
            raise ValidationError(f"a record must be an object, not {type(record).__name__}", code="invalid_record")
        missing = [name for name in ("channel", "id", "author", "text", "created_ms", "version") if name not in record]
        if missing:
            raise ValidationError(f"record lacks {', '.join(missing)}", code="invalid_record")
        for name in ("channel", "id", "author", "text", "version"):
            if not isinstance(record[name], str):
                raise ValidationError(f"record field {name} must be a string", code="invalid_record")
        for name in ("origin", "sort_key"):  # derived (from version, created_ms and id), but typed
            if name in record and not isinstance(record[name], str):
                raise ValidationError(f"record field {name} must be a string", code="invalid_record")
        digest = record.get("request_digest")
        return cls(
            channel=record["channel"],
            id=record["id"],
            author=record["author"],
            text=record["text"],
            created_ms=record_int(record["created_ms"], "created_ms"),
            version=Version.parse(record["version"]),
            deleted=_record_bool(record.get("deleted", False)),
            request_digest="" if digest is None else digest,
        )

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "author": self.author,
            "text": self.text,
            "created_at": _iso8601(self.created_ms),
            "version": str(self.version),
            "origin": self.origin,
        }


@dataclass(frozen=True)
class Page:
    items: list[Message]
    next_cursor: str | None = None


@dataclass(frozen=True)
class Limits:
    """Explicit input limits, documented in openapi.yaml and settable per deployment."""

    max_author_chars: int = 64
    max_text_chars: int = 4000
    max_body_bytes: int = 64 * 1024
    max_idempotency_key_chars: int = 128
    default_page_size: int = 20
    max_page_size: int = 100
    max_batch_records: int = 100
    max_batch_bytes: int = 1024 * 1024


def sort_key(created_ms: int, message_id: str) -> str:
    return f"{created_ms:013d}~{message_id}"


def quote(value: Any, limit: int = 40) -> str:
    """Untrusted input made safe to put in an error message or a log line: printable ASCII only
    (``ascii()`` escapes every control character, non-ASCII character and lone surrogate, so the
    result always encodes), and short."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def is_well_formed(text: str) -> bool:
    """No lone surrogates: the string is valid Unicode, so UTF-8 (and every store) can hold it."""
    if text.isascii():  # a flag CPython keeps on every string: no copy, no scan
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _plain(text: str) -> bool:
    """ASCII without NUL: passes every check of validate_record_text but the length."""
    return text.isascii() and "\x00" not in text


def validate_record_text(name: str, value: Any, max_chars: int) -> str:
    """What any record's author or text must be: a well-formed string within the largest limit,
    no NUL (which several stores and drivers truncate at)."""
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string", code="invalid_field")
    if len(value) > max_chars:
        raise ValidationError(f"{name} is longer than {max_chars} characters", code="field_too_long")
    if not is_well_formed(value):
        raise ValidationError(f"{name} is not well-formed Unicode (lone surrogate)", code="invalid_unicode")
    if "\x00" in value:
        raise ValidationError(f"{name} must not contain NUL characters", code="invalid_field")
    return value


def record_int(value: Any, name: str) -> int:
    """An integer field of a record as stores and event payloads carry it: an int, or a float
    with an integral finite value (JSON stores and Firestore doubles). Never a bool, NaN or
    infinity; a string only when it is plain ASCII digits (DynamoDB's N type)."""
    if isinstance(value, bool):
        raise ValidationError(f"{name} must be a number", code="invalid_record")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and 0 < len(value) <= 13 and value.isascii() and value.isdigit():
        return int(value)
    raise ValidationError(f"{name} must be an integer", code="invalid_record")


def _record_bool(value: Any) -> bool:
    if isinstance(value, bool):  # not 0/1, not "false": a peer must send what the API documents
        return value
    raise ValidationError("deleted must be a boolean", code="invalid_record")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_channel(channel: str) -> str:
    if not isinstance(channel, str) or not CHANNEL_RE.match(channel):
        raise ValidationError(
            "channel must be 1-64 characters of a-z, 0-9, '-', '_', starting with a letter or digit",
            code="invalid_channel",
        )
    return channel


def validate_message_id(message_id: str) -> str:
    if not isinstance(message_id, str) or not MESSAGE_ID_RE.match(message_id):
        raise ValidationError("message id must be 26 characters of 0-9a-z", code="invalid_message_id")
    return message_id


_B32 = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase: sortable, unambiguous


_B32_PAIRS = [high + low for high in _B32 for low in _B32]  # 10 bits → two digits


def _b32(data: bytes, length: int) -> str:
    """The low ``length * 5`` bits of ``data`` as ``length`` base32 digits, most significant
    first: two digits per table lookup (this runs on every POST; a divmod per digit cost 3x)."""
    number = int.from_bytes(data, "big")
    head = _B32[(number >> (5 * (length - 1))) & 31] if length % 2 else ""
    return head + "".join([_B32_PAIRS[(number >> shift) & 1023] for shift in range(10 * (length // 2) - 10, -1, -10)])


def new_message_id(now_ms: int) -> str:
    """Time-ordered random id (ULID layout: 48-bit ms + 80 random bits)."""
    return _b32(now_ms.to_bytes(6, "big") + os.urandom(10), 26)


def idempotent_message_id(channel: str, idempotency_key: str) -> str:
    """Same channel + key → same id in every cloud, so a retry after failover cannot duplicate."""
    digest = hashlib.sha256(f"{channel}\x00{idempotency_key}".encode()).digest()
    return _b32(digest[:16], 26)


def request_digest(author: str, text: str) -> str:
    return hashlib.sha256(f"{author}\x00{text}".encode()).hexdigest()[:32]


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        key = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("cursor is not one this API issued", code="invalid_cursor") from exc
    created, sep, message_id = key.partition("~")
    if not (sep and len(created) == 13 and created.isascii() and created.isdigit() and MESSAGE_ID_RE.match(message_id)):
        raise ValidationError("cursor is not one this API issued", code="invalid_cursor")
    return key


_SECONDS_FORMATTED: dict[int, str] = {}  # whole second -> "YYYY-MM-DDTHH:MM:SS", a bounded memo


def _iso8601(ms: int) -> str:
    """Formatting a second costs more than the rest of ``to_api``; a page of messages mostly
    falls in a few seconds, so each is formatted once."""
    seconds, millis = divmod(ms, 1000)
    prefix = _SECONDS_FORMATTED.get(seconds)
    if prefix is None:
        if len(_SECONDS_FORMATTED) >= 4096:
            _SECONDS_FORMATTED.clear()
        prefix = _SECONDS_FORMATTED[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{prefix}.{millis:03d}Z"

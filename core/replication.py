"""Replication between clouds: signed requests, inbound verification, outbound forwarding.

Wire format of a batch (``POST /replication/batch``)::

    headers: X-Overcast-Origin: <sender origin>
             X-Overcast-Timestamp: <unix seconds>
             X-Overcast-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
    body:    {"origin": "<sender origin>", "records": [<Message.to_record()>, ...]}

Anti-entropy (core/anti_entropy.py) adds three read-only requests signed the same way:
``POST /replication/digest`` (a page of the peer's (channel, id, version) since a version floor),
``POST /replication/tree`` (nodes of the peer's digest tree, or the records of some of its
leaves: core/digest.py) and ``POST /replication/fetch`` (full records for a list of keys).
``GET /replication/status`` (core/replication_status.py) is signed the same way, over an empty body.
A batch that anti-entropy sends carries ``"repair": true``, so the status counts it apart.

Each pair of peers shares a secret. A request is rejected (401, nothing applied) when the
signature is missing or wrong (``signature_*``), or when it is correctly signed but its timestamp
is further than the freshness window from now (``clock_skew``, with the offset: the sender's
clock is off, or the request is an old one replayed). Replaying a valid batch is harmless because
applying is last-writer-wins on versions; the window bounds how long a captured request (a read
of digests or records included) stays usable.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import functools
import hashlib
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.errors import ClockSkew, OvercastError, PayloadTooLarge, Unauthorized, Unavailable, ValidationError
from core.http import parse_json
from core.logs import get_logger, log
from core.model import Limits, Message
from core.ports import MessageStore, PeerTransport
from core.replication_status import ReplicationStatus
from core.service import ApplyResult, MessageService
from core.settings import Peer

logger = get_logger("replication")

ORIGIN_HEADER = "x-overcast-origin"
TIMESTAMP_HEADER = "x-overcast-timestamp"
SIGNATURE_HEADER = "x-overcast-signature"
BATCH_PATH = "/replication/batch"
DIGEST_PATH = "/replication/digest"
FETCH_PATH = "/replication/fetch"
TREE_PATH = "/replication/tree"
STATUS_PATH = "/replication/status"
SIGNED_PATHS = frozenset({BATCH_PATH, DIGEST_PATH, FETCH_PATH, TREE_PATH, STATUS_PATH})
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE_RE = re.compile(r"^v1=[0-9a-f]{64}$")


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signed_headers(origin: str, secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        ORIGIN_HEADER: origin,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def verify(
    headers: Mapping[str, str], body: bytes, secret_for: Callable[[str], str | None], now_s: int, max_skew_s: int
) -> str:
    """Check a signed request; returns the sender's origin or raises Unauthorized.

    The timestamp must be plain digits (the exact text is what was signed) and the signature
    exactly ``v1=<64 hex>``; both are checked before any comparison, so odd header bytes give a
    401, never an error inside ``compare_digest``.
    """
    origin = headers.get(ORIGIN_HEADER, "")
    timestamp_text = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not (origin and timestamp_text and signature):
        raise Unauthorized("missing replication signature headers", code="signature_missing")
    secret = secret_for(origin)
    if not secret:
        raise Unauthorized(f"unknown peer {origin[:40]!r}", code="unknown_peer")
    if not _TIMESTAMP_RE.match(timestamp_text):
        raise Unauthorized("malformed timestamp", code="signature_invalid")
    timestamp = int(timestamp_text)
    if not _SIGNATURE_RE.match(signature):
        raise Unauthorized("malformed signature", code="signature_invalid")
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.encode()):
        raise Unauthorized("signature does not match", code="signature_invalid")
    # Checked after the signature, so the offset named is the real peer's clock (or a replay of
    # one of its requests), never a number anyone could put in a header.
    offset_s = timestamp - now_s
    if abs(offset_s) > max_skew_s:
        raise ClockSkew(
            f"clock skew: the sender's clock is {offset_s:+d} s from the receiver's (window {max_skew_s} s)",
            offset_s=offset_s,
        )
    return origin


def clock_offset_s(headers: Mapping[str, str], now_s: int) -> int | None:
    """The sender's clock minus ours, from a verified request's signed timestamp (1 s resolution)."""
    text = headers.get(TIMESTAMP_HEADER, "")
    return int(text) - now_s if _TIMESTAMP_RE.match(text) else None


def decode_json_object(body: bytes, sender: str, max_bytes: int) -> dict[str, Any]:
    """Parse a signed request body: a JSON object whose ``origin`` is the signed sender."""
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body larger than {max_bytes} bytes")
    payload = parse_json(body)  # bounded depth, no NaN, well-formed Unicode: ValidationError only
    if not isinstance(payload, dict):
        raise ValidationError("body must be a JSON object", code="invalid_batch")
    if payload.get("origin") != sender:
        raise ValidationError("body origin does not match the signed origin", code="invalid_batch")
    return payload


def decode_batch(body: bytes, sender: str, limits: Limits) -> list[Message]:
    """Parse and validate a whole batch before anything is applied: one bad record rejects all."""
    return decode_batch_payload(body, sender, limits)[0]


def decode_batch_payload(body: bytes, sender: str, limits: Limits) -> tuple[list[Message], bool]:
    """``decode_batch`` and whether the sender's anti-entropy sent it (``"repair": true``) rather
    than its change stream: only the status counts the difference, apply is the same."""
    payload = decode_json_object(body, sender, limits.max_batch_bytes)
    records = payload.get("records")
    if not isinstance(records, list):
        raise ValidationError("batch must be an object with a records list", code="invalid_batch")
    if len(records) > limits.max_batch_records:
        raise PayloadTooLarge(f"batch has more than {limits.max_batch_records} records")
    if not all(isinstance(r, dict) for r in records):
        raise ValidationError("every record must be an object", code="invalid_batch")
    repair = payload.get("repair", False)
    if not isinstance(repair, bool):
        raise ValidationError("repair must be a boolean", code="invalid_batch")
    return [Message.from_record(record) for record in records], repair


def encode_json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def encode_batch(origin: str, messages: Sequence[Message], *, repair: bool = False) -> bytes:
    payload: dict[str, Any] = {"origin": origin, "records": [m.to_record() for m in messages]}
    if repair:
        payload["repair"] = True
    return encode_json(payload)


#: Bytes of a batch body besides its records: ``{"origin":"<32 chars>","records":[]}`` and change.
_ENVELOPE_BYTES = 64


def record_bytes(message: Message) -> int:
    """The bytes ``message`` adds to a batch body (its record and a comma)."""
    return len(encode_json(message.to_record())) + 1


def batches(
    messages: Sequence[Message], limits: Limits, oversized: list[Message] | None = None
) -> Iterator[list[Message]]:
    """Split into batches within the record-count and byte limits the receiver enforces.

    A record too big to travel even alone would be refused (413) on every retry, forever: it is
    left out of every batch and appended to ``oversized`` (poison, for the caller to log)."""
    batch: list[Message] = []
    size = _ENVELOPE_BYTES
    for message in messages:
        record_size = record_bytes(message)
        if _ENVELOPE_BYTES + record_size > limits.max_batch_bytes:
            if oversized is not None:
                oversized.append(message)
            continue
        if batch and (len(batch) >= limits.max_batch_records or size + record_size > limits.max_batch_bytes):
            yield batch
            batch, size = [], _ENVELOPE_BYTES
        batch.append(message)
        size += record_size
    if batch:
        yield batch


def changes_page(store: MessageStore, since: str | None, limit: int) -> tuple[list[Message], str | None]:
    """One page of ``store.changes_since`` that is safe to resume from its last version.

    Two records can share a version string (two function instances of one cloud ticking the
    same millisecond), and ``changes_since`` is strictly-greater, so a page that ended inside
    such a tie would skip the rest of it. A full page therefore gives back its trailing tie and
    resumes before it. Returns the page and the ``since`` of the next one (None when done).
    """
    page = store.changes_since(since, limit)
    if len(page) < limit:
        return page, None
    last = str(page[-1].version)
    kept = page
    while kept and str(kept[-1].version) == last:
        kept = kept[:-1]
    if not kept:  # a whole page of one version: cannot split it, take it (limit >> any real tie)
        return page, last
    return kept, str(kept[-1].version)


def iter_changes(store: MessageStore, since: str | None, page_size: int = 500) -> Iterator[Message]:
    """Every record with version > ``since`` in ascending version order, a page at a time."""
    cursor: str | None = since
    while True:
        page, cursor = changes_page(store, cursor, page_size)
        yield from page
        if cursor is None:
            return


_APPLY_WORKERS = 8
_apply_pool: concurrent.futures.ThreadPoolExecutor | None = None
_apply_pool_lock = threading.Lock()


def apply_batch(service: MessageService, messages: Sequence[Message]) -> ApplyResult:
    """Apply a received batch with up to 8 store writes in flight.

    Sequential conditional writes cost one store round trip each, so a 100-record batch would
    take 100 round trips end to end (seconds on a slow store, past the sender's timeout, which
    then retries the whole batch). Records are split by key, so two versions of one record stay
    in one worker, in order; across keys order never mattered (last-writer-wins). The first
    failure is raised after every worker finished, and the sender retries the batch — already
    applied records are then no-ops.
    """
    global _apply_pool
    if len(messages) <= 2:
        return service.apply_replicated(messages)
    chunks: list[list[Message]] = [[] for _ in range(min(_APPLY_WORKERS, len(messages)))]
    for message in messages:
        chunks[hash((message.channel, message.id)) % len(chunks)].append(message)
    with _apply_pool_lock:
        if _apply_pool is None:
            _apply_pool = concurrent.futures.ThreadPoolExecutor(_APPLY_WORKERS, thread_name_prefix="apply")
    # Each worker runs in a copy of this context, so its log lines keep the request id.
    futures = [
        _apply_pool.submit(contextvars.copy_context().run, service.apply_replicated, chunk) for chunk in chunks if chunk
    ]
    concurrent.futures.wait(futures)
    results = [f.result() for f in futures]  # raises the first failure
    return ApplyResult(
        sum(r.applied for r in results),
        sum(r.ignored for r in results),
        tuple(ms for r in results for ms in r.applied_versions_ms),
    )


#: Statuses by which a peer refuses what it was sent, for good: the same bytes would be refused
#: on every retry (a record it finds invalid, a body too large). 401 (a secret being rotated),
#: 404 (a peer being deployed), 429 and 5xx pass with time, so they are retried.
PERMANENT_REFUSALS = frozenset({400, 413, 422})


@dataclass
class ForwardResult:
    sent: int = 0
    #: Records a peer did not take for a reason that passes (unreachable, 5xx): retry them.
    failed: list[Message] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    #: Records no retry can deliver (too big for any batch, or refused by a peer with a permanent
    #: 4xx): logged with their identity and acknowledged, so they never block the stream.
    poison: list[Message] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class _Delivery:
    """What one push of a batch to one peer came to."""

    poison: list[Message] = field(default_factory=list)
    error: str | None = None  # a transient failure: the batch must be retried


class Replicator:
    """Pushes locally-originated changes to every peer.

    Only records whose version originated here are forwarded — a record that arrived from a
    peer is that peer's to spread — which is what stops replication loops. A batch that any peer
    did not accept is reported failed, so the platform retries it (and anti-entropy backs that up);
    it is never reported done — except a record no retry can deliver (``ForwardResult.poison``:
    too big for any batch, or refused by a peer with a permanent 4xx), which is logged with its
    identity and acknowledged so it cannot block the records behind it. Peers are pushed to in parallel, each push bounded by
    ``timeout_s``, and a peer that failed once in a call is not tried again in that call, so one
    dead peer costs one timeout per delivery, not one per batch.
    """

    def __init__(
        self,
        origin: str,
        peers: Sequence[Peer],
        transport: PeerTransport,
        now_s: Callable[[], int],
        limits: Limits | None = None,
        timeout_s: float = 5.0,
        status: ReplicationStatus | None = None,
    ) -> None:
        self.origin = origin
        self.status = status
        self.peers = tuple(peers)
        self.transport = transport
        self.now_s = now_s
        self.limits = limits or Limits()
        self.timeout_s = timeout_s
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def forward(self, changes: Sequence[Message], *, only_local: bool = True) -> ForwardResult:
        outgoing = [m for m in changes if m.origin == self.origin] if only_local else list(changes)
        result = ForwardResult()
        if not outgoing or not self.peers:
            return result
        failed_peers: dict[str, str] = {}
        oversized: list[Message] = []
        for batch in batches(outgoing, self.limits, oversized):
            live = [p for p in self.peers if p.name not in failed_peers]
            errors = [
                f"{p.name}: skipped after an earlier failure in this delivery"
                for p in self.peers
                if p.name in failed_peers
            ]
            if self.status is not None:
                for name in failed_peers:
                    self.status.push_skipped(name, batch)
            refused: dict[tuple[str, str, str], Message] = {}
            for peer, delivery in zip(
                live, self._map(functools.partial(self._deliver, batch=batch), live), strict=True
            ):
                refused.update((_identity(m), m) for m in delivery.poison)
                if delivery.error:
                    failed_peers[peer.name] = delivery.error
                    errors.append(delivery.error)
            if errors:  # some peer still needs all of it (re-delivery to the others is harmless)
                result.failed.extend(batch)
                result.errors.extend(errors)
            else:
                result.poison.extend(refused.values())
                result.sent += len(batch) - len(refused)
        self._log_oversized(oversized)
        result.poison.extend(oversized)
        return result

    def push_to(self, peer: Peer, messages: Sequence[Message]) -> list[str]:
        """Push records (of any origin) to one peer; returns error strings. Used by anti-entropy,
        which would otherwise fail on a poison record at every pass: those are logged, not errors."""
        errors: list[str] = []
        oversized: list[Message] = []
        for batch in batches(messages, self.limits, oversized):
            delivery = self._deliver(peer, batch, repair=True)
            if delivery.error:  # the peer is failing: don't spend a timeout on every remaining batch
                errors.append(delivery.error)
                break
        self._log_oversized(oversized)
        return errors

    def _log_oversized(self, oversized: Sequence[Message]) -> None:
        for message in oversized:
            log(
                logger,
                logging.ERROR,
                "record too big for any replication batch; not replicated",
                channel=message.channel,
                id=message.id,
                version=str(message.version),
                bytes=record_bytes(message),
                max_batch_bytes=self.limits.max_batch_bytes,
            )

    def _deliver(self, peer: Peer, batch: list[Message], repair: bool = False) -> _Delivery:
        """Push a batch to one peer. A permanent refusal (``PERMANENT_REFUSALS``) of a batch is
        split in halves and retried, down to the single records the peer refuses: those are
        poison, logged with their identity; the rest of the batch still gets through."""
        status, error = self._push(peer, batch, repair)
        if error is None:
            return _Delivery()
        if status not in PERMANENT_REFUSALS:
            return _Delivery(error=error)
        if len(batch) == 1:
            message = batch[0]
            log(
                logger,
                logging.ERROR,
                "peer refused a record for good; not replicated to it",
                peer=peer.name,
                channel=message.channel,
                id=message.id,
                version=str(message.version),
                status=status,
                error=error,
            )
            return _Delivery(poison=[message])
        half = len(batch) // 2
        first = self._deliver(peer, batch[:half], repair)
        if first.error:
            return first
        second = self._deliver(peer, batch[half:], repair)
        return _Delivery(poison=first.poison + second.poison, error=second.error)

    def call(self, peer: Peer, path: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """A signed JSON request to a peer (anti-entropy reads); raises Unavailable on any failure."""
        body = encode_json({**payload, "origin": self.origin})
        headers = signed_headers(self.origin, peer.secret, self.now_s(), body)
        try:
            response = self.transport.post(peer.url + path, body, headers, self.timeout_s)
        except OvercastError as exc:
            if self.status is not None:
                self.status.pull(peer.name, f"{path}: {exc.message}")
            raise
        if self.status is not None:
            ok = 200 <= response.status < 300
            error = None if ok else f"{path}: HTTP {response.status} {_error_code(response.body)}"
            ours = _skew_offset(response.status, response.body)
            self.status.pull(peer.name, error, None if ours is None else -ours)
        if not 200 <= response.status < 300:
            raise Unavailable(
                f"{peer.name}{path}: HTTP {response.status} {response.body[:200]!r}",
                retry_after=5,
                # 404: a peer running a release without this route (anti-entropy falls back)
                code="peer_route_missing" if response.status == 404 else "peer_unavailable",
            )
        try:
            answer = parse_json(response.body)
        except ValidationError as exc:
            raise Unavailable(f"{peer.name}{path}: answer is not JSON", retry_after=5, code="peer_unavailable") from exc
        if not isinstance(answer, dict):
            raise Unavailable(f"{peer.name}{path}: answer is not an object", retry_after=5, code="peer_unavailable")
        return answer

    def _push(self, peer: Peer, batch: list[Message], repair: bool = False) -> tuple[int | None, str | None]:
        """One signed POST of a batch: (the peer's status or None if it did not answer, the
        error or None when the peer took it). ``repair``: sent by anti-entropy, not the stream."""
        body = encode_batch(self.origin, batch, repair=repair)
        headers = signed_headers(self.origin, peer.secret, self.now_s(), body)
        status: int | None = None
        try:
            response = self.transport.post(peer.url + BATCH_PATH, body, headers, self.timeout_s)
        except OvercastError as exc:
            error = f"{peer.name}: {exc.message}"
        except Exception as exc:  # a transport that failed to translate: still a failed push, not a crash
            error = f"{peer.name}: {type(exc).__name__}: {exc}"
        else:
            status = response.status
            if 200 <= status < 300:
                if self.status is not None:
                    self.status.push_ok(peer.name, batch)
                return status, None
            error = f"{peer.name}: HTTP {status} {response.body[:200]!r}"
        offset_s = _skew_offset(status, response.body) if status is not None else None
        if offset_s is not None:
            error = f"{peer.name}: clock_skew: our clock is {offset_s:+d} s from the peer's"
        log(
            logger,
            logging.WARNING,
            "replication push failed",
            peer=peer.name,
            records=len(batch),
            error=error,
            **({"code": "clock_skew", "peer_clock_offset_s": -offset_s} if offset_s is not None else {}),
        )
        if self.status is not None:
            # The peer reports our offset from its clock; ours from it is the opposite.
            self.status.push_failed(peer.name, batch, error, None if offset_s is None else -offset_s)
        return status, error

    def _map(self, fn: Callable[[Peer], _Delivery], peers: Sequence[Peer]) -> list[_Delivery]:
        if len(peers) <= 1:
            return [fn(p) for p in peers]
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="replicate")
        return list(self._pool.map(fn, peers))


def _identity(message: Message) -> tuple[str, str, str]:
    return (message.channel, message.id, str(message.version))


def _error_code(body: bytes) -> str:
    try:
        answer = json.loads(body)
        return str(answer["error"]["code"])[:40]
    except (ValueError, KeyError, TypeError):
        return "(no error code)"


def _skew_offset(status: int, body: bytes) -> int | None:
    """From a peer's 401 ``clock_skew`` answer: OUR offset as the peer saw it (our clock minus its)."""
    if status != 401:
        return None
    try:
        error = json.loads(body)["error"]
        offset = error["offset_s"] if error.get("code") == "clock_skew" else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return offset if isinstance(offset, int) and not isinstance(offset, bool) else None


def unavailable_peer(name: str, reason: str) -> Unavailable:
    return Unavailable(f"peer {name} unreachable: {reason}", retry_after=5, code="peer_unavailable")

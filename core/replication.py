"""Replication between clouds: signed batches, inbound verification, outbound forwarding.

Wire format of a batch (``POST /replication/batch``)::

    headers: X-Overcast-Origin: <sender origin>
             X-Overcast-Timestamp: <unix seconds>
             X-Overcast-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
    body:    {"origin": "<sender origin>", "records": [<Message.to_record()>, ...]}

Each pair of peers shares a secret. A batch is rejected (401, nothing applied) when the
signature is missing or wrong or the timestamp is further than the allowed skew from now;
replaying a valid batch is harmless because applying is last-writer-wins on versions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from core.errors import OvercastError, PayloadTooLarge, Unauthorized, Unavailable, ValidationError
from core.logs import get_logger, log
from core.model import Limits, Message
from core.ports import PeerTransport
from core.settings import Peer

logger = get_logger("replication")

ORIGIN_HEADER = "x-overcast-origin"
TIMESTAMP_HEADER = "x-overcast-timestamp"
SIGNATURE_HEADER = "x-overcast-signature"
BATCH_PATH = "/replication/batch"


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
    """Check a signed request; returns the sender's origin or raises Unauthorized."""
    origin = headers.get(ORIGIN_HEADER, "")
    timestamp_text = headers.get(TIMESTAMP_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not (origin and timestamp_text and signature):
        raise Unauthorized("missing replication signature headers", code="signature_missing")
    secret = secret_for(origin)
    if not secret:
        raise Unauthorized(f"unknown peer {origin!r}", code="unknown_peer")
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        raise Unauthorized("malformed timestamp", code="signature_invalid") from None
    if abs(now_s - timestamp) > max_skew_s:
        raise Unauthorized("stale or future-dated batch", code="signature_stale")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise Unauthorized("signature does not match", code="signature_invalid")
    return origin


def decode_batch(body: bytes, sender: str, limits: Limits) -> list[Message]:
    """Parse and validate a whole batch before anything is applied: one bad record rejects all."""
    if len(body) > limits.max_batch_bytes:
        raise PayloadTooLarge(f"batch larger than {limits.max_batch_bytes} bytes")
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"batch is not valid JSON: {exc}", code="invalid_json") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
        raise ValidationError("batch must be an object with a records list", code="invalid_batch")
    if payload.get("origin") != sender:
        raise ValidationError("batch origin does not match the signed origin", code="invalid_batch")
    records = payload["records"]
    if len(records) > limits.max_batch_records:
        raise PayloadTooLarge(f"batch has more than {limits.max_batch_records} records")
    if not all(isinstance(r, dict) for r in records):
        raise ValidationError("every record must be an object", code="invalid_batch")
    return [Message.from_record(record) for record in records]


def encode_batch(origin: str, messages: Sequence[Message]) -> bytes:
    body = {"origin": origin, "records": [m.to_record() for m in messages]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def batches(messages: Sequence[Message], limits: Limits) -> Iterator[list[Message]]:
    """Split into batches within the record-count and byte limits the receiver enforces."""
    batch: list[Message] = []
    size = 64
    for message in messages:
        record_size = len(json.dumps(message.to_record(), ensure_ascii=False).encode()) + 1
        if batch and (len(batch) >= limits.max_batch_records or size + record_size > limits.max_batch_bytes):
            yield batch
            batch, size = [], 64
        batch.append(message)
        size += record_size
    if batch:
        yield batch


@dataclass
class ForwardResult:
    sent: int = 0
    failed: list[Message] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class Replicator:
    """Pushes locally-originated changes to every peer.

    Only records whose version originated here are forwarded — a record that arrived from a
    peer is that peer's to spread — which is what stops replication loops. A batch that any peer
    did not accept is reported failed, so the platform retries it (and anti-entropy backs that up);
    it is never reported done.
    """

    def __init__(
        self,
        origin: str,
        peers: Sequence[Peer],
        transport: PeerTransport,
        now_s: Callable[[], int],
        limits: Limits | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.origin = origin
        self.peers = tuple(peers)
        self.transport = transport
        self.now_s = now_s
        self.limits = limits or Limits()
        self.timeout_s = timeout_s

    def forward(self, changes: Sequence[Message], *, only_local: bool = True) -> ForwardResult:
        outgoing = [m for m in changes if m.origin == self.origin] if only_local else list(changes)
        result = ForwardResult()
        if not outgoing or not self.peers:
            return result
        for batch in batches(outgoing, self.limits):
            errors = [e for e in (self._push(peer, batch) for peer in self.peers) if e]
            if errors:
                result.failed.extend(batch)
                result.errors.extend(errors)
            else:
                result.sent += len(batch)
        return result

    def push_to(self, peer: Peer, messages: Sequence[Message]) -> list[str]:
        """Push records (of any origin) to one peer; returns error strings. Used by anti-entropy."""
        return [e for e in (self._push(peer, batch) for batch in batches(messages, self.limits)) if e]

    def _push(self, peer: Peer, batch: list[Message]) -> str | None:
        body = encode_batch(self.origin, batch)
        headers = signed_headers(self.origin, peer.secret, self.now_s(), body)
        try:
            response = self.transport.post(peer.url + BATCH_PATH, body, headers, self.timeout_s)
        except OvercastError as exc:
            error = f"{peer.name}: {exc.message}"
        else:
            if 200 <= response.status < 300:
                return None
            error = f"{peer.name}: HTTP {response.status} {response.body[:200]!r}"
        log(logger, logging.WARNING, "replication push failed", peer=peer.name, records=len(batch), error=error)
        return error


def unavailable_peer(name: str, reason: str) -> Unavailable:
    return Unavailable(f"peer {name} unreachable: {reason}", retry_after=5, code="peer_unavailable")

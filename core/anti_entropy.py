"""Anti-entropy: compare this cloud's recent changes with each peer's and repair the differences.

Change streams deliver almost everything; this pass repairs the rest (a push that exhausted its
retries, a stream that dropped records, a peer that was down longer than the stream's retention).
Each cloud runs it on a schedule (a scheduled function in its serverless.<provider>.yml), and an
operator can run it by hand (``python -m tools.replication repair``).

One pass, over a window of recent versions (``window_s``; 0 means everything), in three phases:

1. Digests: ``POST /replication/digest`` returns pages of (channel, id, version) for each peer's
   records with a version at or after the floor. Keys and versions only.
2. Pulls: walking this store's changes since the same floor, keys where a peer holds the newer
   version, or that only the peer changed in the window, are fetched (``POST /replication/fetch``)
   and applied here, last-writer-wins.
3. Pushes: walking this store's changes again (now holding the union), every record a peer's
   digest lacks or holds older is pushed (``POST /replication/batch``, last-writer-wins there).
   A key missing from a digest means the peer lacks it or holds a version older than the floor —
   older than ours either way — so windows never need point lookups.

Pulling as well as pushing makes one pass repair both sides: a cloud whose own scheduler or
outbound network is broken is still repaired by its peers' passes, and one pass from any cloud
converges every peer it reaches. Every cloud running it is harmless — every write is
``put_if_newer``.

The peer's digest is held in memory as keys and versions only, capped at ``max_entries``; the
local side streams page by page; the whole pass stops at ``budget_s``. A pass cut short by
either says ``truncated`` and the next pass (or a wider manual run) finishes the job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from core.errors import OvercastError, ValidationError
from core.logs import get_logger, log
from core.model import Message, Version, validate_channel, validate_message_id
from core.ports import MessageStore
from core.replication import DIGEST_PATH, FETCH_PATH, Replicator, apply_batch, changes_page, iter_changes
from core.service import MessageService
from core.settings import Peer

if TYPE_CHECKING:
    from core.bootstrap import Overcast

logger = get_logger("anti_entropy")
Key = tuple[str, str]

DIGEST_PAGE_MAX = 5000  # entries per digest answer (~80 bytes each)
FETCH_KEYS_MAX = 100  # keys per fetch request; answers stay under the batch byte limit


@dataclass
class PeerRepair:
    """What one pass did against one peer."""

    peer: str
    local_records: int = 0  # this store's records in the window
    peer_records: int = 0  # the peer's records in the window
    pushed: int = 0  # records the peer lacked or held older
    pulled: int = 0  # records pulled from the peer and newer here after applying
    pull_ignored: int = 0  # pulled records that turned out not newer (a write raced the pass)
    truncated: bool = False
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.truncated


@dataclass
class AntiEntropyReport:
    origin: str
    since: str | None
    window_s: int
    peers: list[PeerRepair] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.peers)

    @property
    def pushed(self) -> int:
        return sum(p.pushed for p in self.peers)

    @property
    def pulled(self) -> int:
        return sum(p.pulled for p in self.peers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "since": self.since,
            "window_s": self.window_s,
            "ok": self.ok,
            "pushed": self.pushed,
            "pulled": self.pulled,
            "peers": [{**asdict(p), "ok": p.ok} for p in self.peers],
        }

    def raise_for_errors(self) -> None:
        """For scheduled functions: fail the invocation (so the platform shows and alarms on it)."""
        if not self.ok:
            problems = [f"{p.peer}: {'; '.join(p.errors) or 'truncated'}" for p in self.peers if not p.ok]
            raise AntiEntropyError("anti-entropy incomplete: " + " | ".join(problems))


class AntiEntropyError(OvercastError):
    code = "anti_entropy_incomplete"
    status = 503


def run(
    overcast: Overcast,
    *,
    window_s: int = 900,
    peers: list[str] | None = None,
    pull: bool = True,
    budget_s: float = 240.0,
    max_entries: int = 500_000,
    now_ms: Callable[[], int] | None = None,
) -> AntiEntropyReport:
    """One anti-entropy pass of this cloud against each configured peer (or the named ones).

    Never raises for a peer failure: each peer's errors are in the report (``report.ok``,
    ``report.raise_for_errors()``), so one unreachable peer does not stop the others' repair.
    """
    return repair(
        overcast.store,
        overcast.service,
        overcast.replicator,
        window_s=window_s,
        peers=peers,
        pull=pull,
        budget_s=budget_s,
        max_entries=max_entries,
        now_ms=now_ms,
    )


def repair(
    store: MessageStore,
    service: MessageService,
    replicator: Replicator,
    *,
    window_s: int = 900,
    peers: list[str] | None = None,
    pull: bool = True,
    budget_s: float = 240.0,
    max_entries: int = 500_000,
    now_ms: Callable[[], int] | None = None,
) -> AntiEntropyReport:
    now = (now_ms or (lambda: time.time_ns() // 1_000_000))()
    since = Version.floor(now - window_s * 1000) if window_s > 0 else None
    report = AntiEntropyReport(replicator.origin, since, window_s)
    deadline = time.monotonic() + budget_s
    targets = [p for p in replicator.peers if peers is None or p.name in peers]
    unknown = set(peers or ()) - {p.name for p in replicator.peers}
    for name in sorted(unknown):
        report.peers.append(PeerRepair(name, errors=[f"{name} is not a configured peer"]))
    results = {peer.name: PeerRepair(peer.name) for peer in targets}
    digests: dict[str, dict[Key, str]] = {}

    def read(peer: Peer, result: PeerRepair) -> None:
        digests[peer.name] = _read_digest(replicator, peer, since, result, deadline, max_entries)

    def pull_from(peer: Peer, result: PeerRepair) -> None:
        _pull(store, service, replicator, peer, since, digests[peer.name], result, deadline)

    def push_to(peer: Peer, result: PeerRepair) -> None:
        _push_missing(store, replicator, peer, since, digests[peer.name], result, deadline)

    # Every digest first, then every pull, then every push: this store holds the union before it
    # pushes, so one pass from any cloud converges every peer it reaches (within the window).
    phases: list[Callable[[Peer, PeerRepair], None]] = [read, *([pull_from] if pull else []), push_to]
    for step in phases:
        for peer in targets:
            result = results[peer.name]
            if result.errors or result.truncated:
                continue  # this peer already failed: the others still get repaired
            started = time.monotonic()
            try:
                step(peer, result)
            except OvercastError as exc:
                result.errors.append(exc.message)
            result.seconds = round(result.seconds + time.monotonic() - started, 3)
    for peer in targets:
        result = results[peer.name]
        report.peers.append(result)
        level = logging.INFO if result.ok else logging.WARNING
        log(logger, level, "anti-entropy pass", **{**asdict(result), "since": since})
    return report


def _read_digest(
    replicator: Replicator, peer: Peer, since: str | None, result: PeerRepair, deadline: float, max_entries: int
) -> dict[Key, str]:
    """The peer's (channel, id) → version for every record it changed since the floor."""
    remote: dict[Key, str] = {}
    cursor: str | None = since
    first = True
    while first or cursor is not None:
        first = False
        if time.monotonic() > deadline or len(remote) >= max_entries:
            # An incomplete digest would make us push records the peer already has: stop here.
            result.truncated = True
            result.errors.append(f"digest of {peer.name} cut short after {len(remote)} entries")
            break
        answer = replicator.call(peer, DIGEST_PATH, {"since": cursor, "limit": DIGEST_PAGE_MAX})
        entries, cursor = parse_digest_answer(answer)
        for channel, message_id, version in entries:
            remote[(channel, message_id)] = version
    result.peer_records = len(remote)
    return remote


def _pull(
    store: MessageStore,
    service: MessageService,
    replicator: Replicator,
    peer: Peer,
    since: str | None,
    remote: Mapping[Key, str],
    result: PeerRepair,
    deadline: float,
) -> None:
    """Fetch and apply what the peer holds newer, or changed in the window while we did not."""
    only_theirs = dict(remote)
    to_pull: list[Key] = []
    for message in iter_changes(store, since):
        if time.monotonic() > deadline:
            result.truncated = True
            return
        key = (message.channel, message.id)
        theirs = only_theirs.pop(key, None)
        if theirs is not None and theirs > str(message.version):
            to_pull.append(key)
    to_pull.extend(only_theirs)  # we lack it, or hold a version from before the floor
    for start in range(0, len(to_pull), FETCH_KEYS_MAX):
        if time.monotonic() > deadline:
            result.truncated = True
            return
        answer = replicator.call(peer, FETCH_PATH, {"keys": [list(k) for k in to_pull[start : start + FETCH_KEYS_MAX]]})
        applied = apply_batch(service, parse_fetch_answer(answer))
        result.pulled += applied.applied
        result.pull_ignored += applied.ignored


def _push_missing(
    store: MessageStore,
    replicator: Replicator,
    peer: Peer,
    since: str | None,
    remote: Mapping[Key, str],
    result: PeerRepair,
    deadline: float,
) -> None:
    """Push every record (what we pulled from other peers included) the peer lacks or holds older.
    A key missing from the peer's digest means it lacks the record or holds a version from before
    the floor — older than ours either way."""
    to_push: list[Message] = []
    result.local_records = 0
    for message in iter_changes(store, since):
        if time.monotonic() > deadline:
            result.truncated = True
            break
        result.local_records += 1
        theirs = remote.get((message.channel, message.id))
        if theirs is None or theirs < str(message.version):
            to_push.append(message)
            if len(to_push) >= replicator.limits.max_batch_records:
                _push(replicator, peer, to_push, result)
                to_push = []
    _push(replicator, peer, to_push, result)


def _push(replicator: Replicator, peer: Peer, messages: list[Message], result: PeerRepair) -> None:
    if not messages:
        return
    errors = replicator.push_to(peer, messages)
    if errors:
        raise AntiEntropyError("; ".join(errors))
    result.pushed += len(messages)


# -- the peer's side: answering digest and fetch requests -------------------------------------


def answer_digest(store: MessageStore, request: Mapping[str, Any]) -> dict[str, Any]:
    """``{"since": <version floor or null>, "limit": n}`` → a page of [channel, id, version]."""
    since = request.get("since")
    if since is not None and not isinstance(since, str):
        raise ValidationError("since must be a version string or null", code="invalid_request")
    if since is not None and len(since) > 64:
        raise ValidationError("since is too long", code="invalid_request")
    limit = request.get("limit", DIGEST_PAGE_MAX)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= DIGEST_PAGE_MAX:
        raise ValidationError(f"limit must be 1-{DIGEST_PAGE_MAX}", code="invalid_limit")
    page, next_since = changes_page(store, since, limit)
    return {"entries": [[m.channel, m.id, str(m.version)] for m in page], "next": next_since}


def answer_fetch(store: MessageStore, request: Mapping[str, Any]) -> dict[str, Any]:
    """``{"keys": [[channel, id], ...]}`` → the records held (tombstones included)."""
    keys = request.get("keys")
    if not isinstance(keys, list) or len(keys) > FETCH_KEYS_MAX:
        raise ValidationError(f"keys must be a list of at most {FETCH_KEYS_MAX} [channel, id]", code="invalid_request")
    records = []
    for key in keys:
        if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
            raise ValidationError("each key must be [channel, id]", code="invalid_request")
        message = store.get(key[0], key[1])
        if message is not None:
            records.append(message.to_record())
    return {"records": records}


def parse_digest_answer(answer: Mapping[str, Any]) -> tuple[list[tuple[str, str, str]], str | None]:
    entries = answer.get("entries")
    cursor = answer.get("next")
    if not isinstance(entries, list) or not (cursor is None or isinstance(cursor, str)):
        raise ValidationError("malformed digest answer", code="invalid_answer")
    parsed = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 3 and all(isinstance(x, str) for x in entry)):
            raise ValidationError("malformed digest entry", code="invalid_answer")
        channel, message_id, version = entry
        validate_channel(channel)
        validate_message_id(message_id)
        Version.parse(version)
        parsed.append((channel, message_id, version))
    return parsed, cursor


def parse_fetch_answer(answer: Mapping[str, Any]) -> list[Message]:
    records = answer.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValidationError("malformed fetch answer", code="invalid_answer")
    return [Message.from_record(r) for r in records]


def window_keys(store: MessageStore, since: str | None) -> Iterator[tuple[str, str, str]]:
    """(channel, id, version) of every record in the window; for tools and tests."""
    for message in iter_changes(store, since):
        yield message.channel, message.id, str(message.version)

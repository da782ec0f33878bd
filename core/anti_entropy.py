"""Anti-entropy: compare this cloud's records with each peer's and repair the differences.

Change streams deliver almost everything; this pass repairs the rest (a push that exhausted its
retries, a stream that dropped records, a peer that was down longer than the stream's retention).
Each cloud runs it on a schedule (a scheduled function in its serverless.<provider>.yml), and an
operator can run it by hand (``python -m tools.replication repair``).

A pass compares in one of two ways, per peer, and repairs both sides (pull, then push):

* **Window** (``window_s > 0``, the scheduled pass): the peer's digest of recent versions
  (``POST /replication/digest``: (channel, id, version) since the floor ``now - window_s``) is
  held in memory and set against this store's changes since the same floor. Keys where a peer
  holds the newer version, or that only the peer changed in the window, are fetched
  (``POST /replication/fetch``) and applied here; then every record the peer's digest lacks or
  holds older is pushed (``POST /replication/batch``). A key missing from a digest means the peer
  lacks it or holds a version older than the floor — older than ours either way. Its cost is the
  window's size, so a window holding more than ``max_entries`` records, or whose digest would
  take more than half the budget, is compared the second way instead (over the same window).
* **Tree** (``window_s = 0``, a full pass; or a window too big to hold): the digest tree of
  core/digest.py, compared top-down (``POST /replication/tree``). Nodes whose digests agree are
  skipped whole; only differing nodes are opened, and a differing node small enough (or empty on
  one side) has its records listed from both sides and merged in key order. So an identical
  pair costs one request and one differing record about one request per tree level, whatever the
  store's size, when the stores keep their digests up to date (a store that does not computes
  them by scanning: fewer requests, but reads linear in its size; docs/replication.md).

Pulling before pushing makes one pass repair both sides: a cloud whose own scheduler or
outbound network is broken is still repaired by its peers' passes, and one pass from any cloud
converges every peer it reaches. Every cloud running it is harmless — every write is
``put_if_newer``.

A tree pass walks the leaves in order and repairs as it goes, so a pass cut short by its budget
(``budget_s``) has repaired everything before the leaf it stopped at: it says ``truncated`` and
``resume_leaf``. The checkpoint is that report field (``tools.replication repair`` passes it to
the next pass as ``start_leaf``) — and, more importantly, the data itself: repaired leaves now
compare equal, so a scheduled pass that starts over from leaf 0 skips them for the price of a
few digest reads. No state record is written: nothing can go stale or need cleaning, and
correctness never depends on a checkpoint. Memory stays bounded by a page of entries and one
batch, whatever the number of differences.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from core import digest
from core.digest import Digest, Entry, Position
from core.errors import OvercastError, ValidationError
from core.logs import get_logger, log
from core.model import Message, Version, validate_channel, validate_message_id
from core.ports import MessageStore
from core.replication import (
    DIGEST_PATH,
    FETCH_PATH,
    TREE_PATH,
    Replicator,
    apply_batch,
    changes_page,
    iter_changes,
)
from core.service import MessageService
from core.settings import Peer

if TYPE_CHECKING:
    from core.bootstrap import Overcast

logger = get_logger("anti_entropy")
Key = tuple[str, str]

DIGEST_PAGE_MAX = 5000  # entries per digest answer (~80 bytes each)
FETCH_KEYS_MAX = 100  # keys per fetch request; answers stay under the batch byte limit
TREE_NODES_MAX = 64  # parents per tree request: at most 1,024 child digests per answer
ENTRIES_PAGE_MAX = 5000  # entries per tree listing answer
#: A differing node whose larger side holds at most this many records is listed, not opened:
#: one listing request is cheaper than the levels below it.
LIST_BELOW = 256


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
    mode: str = "window"  # "window" (digest of recent versions) or "tree" (digest tree)
    requests: int = 0  # requests sent to the peer (digest, tree, fetch, batch)
    listed_leaves: int = 0  # tree leaves whose records both sides listed and merged
    #: With ``truncated``: every leaf before this one is repaired; pass it as ``start_leaf``.
    resume_leaf: int | None = None
    note: str = ""  # why the mode changed, when it did

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
    start_leaf: int = 0,
) -> AntiEntropyReport:
    """One anti-entropy pass of this cloud against each configured peer (or the named ones).

    Never raises for a peer failure: each peer's errors are in the report (``report.ok``,
    ``report.raise_for_errors()``), so one unreachable peer does not stop the others' repair.
    ``start_leaf`` resumes a tree pass where a previous one stopped (its ``resume_leaf``).
    """
    report = repair(
        overcast.store,
        overcast.service,
        overcast.replicator,
        window_s=window_s,
        peers=peers,
        pull=pull,
        budget_s=budget_s,
        max_entries=max_entries,
        now_ms=now_ms,
        start_leaf=start_leaf,
    )
    for peer in report.peers:  # the status route and the metrics: what this pass had to repair
        overcast.status.anti_entropy_result(peer.peer, peer.ok, peer.pushed, peer.pulled, peer.errors)
    return report


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
    start_leaf: int = 0,
) -> AntiEntropyReport:
    now = (now_ms or (lambda: time.time_ns() // 1_000_000))()
    since = Version.floor(now - window_s * 1000) if window_s > 0 else None
    report = AntiEntropyReport(replicator.origin, since, window_s)
    started_at = time.monotonic()
    deadline = started_at + budget_s
    digest_deadline = started_at + budget_s / 2  # a window digest slower than this: use the tree
    targets = [p for p in replicator.peers if peers is None or p.name in peers]
    unknown = set(peers or ()) - {p.name for p in replicator.peers}
    for name in sorted(unknown):
        report.peers.append(PeerRepair(name, errors=[f"{name} is not a configured peer"]))
    results = {peer.name: PeerRepair(peer.name, mode="window" if window_s > 0 else "tree") for peer in targets}
    digests: dict[str, dict[Key, str]] = {}
    roots: dict[str, dict[int, Digest]] = {}  # each tree peer's top level, read first
    settled: set[str] = set()  # tree peers found identical: nothing to pull or push

    def read(peer: Peer, result: PeerRepair) -> None:
        if result.mode == "tree":
            root = _peer_root(replicator, peer, since, result)
            if root is not None:
                roots[peer.name] = root
                if root == node_children(store, 0, [0], since):
                    settled.add(peer.name)
                    result.local_records = result.peer_records = sum(c for c, _ in root.values())
                return
            result.mode, result.note = "window", "peer has no tree route: full digest instead"
        remote = _read_digest(replicator, peer, since, result, deadline, digest_deadline, max_entries)
        if remote is None:
            result.mode = "tree"
        else:
            digests[peer.name] = remote

    def pull_from(peer: Peer, result: PeerRepair) -> None:
        if result.mode == "tree":
            if peer.name not in settled:
                root = roots.pop(peer.name, None)
                _tree_pass(store, service, replicator, peer, since, result, deadline, start_leaf, root, pulling=True)
        else:
            _pull(store, service, replicator, peer, since, digests[peer.name], result, deadline)

    def push_to(peer: Peer, result: PeerRepair) -> None:
        if result.mode == "tree":
            if peer.name not in settled:
                root = roots.pop(peer.name, None)  # still there when nothing was pulled first
                _tree_pass(store, service, replicator, peer, since, result, deadline, start_leaf, root, pulling=False)
        else:
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


def _call(replicator: Replicator, peer: Peer, path: str, payload: Mapping[str, Any], result: PeerRepair) -> Any:
    result.requests += 1
    return replicator.call(peer, path, payload)


def _read_digest(
    replicator: Replicator,
    peer: Peer,
    since: str | None,
    result: PeerRepair,
    deadline: float,
    digest_deadline: float,
    max_entries: int,
) -> dict[Key, str] | None:
    """The peer's (channel, id) → version for every record it changed since the floor; None when
    the window is too big to hold (``max_entries``) or to read in half the budget: the caller
    compares it as a tree instead. Past the whole budget (a full-store digest of a peer without
    the tree route) the pass is cut short: an incomplete digest would push what the peer has."""
    remote: dict[Key, str] = {}
    cursor: str | None = since
    while True:  # one page is always read: a pass never does nothing
        answer = _call(replicator, peer, DIGEST_PATH, {"since": cursor, "limit": DIGEST_PAGE_MAX}, result)
        entries, cursor = parse_digest_answer(answer)
        for channel, message_id, version in entries:
            remote[(channel, message_id)] = version
        now = time.monotonic()
        if since is not None and now <= deadline and (len(remote) > max_entries or now > digest_deadline):
            result.note = f"window holds more than {len(remote)} records: compared as a tree"
            return None
        if cursor is None:
            break
        if len(remote) > max_entries:
            result.truncated = True
            result.errors.append(f"{peer.name} has no tree route and more than {max_entries} records")
            break
        if time.monotonic() > deadline:
            result.truncated = True
            result.errors.append(f"digest of {peer.name} cut short after {len(remote)} entries")
            break
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
        keys = [list(k) for k in to_pull[start : start + FETCH_KEYS_MAX]]
        answer = _call(replicator, peer, FETCH_PATH, {"keys": keys}, result)
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
    result.requests += 1
    errors = replicator.push_to(peer, messages)
    if errors:
        raise AntiEntropyError("; ".join(errors))
    result.pushed += len(messages)


# -- tree passes ------------------------------------------------------------------------------


class _OutOfTime(Exception):
    """The budget ran out: every leaf before ``resume_leaf`` is repaired."""

    def __init__(self, resume_leaf: int) -> None:
        self.resume_leaf = resume_leaf


class _LocalTree:
    """This store's digest tree."""

    def __init__(self, store: MessageStore, since: str | None) -> None:
        self.store = store
        self.since = since
        self._leaves: dict[int, Digest] | None = None

    def children(self, depth: int, parents: Sequence[int]) -> dict[int, Digest]:
        if self.store.maintains_digests and self.since is None:
            return node_children(self.store, depth, parents, self.since)
        # A store that scans to answer: one scan for the whole phase, every level derived from it.
        if self._leaves is None:
            self._leaves = self.store.tree_digests(digest.LEAF_DEPTH, 0, digest.LEAVES, self.since)
        wanted, out = set(parents), dict[int, Digest]()
        for leaf, value in self._leaves.items():
            node = digest.node_of(leaf, depth + 1)
            if node // digest.FANOUT in wanted:
                out[node] = digest.combine(out.get(node, (0, 0)), value)
        return out

    def entries(self, start: int, stop: int, after: Position | None, limit: int) -> list[Entry]:
        return self.store.tree_entries(start, stop, after, limit, self.since)


class _PeerTree:
    """A peer's digest tree, over ``POST /replication/tree``."""

    def __init__(
        self, replicator: Replicator, peer: Peer, since: str | None, result: PeerRepair, root: dict[int, Digest] | None
    ) -> None:
        self.replicator, self.peer, self.since, self.result = replicator, peer, since, result
        self.root = root  # the top level, when already read

    def children(self, depth: int, parents: Sequence[int]) -> dict[int, Digest]:
        if depth == 0 and self.root is not None:
            root, self.root = self.root, None
            return root
        out: dict[int, Digest] = {}
        for start in range(0, len(parents), TREE_NODES_MAX):
            nodes = list(parents[start : start + TREE_NODES_MAX])
            payload = {"since": self.since, "depth": depth, "nodes": nodes}
            out.update(parse_tree_digests(_call(self.replicator, self.peer, TREE_PATH, payload, self.result), depth))
        return out

    def entries(self, start: int, stop: int, after: Position | None, limit: int) -> list[Entry]:
        payload = {"since": self.since, "leaves": [start, stop], "after": list(after) if after else None}
        answer = _call(self.replicator, self.peer, TREE_PATH, {**payload, "limit": limit}, self.result)
        return parse_tree_entries(answer, start, stop)


def _peer_root(replicator: Replicator, peer: Peer, since: str | None, result: PeerRepair) -> dict[int, Digest] | None:
    """The top level of the peer's tree; None when it has no tree route (an older release: 404)."""
    try:
        return _PeerTree(replicator, peer, since, result, None).children(0, [0])
    except OvercastError as exc:
        if exc.code == "peer_route_missing":
            return None
        raise


def _tree_pass(
    store: MessageStore,
    service: MessageService,
    replicator: Replicator,
    peer: Peer,
    since: str | None,
    result: PeerRepair,
    deadline: float,
    start_leaf: int,
    root: dict[int, Digest] | None,
    *,
    pulling: bool,
) -> None:
    """Compare the two trees top-down in leaf order; pull (``pulling``) what the peer holds newer,
    or push what it lacks or holds older. Repairs as it goes, so a pass cut short keeps what it did."""
    local, remote = _LocalTree(store, since), _PeerTree(replicator, peer, since, result, root)
    actions = _Repairs(store, service, replicator, peer, result, pulling)
    progressed = False

    def check_time(resume_leaf: int) -> None:
        if progressed and time.monotonic() > deadline:
            raise _OutOfTime(resume_leaf)

    def reconcile(start: int, stop: int) -> None:
        nonlocal progressed
        result.listed_leaves += stop - start
        for leaf, mine, theirs in _merge(local, remote, max(start, start_leaf), stop):
            ours_newer = mine is not None and (theirs is None or mine[3] > theirs[3])
            theirs_newer = theirs is not None and (mine is None or theirs[3] > mine[3])
            if ours_newer and not pulling and mine is not None:
                actions.add((mine[1], mine[2]))
            elif theirs_newer and pulling and theirs is not None:
                actions.add((theirs[1], theirs[2]))
            if actions.flushed:
                actions.flushed, progressed = False, True
                check_time(leaf)
        actions.flush()
        progressed = True

    def visit(depth: int, parents: list[int]) -> None:
        """``parents``: differing nodes at ``depth``, in order. Opens them, lists or descends."""
        for chunk_start in range(0, len(parents), TREE_NODES_MAX):
            chunk = parents[chunk_start : chunk_start + TREE_NODES_MAX]
            check_time(digest.leaf_range(depth, chunk[0])[0])
            mine, theirs = local.children(depth, chunk), remote.children(depth, chunk)
            if depth == 0:
                result.local_records = sum(c for c, _ in mine.values())
                result.peer_records = sum(c for c, _ in theirs.values())
            differing = [
                i
                for i in sorted(set(mine) | set(theirs))
                if mine.get(i) != theirs.get(i) and digest.leaf_range(depth + 1, i)[1] > start_leaf
            ]
            # Runs of nodes to list (small, or empty on one side, or leaves) and to open, in order.
            for listed, run in itertools.groupby(
                differing, key=lambda i: _listable(depth + 1, mine.get(i), theirs.get(i))
            ):
                nodes = list(run)
                if listed:
                    # nothing to pull from a node the peer holds nothing of, nor to push from ours
                    nodes = [i for i in nodes if (theirs if pulling else mine).get(i) is not None]
                    for first, last in _runs(nodes) if nodes else ():
                        reconcile(digest.leaf_range(depth + 1, first)[0], digest.leaf_range(depth + 1, last)[1])
                else:
                    visit(depth + 1, nodes)

    try:
        visit(0, [0])
    except _OutOfTime as stop:
        actions.flush()
        result.truncated = True
        result.resume_leaf = stop.resume_leaf


def _listable(depth: int, mine: Digest | None, theirs: Digest | None) -> bool:
    counts = (mine or (0, 0))[0], (theirs or (0, 0))[0]
    return depth == digest.LEAF_DEPTH or min(counts) == 0 or max(counts) <= LIST_BELOW


def _runs(nodes: list[int]) -> Iterator[tuple[int, int]]:
    """Consecutive node indexes as (first, last) runs, so adjacent nodes are listed together."""
    first = last = nodes[0]
    for node in nodes[1:]:
        if node != last + 1:
            yield first, last
            first = node
        last = node
    yield first, last


def _pages(tree: _LocalTree | _PeerTree, start: int, stop: int) -> Iterator[Entry]:
    after: Position | None = None
    while True:
        page = tree.entries(start, stop, after, ENTRIES_PAGE_MAX)
        yield from page
        if len(page) < ENTRIES_PAGE_MAX:
            return
        after = page[-1][:3]


def _merge(
    local: _LocalTree, remote: _PeerTree, start: int, stop: int
) -> Iterator[tuple[int, Entry | None, Entry | None]]:
    """Both sides' entries of leaves [start, stop) merged in (leaf, channel, id) order:
    (leaf, mine or None, theirs or None) per key."""
    if start >= stop:
        return
    mine_it, theirs_it = _pages(local, start, stop), _pages(remote, start, stop)
    mine, theirs = next(mine_it, None), next(theirs_it, None)
    while mine is not None or theirs is not None:
        if theirs is None or (mine is not None and mine[:3] < theirs[:3]):
            assert mine is not None
            yield mine[0], mine, None
            mine = next(mine_it, None)
        elif mine is None or theirs[:3] < mine[:3]:
            yield theirs[0], None, theirs
            theirs = next(theirs_it, None)
        else:
            yield mine[0], mine, theirs
            mine, theirs = next(mine_it, None), next(theirs_it, None)


class _Repairs:
    """Pending pulls (fetched and applied a fetch at a time) or pushes (a batch at a time)."""

    def __init__(
        self,
        store: MessageStore,
        service: MessageService,
        replicator: Replicator,
        peer: Peer,
        result: PeerRepair,
        pulling: bool,
    ) -> None:
        self.store, self.service, self.replicator, self.peer, self.result = store, service, replicator, peer, result
        self.pulling = pulling
        self.keys: list[Key] = []
        self.flushed = False  # set when a flush repaired something: a point to check the budget
        self.size = FETCH_KEYS_MAX if pulling else replicator.limits.max_batch_records

    def add(self, key: Key) -> None:
        self.keys.append(key)
        if len(self.keys) >= self.size:
            self.flush()

    def flush(self) -> None:
        keys, self.keys = self.keys, []
        if not keys:
            return
        self.flushed = True
        if self.pulling:
            answer = _call(self.replicator, self.peer, FETCH_PATH, {"keys": [list(k) for k in keys]}, self.result)
            applied = apply_batch(self.service, parse_fetch_answer(answer))
            self.result.pulled += applied.applied
            self.result.pull_ignored += applied.ignored
            if applied.ignored and self.store.maintains_digests:
                # The trees differed, yet the store already held what was pulled: the kept digests
                # may have missed a change (a feed record lost), so re-derive these keys'.
                self.store.reindex(keys)
        else:
            held = [m for m in (self.store.get(channel, message_id) for channel, message_id in keys) if m is not None]
            _push(self.replicator, self.peer, held, self.result)


def node_children(store: MessageStore, depth: int, parents: Sequence[int], since: str | None) -> dict[int, Digest]:
    """Digests at ``depth + 1`` of the children of ``parents`` (sorted node indexes at ``depth``).

    A store that keeps its digests is asked per run of adjacent parents (each answer a few
    hundred rows at most); one that computes them by scanning is asked once, for the span from
    the first to the last parent, so it scans once per request, not once per parent."""
    out: dict[int, Digest] = {}
    wanted = set(parents)
    if store.maintains_digests and since is None:
        spans = list(_runs(sorted(wanted)))
    else:
        spans = [(min(wanted), max(wanted))] if wanted else []
    for first, last in spans:
        found = store.tree_digests(depth + 1, first * digest.FANOUT, (last + 1) * digest.FANOUT, since)
        out.update((node, d) for node, d in found.items() if node // digest.FANOUT in wanted)
    return out


# -- the peer's side: answering digest, tree and fetch requests -------------------------------------


def answer_digest(store: MessageStore, request: Mapping[str, Any]) -> dict[str, Any]:
    """``{"since": <version floor or null>, "limit": n}`` → a page of [channel, id, version]."""
    since = request.get("since")
    if since is not None and not isinstance(since, str):
        raise ValidationError("since must be a version string or null", code="invalid_request")
    if since is not None and len(since) > 64:
        raise ValidationError("since is too long", code="invalid_request")
    limit = request.get("limit", DIGEST_PAGE_MAX)
    if isinstance(limit, float) and limit.is_integer():  # JSON has one number type: 3509.0 is 3509
        limit = int(limit)
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


def answer_tree(store: MessageStore, request: Mapping[str, Any]) -> dict[str, Any]:
    """Two questions about this store's digest tree (core/digest.py), over the records whose
    version is after ``since`` (null: every record):

    * ``{"depth": d, "nodes": [i, ...]}`` (at most 64 nodes at depth 0-3) → ``{"depth": d + 1,
      "digests": [[child, count, hash], ...]}``: the non-empty children of those nodes;
    * ``{"leaves": [start, stop], "after": [leaf, channel, id] or null, "limit": n}`` →
      ``{"entries": [[leaf, channel, id, version], ...]}`` in (leaf, channel, id) order.
    """
    since = request.get("since")
    if since is not None and not (isinstance(since, str) and len(since) <= 64):
        raise ValidationError("since must be a version string or null", code="invalid_request")
    if "leaves" in request:
        leaves, after, limit = request.get("leaves"), request.get("after"), request.get("limit", ENTRIES_PAGE_MAX)
        if not (isinstance(leaves, list) and len(leaves) == 2 and all(_is_int(x) for x in leaves)):
            raise ValidationError("leaves must be [start, stop]", code="invalid_request")
        if after is not None:
            if not (isinstance(after, list) and len(after) == 3 and _is_int(after[0])):
                raise ValidationError("after must be [leaf, channel, id] or null", code="invalid_request")
            if not all(isinstance(x, str) and len(x) <= 256 for x in after[1:]):
                raise ValidationError("after must be [leaf, channel, id] or null", code="invalid_request")
        if not _is_int(limit) or not 1 <= limit <= ENTRIES_PAGE_MAX:
            raise ValidationError(f"limit must be 1-{ENTRIES_PAGE_MAX}", code="invalid_limit")
        position = (after[0], after[1], after[2]) if after is not None else None
        entries = store.tree_entries(leaves[0], leaves[1], position, limit, since)
        return {"entries": [list(e) for e in entries]}
    depth, nodes = request.get("depth"), request.get("nodes")
    if not isinstance(depth, int) or isinstance(depth, bool) or not 0 <= depth < digest.LEAF_DEPTH:
        raise ValidationError(f"depth must be 0-{digest.LEAF_DEPTH - 1}", code="invalid_request")
    if not (isinstance(nodes, list) and 1 <= len(nodes) <= TREE_NODES_MAX and all(_is_int(n) for n in nodes)):
        raise ValidationError(f"nodes must be a list of 1-{TREE_NODES_MAX} node indexes", code="invalid_request")
    if not all(0 <= n < digest.nodes_at(depth) for n in nodes):
        raise ValidationError("node index out of range", code="invalid_request")
    found = node_children(store, depth, sorted(set(nodes)), since)
    return {"depth": depth + 1, "digests": [[node, count, total] for node, (count, total) in sorted(found.items())]}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_tree_digests(answer: Mapping[str, Any], depth: int) -> dict[int, Digest]:
    rows = answer.get("digests")
    if answer.get("depth") != depth + 1 or not isinstance(rows, list):
        raise ValidationError("malformed tree answer", code="invalid_answer")
    out: dict[int, Digest] = {}
    for row in rows:
        if not (isinstance(row, list) and len(row) == 3 and all(_is_int(x) for x in row)):
            raise ValidationError("malformed tree digest", code="invalid_answer")
        out[row[0]] = (row[1], row[2])
    return out


def parse_tree_entries(answer: Mapping[str, Any], start: int, stop: int) -> list[Entry]:
    rows = answer.get("entries")
    if not isinstance(rows, list):
        raise ValidationError("malformed tree answer", code="invalid_answer")
    parsed: list[Entry] = []
    for row in rows:
        if not (isinstance(row, list) and len(row) == 4 and _is_int(row[0]) and start <= row[0] < stop):
            raise ValidationError("malformed tree entry", code="invalid_answer")
        leaf, channel, message_id, version = row
        validate_channel(channel)
        validate_message_id(message_id)
        Version.parse(version)
        parsed.append((leaf, channel, message_id, version))
    return parsed


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

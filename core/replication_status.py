"""Replication status per peer: what ``GET /replication/status`` answers and the metrics say.

One ``ReplicationStatus`` per process (built by ``core.bootstrap``), fed by the replicator
(pushes to a peer, anti-entropy reads from it), by the app (batches a peer pushed here, the clock
offset every signed request carries) and by anti-entropy (each pass's result). It lives in
memory: a cold start begins empty (``since_ms`` says when), and on platforms that run each
function in its own process (AWS Lambda, Azure and GCP instances) the process answering the HTTP
route sees what reached it — batches received, their lag, peers' clock offsets — while pushes
and anti-entropy passes are counted by the processes that make them; the metrics
(core/metrics.py) carry every process's view to the platform, where the alarms watch them.

Vendor-free; every method is thread-safe and cheap (a lock, a few fields).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.metrics import MetricsEmitter
from core.model import Message

#: Lag samples kept per peer; the percentiles are over those of the last ``LAG_WINDOW_MS``, so a
#: backlog delivered after an outage stops counting once the window has passed.
LAG_SAMPLES = 1024
LAG_WINDOW_MS = 300_000
#: A metric of an unchanged clock offset at most this often (the offset jitters by a second).
OFFSET_METRIC_EVERY_MS = 60_000
#: Record identities remembered as pending per peer (beyond it the count is a floor).
MAX_PENDING = 10_000


@dataclass
class PeerState:
    name: str
    last_push_ok_ms: int | None = None
    last_push_error: str | None = None
    last_push_error_ms: int | None = None
    pushed_records: int = 0
    failed_pushes: int = 0
    consecutive_push_failures: int = 0
    pending: set[tuple[str, str, str]] = field(default_factory=set)
    last_pull_ok_ms: int | None = None
    last_pull_error: str | None = None
    last_received_ms: int | None = None
    received_records: int = 0
    applied_records: int = 0
    #: Of ``applied_records``: pushed by the peer's change stream, or by its anti-entropy.
    applied_by_stream: int = 0
    applied_by_repair: int = 0
    #: The oldest record anti-entropy pushes applied here (origin write → apply): a few hundred ms
    #: means the pass raced a stream delivery in flight; minutes, that the stream had missed it.
    repair_age_max_ms: int | None = None
    clock_offset_s: int | None = None
    clock_offset_at_ms: int | None = None
    clock_skew_rejections: int = 0
    lags_ms: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=LAG_SAMPLES))  # (at, lag)
    offset_metric: tuple[int, int] | None = None  # (at, offset) of the last ClockOffsetSeconds
    anti_entropy: dict[str, Any] | None = None
    anti_entropy_passes: int = 0
    #: Records this process's anti-entropy passes pushed to / pulled from the peer: what the
    #: streams had not delivered when the pass ran.
    repaired_pushed: int = 0
    repaired_pulled: int = 0


class ReplicationStatus:
    def __init__(
        self,
        origin: str,
        peers: Iterable[str],
        *,
        max_skew_s: int,
        lag_bound_s: float,
        metrics: MetricsEmitter | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.origin = origin
        self.max_skew_s = max_skew_s
        self.lag_bound_s = lag_bound_s
        self.metrics = metrics or MetricsEmitter("off", origin)
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self.since_ms = self._now_ms()
        self._peers = {name: PeerState(name) for name in peers}
        self._lock = threading.Lock()

    def _peer(self, name: str) -> PeerState:
        state = self._peers.get(name)
        if state is None:
            state = self._peers[name] = PeerState(name)
        return state

    # -- what happened ----------------------------------------------------------------------

    def push_ok(self, peer: str, messages: Sequence[Message]) -> None:
        with self._lock:
            state = self._peer(peer)
            state.last_push_ok_ms = self._now_ms()
            state.pushed_records += len(messages)
            state.consecutive_push_failures = 0
            state.pending.difference_update(_identity(m) for m in messages)
        self.metrics.emit("ReplicationPushOk", len(messages), peer)

    def push_failed(self, peer: str, messages: Sequence[Message], error: str, offset_s: int | None = None) -> None:
        with self._lock:
            state = self._peer(peer)
            state.last_push_error, state.last_push_error_ms = error, self._now_ms()
            state.failed_pushes += 1
            state.consecutive_push_failures += 1
            for message in messages:
                if len(state.pending) >= MAX_PENDING:
                    break
                state.pending.add(_identity(message))
        self.metrics.emit("ReplicationPushFailed", len(messages), peer)
        if offset_s is not None:
            self.clock_offset(peer, offset_s, rejected=True)

    def push_skipped(self, peer: str, messages: Sequence[Message]) -> None:
        """Records not sent to a peer that failed earlier in the same delivery (still pending)."""
        with self._lock:
            state = self._peer(peer)
            for message in messages:
                if len(state.pending) >= MAX_PENDING:
                    break
                state.pending.add(_identity(message))

    def pull(self, peer: str, error: str | None = None, offset_s: int | None = None) -> None:
        """An anti-entropy read from the peer answered (``error`` None) or failed."""
        with self._lock:
            state = self._peer(peer)
            if error is None:
                state.last_pull_ok_ms = self._now_ms()
                state.last_pull_error = None
            else:
                state.last_pull_error = error
        if offset_s is not None:
            self.clock_offset(peer, offset_s, rejected=True)

    def received(self, peer: str, records: int, applied_versions_ms: Sequence[int], *, repair: bool = False) -> None:
        """A batch the peer pushed was applied here; lag = now - each applied record's version time
        (the origin's clock: an offset between the clocks is in it, see ``clock_offset_s``)."""
        now = self._now_ms()
        lags = [max(0, now - ms) for ms in applied_versions_ms]
        with self._lock:
            state = self._peer(peer)
            state.last_received_ms = now
            state.received_records += records
            state.applied_records += len(applied_versions_ms)
            if repair:
                state.applied_by_repair += len(applied_versions_ms)
                if lags:
                    state.repair_age_max_ms = max(state.repair_age_max_ms or 0, max(lags))
            else:
                state.applied_by_stream += len(applied_versions_ms)
            state.lags_ms.extend((now, lag) for lag in lags)
        if lags:  # one sample per batch, its worst record: the alarm is on the maximum
            self.metrics.emit("ReplicationLagMs", max(lags), peer, records=len(lags))

    def clock_offset(self, peer: str, offset_s: int, *, rejected: bool = False) -> None:
        """The peer's clock minus ours, from a signed exchange (``rejected``: outside the window)."""
        with self._lock:
            state = self._peer(peer)
            now = self._now_ms()
            state.clock_offset_s, state.clock_offset_at_ms = offset_s, now
            if rejected:
                state.clock_skew_rejections += 1
            last = state.offset_metric
            due = last is None or abs(last[1] - offset_s) >= 2 or now - last[0] >= OFFSET_METRIC_EVERY_MS
            if due or rejected:
                state.offset_metric = (now, offset_s)
        if due or rejected:  # when it moves, and once a minute: not once per request
            self.metrics.emit("ClockOffsetSeconds", abs(offset_s), peer, offset_s=offset_s)

    def anti_entropy_result(self, peer: str, ok: bool, pushed: int, pulled: int, errors: Sequence[str]) -> None:
        with self._lock:
            state = self._peer(peer)
            state.anti_entropy_passes += 1
            state.repaired_pushed += pushed
            state.repaired_pulled += pulled
            state.anti_entropy = {
                "at_ms": self._now_ms(),
                "ok": ok,
                "pushed": pushed,
                "pulled": pulled,
                "errors": list(errors)[:3],
            }
        self.metrics.emit("AntiEntropyOk" if ok else "AntiEntropyFailed", 1, peer)
        self.metrics.emit("AntiEntropyRepaired", pushed + pulled, peer)

    # -- what it comes to -------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The status document: per peer, and ``degraded`` with every reason."""
        with self._lock:
            peers = [self._describe(state) for state in sorted(self._peers.values(), key=lambda s: s.name)]
        reasons = [f"{p['peer']}: {reason}" for p in peers for reason in p["reasons"]]
        return {
            "origin": self.origin,
            "since_ms": self.since_ms,
            "degraded": bool(reasons),
            "reasons": reasons,
            "max_skew_s": self.max_skew_s,
            "lag_bound_s": self.lag_bound_s,
            "peers": peers,
        }

    def _describe(self, state: PeerState) -> dict[str, Any]:
        recent = self._now_ms() - LAG_WINDOW_MS
        lags = sorted(lag for at, lag in state.lags_ms if at >= recent)
        p50, p99 = _percentile(lags, 0.50), _percentile(lags, 0.99)
        reasons = []
        if state.clock_offset_s is not None and abs(state.clock_offset_s) > self.max_skew_s / 2:
            beyond = "beyond" if abs(state.clock_offset_s) > self.max_skew_s else "over half of"
            reasons.append(
                f"clock_skew: peer clock {state.clock_offset_s:+d} s from ours, {beyond} the {self.max_skew_s} s window"
            )
        if state.consecutive_push_failures:
            reasons.append(f"pushes failing ({state.consecutive_push_failures} in a row): {state.last_push_error}")
        if p99 is not None and p99 > self.lag_bound_s * 1000:
            reasons.append(f"lag p99 {p99} ms above the {self.lag_bound_s:g} s bound")
        if state.anti_entropy is not None and not state.anti_entropy["ok"]:
            reasons.append(f"anti-entropy failing: {'; '.join(state.anti_entropy['errors']) or 'incomplete'}")
        return {
            "peer": state.name,
            "last_push_ok_ms": state.last_push_ok_ms,
            "last_push_error": state.last_push_error,
            "last_push_error_ms": state.last_push_error_ms,
            "pushed_records": state.pushed_records,
            "failed_pushes": state.failed_pushes,
            "pending": len(state.pending),
            "last_pull_ok_ms": state.last_pull_ok_ms,
            "last_pull_error": state.last_pull_error,
            "last_received_ms": state.last_received_ms,
            "received_records": state.received_records,
            "applied_records": state.applied_records,
            "applied_by_stream": state.applied_by_stream,
            "applied_by_repair": state.applied_by_repair,
            "repair_age_max_ms": state.repair_age_max_ms,
            "clock_offset_s": state.clock_offset_s,
            "clock_offset_at_ms": state.clock_offset_at_ms,
            "clock_skew_rejections": state.clock_skew_rejections,
            "lag_ms": {"p50": p50, "p99": p99, "samples": len(lags)},
            "anti_entropy": state.anti_entropy,
            "anti_entropy_passes": state.anti_entropy_passes,
            "repaired_pushed": state.repaired_pushed,
            "repaired_pulled": state.repaired_pulled,
            "reasons": reasons,
        }


def _percentile(ordered: Sequence[int], q: float) -> int | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _identity(message: Message) -> tuple[str, str, str]:
    return (message.channel, message.id, str(message.version))

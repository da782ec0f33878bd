"""The change-delivery pump every local stand-in shares: a poll loop and a retrying delivery.

Each platform re-delivers a failed change batch in its own way, and the stand-ins keep that as
parameters of one loop instead of a copy each:

* which records are still to deliver after an attempt (``invoke`` returns them): Lambda restarts
  from the first failed sequence number, the Functions host and OpenWhisk re-run the whole batch;
* how often and how long (``RetryPolicy``): retries before the batch is given up (``-1`` never
  gives up), exponential backoff between a first and a longest delay;
* what giving up means, which the caller logs (an on-failure destination, a moved checkpoint).

``PollLoop`` runs ``poll_once`` until stopped: again at once while there is work, after
``idle_s`` when there is none, after a backoff when the poll itself failed (the store is away).
The local provider's poller makes one attempt per scan and lets the loop's backoff retry it
from its held checkpoint, forever.

``RetryQueue`` is for deliveries that are retried each on its own, not as a batch in order
(Eventarc's CloudEvents for Cloud Functions): an item waits in the queue between attempts.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    #: Retries of a failed batch before it is given up; -1 retries until delivered.
    max_retries: int = 10
    backoff_s: tuple[float, float] = (0.2, 5.0)

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1, 2, ...): doubling from the first delay."""
        low, high = self.backoff_s
        return min(high, low * 2 ** min(max(retry - 1, 0), 30))

    def exhausted(self, retries: int) -> bool:
        return 0 <= self.max_retries < retries


@dataclass
class Delivery(Generic[T]):
    """What became of one batch: delivered records, the ones given up, and whether it stopped early."""

    delivered: int = 0
    given_up: Sequence[T] = ()
    stopped: bool = False
    retries: int = 0


def deliver(
    batch: Sequence[T],
    invoke: Callable[[Sequence[T], int], Sequence[T]],
    policy: RetryPolicy,
    stop: threading.Event,
    logger: logging.Logger,
    name: str = "batch",
) -> Delivery[T]:
    """Deliver ``batch`` with ``invoke(pending, retries_so_far) -> still pending`` (a suffix of
    ``pending``; empty when done), retrying with backoff until it is delivered, the policy gives
    up, or ``stop`` is set. An exception from ``invoke`` is a failed attempt of everything pending."""
    pending: Sequence[T] = list(batch)
    outcome: Delivery[T] = Delivery()
    while pending and not stop.is_set():
        try:
            remaining = list(invoke(pending, outcome.retries))
        except Exception:
            logger.exception("%s delivery raised; the whole batch is retried", name)
            remaining = list(pending)
        outcome.delivered += len(pending) - len(remaining)
        pending = remaining
        if not pending:
            return outcome
        outcome.retries += 1
        if policy.exhausted(outcome.retries):
            outcome.given_up = pending
            return outcome
        delay = policy.delay(outcome.retries)
        logger.warning(
            "%s failed (%d records); retrying batch: retry %d in %.1f s", name, len(pending), outcome.retries, delay
        )
        stop.wait(delay)
    outcome.stopped = bool(pending)
    return outcome


class Backoff(Exception):
    """Raised by a ``poll_once`` whose work failed and was logged: the loop backs off quietly."""


class PollLoop:
    """Runs ``poll_once() -> bool`` (True: there was work, poll again now) on a daemon thread."""

    def __init__(
        self,
        poll_once: Callable[[], bool],
        *,
        name: str,
        idle_s: float,
        error_backoff: RetryPolicy,
        logger: logging.Logger,
        stop: threading.Event | None = None,
    ) -> None:
        self.poll_once = poll_once
        self.name = name
        self.idle_s = idle_s
        self.error_backoff = error_backoff
        self.logger = logger
        self.stop_event = stop or threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> None:
        failures = 0
        while not self.stop_event.is_set():
            try:
                busy = self.poll_once()
                failures = 0
            except Exception as exc:  # the store or the stream is away: poll again later
                failures += 1
                if not isinstance(exc, Backoff):  # a Backoff has been logged by the poll itself
                    self.logger.warning("%s poll failed: %s: %s", self.name, type(exc).__name__, exc)
                self.stop_event.wait(self.error_backoff.delay(failures))
                continue
            if not busy:
                self.stop_event.wait(self.idle_s)

    def start(self) -> PollLoop:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)


@dataclass(order=True)
class _Scheduled(Generic[T]):
    due: float
    seq: int
    item: T = field(compare=False)
    attempts: int = field(default=0, compare=False)


class RetryQueue(Generic[T]):
    """Delivers items one at a time on ``workers`` threads, each retried on its own: between
    attempts an item waits in the queue, not in a worker, so one slow or failing item does not
    hold up the rest (Eventarc's delivery, unlike a stream's batches in order).

    ``attempt(item) -> None`` when delivered, else why it failed (for the log). After a failed
    attempt the item is due again after ``policy.delay``; once ``policy.exhausted`` it is dropped.
    ``label(item)`` names an item in the log. ``stop`` abandons what is still queued.
    """

    def __init__(
        self,
        attempt: Callable[[T], str | None],
        policy: RetryPolicy,
        *,
        name: str,
        logger: logging.Logger,
        label: Callable[[T], str] = str,
        workers: int = 4,
    ) -> None:
        self.attempt = attempt
        self.policy = policy
        self.logger = logger
        self.label = label
        self.delivered = 0
        self.dropped = 0
        self._heap: list[_Scheduled[T]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._in_flight = 0
        self._threads = [threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(workers)]

    def start(self) -> RetryQueue[T]:
        for thread in self._threads:
            thread.start()
        return self

    def submit(self, item: T) -> None:
        with self._cond:
            heapq.heappush(self._heap, _Scheduled(time.monotonic(), next(self._seq), item))
            self._cond.notify()

    def pending(self) -> int:
        """Items not delivered yet (queued, waiting for a retry, or in flight)."""
        with self._cond:
            return len(self._heap) + self._in_flight

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0].due > time.monotonic()):
                    self._cond.wait(timeout=(self._heap[0].due - time.monotonic()) if self._heap else None)
                if self._stopped:
                    return
                scheduled = heapq.heappop(self._heap)
                self._in_flight += 1
            try:
                failure = self.attempt(scheduled.item)
            except Exception as exc:
                failure = f"{self.label(scheduled.item)} raised {type(exc).__name__}: {exc}"
            scheduled.attempts += 1
            exhausted = failure is not None and self.policy.exhausted(scheduled.attempts)
            delay = self.policy.delay(scheduled.attempts)
            with self._cond:
                self._in_flight -= 1
                if failure is None:
                    self.delivered += 1
                elif exhausted:
                    self.dropped += 1
                else:
                    scheduled.due = time.monotonic() + delay
                    scheduled.seq = next(self._seq)
                    heapq.heappush(self._heap, scheduled)
                    self._cond.notify()  # a waiting worker may need to wake earlier than it planned
            if exhausted:
                self.logger.error("%s dropped after %d attempts", self.label(scheduled.item), scheduled.attempts)
            elif failure is not None:
                self.logger.warning("%s; retry %d in %.1f s", failure, scheduled.attempts, delay)

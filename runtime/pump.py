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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

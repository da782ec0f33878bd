"""The local provider as a replication peer: the HTTP API plus a change-delivery loop.

    python -m runtime.local --host 127.0.0.5 --port 8080 --db .run/local.sqlite \\
        [--poll-s 0.05] [--anti-entropy-every-s 60]

* HTTP: ``handlers.local``'s app (SQLite store) on a threaded loopback server.
* Change delivery: SQLite has no change feed, so a poller reads ``store.changes_since`` from a
  checkpoint and hands new records to the replicator — one poller per peer, each with its own
  checkpoint, so a peer that is down delays only its own deliveries. A failed push leaves the
  checkpoint where it was and is retried with exponential backoff (never reported done); the
  scan re-reads a short look-back window behind the checkpoint, because two writers can take
  versions in one order and commit in the other, and skips what it already delivered.
* Anti-entropy: with ``--anti-entropy-every-s N`` one pass (``core.anti_entropy.run``) every N s.
* Store outage drill: SIGUSR1 makes the store answer "unavailable" (deep health 503, writes
  503), SIGUSR2 brings it back — what ``runtime.mesh``'s ``stop_store``/``start_store`` use.

Reads the OVERCAST_* settings (peers, secrets, origin). Prints ``ready http://host:port`` once
serving; SIGTERM or SIGINT stops it cleanly.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from core.errors import OvercastError, Unavailable
from core.logs import get_logger, log
from core.model import Message, Version
from core.ports import MessageStore
from core.replication import ForwardResult, changes_page
from runtime.frontdoor import serve_until_stopped
from runtime.mesh import Cloud
from runtime.pump import Backoff, PollLoop, RetryPolicy, deliver

logger = get_logger("runtime.local")


class ChangePoller:
    """Delivers a store's changes to ``deliver`` in version order, at least once.

    ``deliver(records) -> ForwardResult``; records in ``result.failed`` are retried (from the
    first failed one) after a backoff, without moving the checkpoint past them. ``start`` is
    ``"now"`` (like a new stream consumer: only changes from now on) or ``"beginning"``.

    On ``runtime.pump``: each scan makes one delivery attempt per batch (``DELIVERY``); what
    retries is the next scan from the held checkpoint, after the ``PollLoop``'s backoff, and it
    never gives up (``RetryPolicy(-1, backoff_s)``).
    """

    def __init__(
        self,
        store: MessageStore,
        deliver: Callable[[Sequence[Message]], ForwardResult],
        *,
        name: str = "changes",
        poll_s: float = 0.05,
        lookback_ms: int = 2000,
        batch_size: int = 100,
        backoff_s: tuple[float, float] = (0.2, 5.0),
        start: str = "now",
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.store = store
        self.deliver = deliver
        self.name = name
        self.poll_s = poll_s
        self.lookback_ms = lookback_ms
        self.batch_size = batch_size
        self.backoff_s = backoff_s
        self.now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self.checkpoint: str | None = Version.floor(self.now_ms()) if start == "now" else None
        self._origin_floor = self.checkpoint  # the look-back never reaches behind the start
        self._delivered: dict[tuple[str, str, str], int] = {}
        self.delivered = 0
        self.stop_event = threading.Event()

    def poll_once(self) -> bool:
        """One scan and delivery. Returns False when a delivery failed (the caller backs off)."""
        now = self.now_ms()
        floor = Version.floor(now - self.lookback_ms)
        # From the checkpoint or the look-back floor, whichever is older (None: from the start).
        since: str | None = self.checkpoint if self.checkpoint is None or self.checkpoint < floor else floor
        if self._origin_floor is not None and since is not None and since < self._origin_floor:
            since = self._origin_floor
        while True:
            page, next_since = changes_page(self.store, since, 500)
            fresh = [m for m in page if _key(m) not in self._delivered]
            for start in range(0, len(fresh), self.batch_size):
                batch = fresh[start : start + self.batch_size]
                outcome = deliver(batch, self._invoke, DELIVERY, self.stop_event, logger, f"{self.name} push")
                for message in batch[: outcome.delivered]:
                    self._delivered[_key(message)] = message.version.physical_ms
                self.delivered += outcome.delivered
                if outcome.delivered < len(batch):
                    # Resume just before the first failure; everything before it is done.
                    self._advance(_before(batch[outcome.delivered], page))
                    return False
            if page:
                self._advance(str(page[-1].version))
            if next_since is None:
                break
            since = next_since
        self._forget(now)
        return True

    def _invoke(self, pending: Sequence[Message], _retries: int) -> Sequence[Message]:
        """One push; what is still to deliver: from the first failed record on."""
        failed = {_key(m) for m in self.deliver(pending).failed}
        first = next((i for i, m in enumerate(pending) if _key(m) in failed), None)
        return [] if first is None else pending[first:]

    def run(self) -> None:
        PollLoop(
            self._scan,
            name=self.name,
            idle_s=self.poll_s,
            error_backoff=RetryPolicy(-1, self.backoff_s),
            logger=logger,
            stop=self.stop_event,
        ).run()

    def _scan(self) -> bool:
        try:
            ok = self.poll_once()
        except OvercastError as exc:  # the store itself failed: retry like a failed delivery
            log(logger, logging.WARNING, "change scan failed", poller=self.name, error=exc.message)
            raise Backoff from exc
        except Exception as exc:
            logger.exception("change poller crashed; retrying")
            raise Backoff from exc
        if not ok:
            raise Backoff  # a push failed: the checkpoint holds, the next scan retries after a backoff
        return False  # rest poll_s after every scan

    def _advance(self, version: str | None) -> None:
        if version is not None and (self.checkpoint is None or version > self.checkpoint):
            self.checkpoint = version

    def _forget(self, now: int) -> None:
        """Drop delivered marks older than the look-back (and behind the checkpoint)."""
        horizon = now - self.lookback_ms - 60_000
        if len(self._delivered) > 1000:
            self._delivered = {k: ms for k, ms in self._delivered.items() if ms >= horizon}


#: One attempt per scan: a failed push is retried by the next scan, not in place.
DELIVERY = RetryPolicy(max_retries=0)


def _key(message: Message) -> tuple[str, str, str]:
    return (message.channel, message.id, str(message.version))


def _before(message: Message, page: list[Message]) -> str | None:
    index = page.index(message)
    return str(page[index - 1].version) if index > 0 else None


class SwitchableStore(MessageStore):
    """Wraps a store with an outage switch (drills): while ``down``, every call is Unavailable."""

    def __init__(self, inner: MessageStore) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise Unavailable(f"{self.inner.kind} store is down (drill)", retry_after=5, code="store_unavailable")

    def _create(self, message: Message) -> None:
        self._check()
        self.inner.create(message)

    def _put_if_newer(self, message: Message) -> bool:
        self._check()
        return self.inner.put_if_newer(message)

    def _get(self, channel: str, message_id: str) -> Message | None:
        self._check()
        return self.inner.get(channel, message_id)

    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        self._check()
        return self.inner._scan_newest_first(channel, before, page_hint)

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        self._check()
        return self.inner.changes_since(since, limit)

    def _ping(self) -> None:
        self._check()
        self.inner.ping()

    def close(self) -> None:
        self.inner.close()


class PeriodicAntiEntropy:
    def __init__(self, overcast: Any, every_s: float, window_s: int = 900) -> None:
        self.overcast = overcast
        self.every_s = every_s
        self.window_s = window_s
        self.stop_event = threading.Event()

    def run(self) -> None:
        from core.anti_entropy import run

        while not self.stop_event.wait(self.every_s):
            try:
                report = run(self.overcast, window_s=self.window_s, budget_s=max(5.0, self.every_s * 0.8))
                log(logger, logging.INFO, "anti-entropy", ok=report.ok, pushed=report.pushed, pulled=report.pulled)
            except Exception:
                logger.exception("anti-entropy pass crashed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.local", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (0 picks a free one)")
    parser.add_argument("--db", required=True, help="SQLite file (created if missing)")
    parser.add_argument("--poll-s", type=float, default=0.05, help="change scan interval (default 0.05)")
    parser.add_argument("--lookback-ms", type=int, default=2000, help="re-scan window behind the checkpoint")
    parser.add_argument("--from-beginning", action="store_true", help="deliver every stored change at start")
    parser.add_argument("--no-replication", action="store_true", help="serve only; deliver no changes")
    parser.add_argument("--anti-entropy-every-s", type=float, default=0.0, help="one pass every N s (0: off)")
    parser.add_argument("--anti-entropy-window-s", type=int, default=900, help="window of each pass")
    args = parser.parse_args(argv)
    if not args.host.startswith("127."):
        parser.error("--host must be a loopback address (127.x.y.z)")

    from adapters.http_peer import UrllibPeerTransport
    from adapters.jwt_auth import authorizer_for
    from adapters.local.http_server import LocalHttpServer
    from adapters.local.store import SqliteMessageStore
    from core.bootstrap import bootstrap
    from core.replication import Replicator
    from core.settings import Settings

    try:
        settings = Settings.from_env()
        Path(args.db).parent.mkdir(parents=True, exist_ok=True)
        store = SwitchableStore(SqliteMessageStore(args.db))
        transport = UrllibPeerTransport()
        overcast = bootstrap(settings, store, transport, authorizer=authorizer_for(settings.auth))
        server = LocalHttpServer(overcast.app, args.host, args.port)
    except (OvercastError, OSError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2

    workers: list[tuple[threading.Thread, threading.Event]] = []
    if not args.no_replication:
        for peer in settings.peers:
            replicator = Replicator(
                settings.origin,
                [peer],
                transport,
                overcast.replicator.now_s,
                settings.limits,
                settings.replication_timeout_s,
                overcast.status,  # one status per process, as the deployed functions keep it
            )
            poller = ChangePoller(
                store,
                replicator.forward,
                name=f"to-{peer.name}",
                poll_s=args.poll_s,
                lookback_ms=args.lookback_ms,
                start="beginning" if args.from_beginning else "now",
            )
            workers.append((threading.Thread(target=poller.run, name=poller.name, daemon=True), poller.stop_event))
    if args.anti_entropy_every_s > 0:
        timer = PeriodicAntiEntropy(overcast, args.anti_entropy_every_s, args.anti_entropy_window_s)
        workers.append((threading.Thread(target=timer.run, name="anti-entropy", daemon=True), timer.stop_event))

    def store_down(*_: Any) -> None:
        store.down = True

    def store_up(*_: Any) -> None:
        store.down = False

    signal.signal(signal.SIGUSR1, store_down)
    signal.signal(signal.SIGUSR2, store_up)
    try:
        serve_until_stopped(server, workers)
    finally:
        store.close()
    return 0


class LocalCloud(Cloud):
    """A local cloud in ``runtime.mesh``: SQLite in the mesh's work directory, no emulator (a store
    outage is SIGUSR1/SIGUSR2 to this runtime)."""

    kind = "local"
    own_timer = True

    def _db(self) -> Path:
        return self.workdir / f"{self.name}.sqlite"

    def start_emulator(self) -> None:
        self.store_spec = f"sqlite://{self._db()}"

    def kind_args(self) -> list[str]:
        return ["--db", str(self._db())]


if __name__ == "__main__":
    sys.exit(main())

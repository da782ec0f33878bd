"""A load generator that behaves like real clients of a DNS-failover service.

- Each client resolves the name through a DNS server (dnspython) with its own cache that honours
  the answer's TTL, then connects to the resolved address with ``Host: <domain>``. One connection
  per request, so a new DNS answer takes effect as soon as the cache expires.
- Open loop: requests start at fixed scheduled times whatever happens to earlier ones, so a stall
  shows up as latency and timeouts instead of hiding as a lower request rate. Latency is measured
  from the scheduled time.
- Writes carry an ``Idempotency-Key`` and are retried with the SAME key on errors and timeouts
  (re-resolving DNS, honouring the TTL); the key is also embedded in the text, so duplicates can
  be counted on every cloud afterwards. An acknowledged write is a 201 received.
- Every attempt is recorded: scheduled/start/end time, address, serving provider, status, error.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import random
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import dns.exception
import dns.resolver

WRITE, READ_LIST, READ_ONE = "write", "read_list", "read_one"


@dataclass
class Attempt:
    op: int
    kind: str
    attempt: int
    client: int
    scheduled: float  # seconds since the load's epoch
    start: float
    end: float
    address: str | None
    served_by: str | None
    status: int | None
    error: str | None = None
    key: str | None = None
    message_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass
class Write:
    op: int
    key: str
    text: str
    acked: bool = False
    message_id: str | None = None
    served_by: str | None = None
    attempts: int = 0


class DnsClientResolver:
    """dnspython resolver with a TTL-honouring cache, pointed at one or more nameservers."""

    def __init__(self, nameservers: list[tuple[str, int]] | None, timeout_s: float = 1.0) -> None:
        if nameservers:
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [host for host, _ in nameservers]
            self.resolver.port = nameservers[0][1]
        else:  # the system's resolvers (live mode)
            self.resolver = dns.resolver.Resolver()
        self.resolver.cache = dns.resolver.Cache(cleaning_interval=60.0)
        self.resolver.lifetime = timeout_s
        self.resolver.timeout = timeout_s

    def resolve(self, name: str) -> str:
        answer = self.resolver.resolve(name, "A")
        return str(answer[0].address)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a resolved address while verifying the certificate for the domain."""

    def __init__(self, address: str, domain: str, port: int, timeout: float) -> None:
        super().__init__(domain, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


@dataclass
class LoadSpec:
    domain: str
    port: int
    rate: float = 20.0
    write_share: float = 0.3
    clients: int = 4
    write_attempts: int = 6
    timeout_s: float = 2.0
    channel: str = ""
    scheme: str = "http"
    seed: int = 7
    max_backoff_s: float = 2.0
    # Clients join one by one over this many seconds (use the TTL), so their cached DNS answers
    # expire at spread-out times, like a real population of clients, not all at once.
    stagger_s: float = 0.0
    labels: dict[str, str] = field(default_factory=dict)  # address → cloud name, for progress
    # The Authorization header of a client's writes (a bearer token for client_subject(client));
    # None: writes carry none.
    authorization: Callable[[int], str] | None = None


def client_subject(client: int) -> str:
    """The author (and token subject) of a load client's writes."""
    return f"client-{client}"


class LoadGenerator:
    def __init__(
        self,
        spec: LoadSpec,
        resolver_factory: Callable[[], DnsClientResolver],
        epoch: float | None = None,
    ) -> None:
        self.spec = spec
        # One channel per client, like a board's users spread over its channels: a real store does
        # not care, but an emulator whose query cost grows with a partition's size (moto) would
        # otherwise become the drill's bottleneck late in a long run.
        prefix = spec.channel or f"drill-{uuid.uuid4().hex[:10]}"
        self.channels = [f"{prefix}-{n}" for n in range(spec.clients)]
        self.epoch = epoch if epoch is not None else time.monotonic()
        self.resolvers = [resolver_factory() for _ in range(spec.clients)]
        self.attempts: list[Attempt] = []
        self.writes: list[Write] = []
        self._acked_ids: list[tuple[str, str]] = []  # (channel, message id)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rng = random.Random(spec.seed)
        workers = int(min(512, max(32, spec.rate * spec.timeout_s * (spec.write_attempts + 2))))
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load")
        self._thread: threading.Thread | None = None
        self._futures: list[concurrent.futures.Future[None]] = []
        self._op = 0

    def now(self) -> float:
        return time.monotonic() - self.epoch

    # -- schedule -----------------------------------------------------------------------------

    def start(self) -> LoadGenerator:
        self._thread = threading.Thread(target=self._schedule, name="load-schedule", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_s: float = 30.0) -> None:
        """Stop scheduling and wait (bounded) for requests in flight, retries included."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        concurrent.futures.wait(self._futures, timeout=drain_s)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _schedule(self) -> None:
        period = 1.0 / self.spec.rate
        began = next_at = self.now()
        while not self._stop.is_set():
            wait = next_at - self.now()
            if wait > 0 and self._stop.wait(wait):
                return
            op = self._op
            self._op += 1
            client = op % self._joined(next_at - began)
            roll = self._rng.random()
            if roll < self.spec.write_share:
                operation = self._write
            elif roll < self.spec.write_share + (1 - self.spec.write_share) / 2:
                operation = self._read_list
            else:
                operation = self._read_one
            with contextlib.suppress(RuntimeError):
                self._futures.append(self._pool.submit(operation, op, client, next_at))
            next_at += period  # fixed schedule: no drift, no waiting for completions

    def _joined(self, at: float) -> int:
        if self.spec.stagger_s <= 0:
            return self.spec.clients
        return min(self.spec.clients, 1 + int(at / (self.spec.stagger_s / self.spec.clients)))

    # -- operations ---------------------------------------------------------------------------

    def _write(self, op: int, client: int, scheduled: float) -> None:
        key = f"k{op:06d}-{uuid.uuid4().hex[:12]}"
        write = Write(op, key, f"drill write {key}")
        with self._lock:
            self.writes.append(write)
        # With tokens the author is the token's subject, so the body names none (a body author
        # must equal it); without, the client names itself (an API with auth disabled).
        fields = (
            {"text": write.text} if self.spec.authorization else {"author": client_subject(client), "text": write.text}
        )
        body = json.dumps(fields).encode()
        channel = self.channels[client]
        path = f"/channels/{channel}/messages"
        for attempt in range(1, self.spec.write_attempts + 1):
            write.attempts = attempt
            headers = {"idempotency-key": key}
            if self.spec.authorization is not None:  # a fresh header per attempt: tokens expire
                headers["authorization"] = self.spec.authorization(client)
            record = self._request(op, WRITE, attempt, client, scheduled, "POST", path, body, headers)
            record.key = key
            if record.status == 201:
                write.acked, write.message_id, write.served_by = True, record.message_id, record.served_by
                with self._lock:
                    self._acked_ids.append((channel, str(record.message_id)))
                return
            if record.status is not None and 400 <= record.status < 500 and record.status not in (408, 429):
                return  # the request itself is wrong: retrying cannot help
            if self._stop.is_set() and attempt >= 2:
                return
            time.sleep(min(self.spec.max_backoff_s, 0.2 * 2 ** (attempt - 1)))

    def _read_list(self, op: int, client: int, scheduled: float) -> None:
        path = f"/channels/{self.channels[client]}/messages?limit=20"
        self._request(op, READ_LIST, 1, client, scheduled, "GET", path)

    def _read_one(self, op: int, client: int, scheduled: float) -> None:
        with self._lock:
            target = self._rng.choice(self._acked_ids[-50:]) if self._acked_ids else None
        if target is None:
            self._read_list(op, client, scheduled)
            return
        channel, message_id = target
        self._request(op, READ_ONE, 1, client, scheduled, "GET", f"/channels/{channel}/messages/{message_id}")

    def _request(
        self,
        op: int,
        kind: str,
        attempt: int,
        client: int,
        scheduled: float,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Attempt:
        start = self.now()
        record = Attempt(op, kind, attempt, client, scheduled, start, start, None, None, None)
        try:
            record.address = self.resolvers[client].resolve(self.spec.domain)
        except (dns.exception.DNSException, OSError) as exc:
            record.error = f"dns: {exc.__class__.__name__}"
            record.end = self.now()
            return self._record(record)
        connection = self._connection(record.address)
        try:
            connection.request(
                method,
                path,
                body=body,
                headers={"host": self.spec.domain, "content-type": "application/json", **(headers or {})},
            )
            response = connection.getresponse()
            payload = response.read()
            record.status = response.status
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                data = json.loads(payload)
                record.served_by = (data.get("served_by") or {}).get("provider")
                if kind == WRITE and response.status == 201:
                    record.message_id = data.get("id")
            if response.status >= 500:
                record.error = f"http {response.status}"
        except TimeoutError:
            record.error = "timeout"
        except (OSError, http.client.HTTPException) as exc:
            record.error = exc.__class__.__name__
        finally:
            connection.close()
            record.end = self.now()
        return self._record(record)

    def _connection(self, address: str) -> http.client.HTTPConnection:
        if self.spec.scheme == "https":
            return _PinnedHTTPSConnection(address, self.spec.domain, self.spec.port, self.spec.timeout_s)
        return http.client.HTTPConnection(address, self.spec.port, timeout=self.spec.timeout_s)

    def _record(self, record: Attempt) -> Attempt:
        with self._lock:
            self.attempts.append(record)
        return record

    # -- views --------------------------------------------------------------------------------

    def recent(self, since: float) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if a.end >= since]

    def acked(self) -> list[Write]:
        with self._lock:
            return [w for w in self.writes if w.acked]

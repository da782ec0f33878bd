"""The local Route 53 DNS data plane: answers failover records the way Route 53 does.

For a failover name it answers the PRIMARY record while its health check is healthy, else the
SECONDARY while that one is healthy (a record without a health check is healthy), else the
PRIMARY (Route 53: when every record is unhealthy, answer as if all were healthy). Answers carry
the record's TTL (scaled in fast drills). Records are read through the Route 53 API
(ListResourceRecordSets) and re-read periodically; health comes from the local checker fleet.

UDP and TCP on one loopback address and port (a free high port by default).

    python -m failover.dns_server  # not a CLI: started by the drill and by tests
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dnslib import CNAME, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

from failover.config import scaled_ttl
from failover.route53_setup import FailoverRecord, read_failover


@dataclass(frozen=True)
class Answer:
    t: float  # monotonic
    name: str
    role: str  # PRIMARY, SECONDARY or "" (no record)
    values: tuple[str, ...]
    ttl: int


def choose(records: list[FailoverRecord], is_healthy: Callable[[str | None], bool]) -> FailoverRecord | None:
    """Route 53's failover rule for one name and type."""
    primary = next((r for r in records if r.role == "PRIMARY"), None)
    secondary = next((r for r in records if r.role == "SECONDARY"), None)
    if primary is not None and is_healthy(primary.health_check_id):
        return primary
    if secondary is not None and is_healthy(secondary.health_check_id):
        return secondary
    return primary or secondary


class FailoverResolver(BaseResolver):
    def __init__(
        self,
        read_records: Callable[[], list[FailoverRecord]],
        is_healthy: Callable[[str | None], bool],
        *,
        scale: float = 1.0,
        refresh_s: float = 1.0,
        zone: str = "",
    ) -> None:
        self.zone = zone.rstrip(".").lower()
        self._read_records = read_records
        self.is_healthy = is_healthy
        self.scale = scale
        self.refresh_s = refresh_s
        self.records: list[FailoverRecord] = read_records()
        self._read_at = time.monotonic()
        self._lock = threading.Lock()
        self.answers: list[Answer] = []  # one entry per change of answer, for the timeline
        self.queries = 0

    def _current_records(self) -> list[FailoverRecord]:
        now = time.monotonic()
        if now - self._read_at >= self.refresh_s:
            self._read_at = now
            with contextlib.suppress(Exception):  # keep serving the last records if the API hiccups
                self.records = self._read_records()
        return self.records

    def answer_for(self, name: str) -> FailoverRecord | None:
        wanted = name.rstrip(".").lower() + "."
        records = [r for r in self._current_records() if r.name == wanted]
        return choose(records, self.is_healthy) if records else None

    def current(self, name: str) -> Answer:
        record = self.answer_for(name)
        if record is None:
            return Answer(time.monotonic(), name, "", (), 0)
        return Answer(time.monotonic(), record.name, record.role, record.values, scaled_ttl(record.ttl, self.scale))

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname)
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries += 1
            record = self.answer_for(qname)
            if record is None:
                name = qname.rstrip(".").lower()
                in_zone = bool(self.zone) and (name == self.zone or name.endswith("." + self.zone))
                reply.header.rcode = RCODE.NXDOMAIN if in_zone else RCODE.REFUSED
                return reply
            ttl = scaled_ttl(record.ttl, self.scale)
            self._log(Answer(time.monotonic(), record.name, record.role, record.values, ttl))
        if record.type == "CNAME":
            reply.add_answer(RR(qname, QTYPE.CNAME, ttl=ttl, rdata=CNAME(record.values[0])))
        elif record.type == "A" and qtype in ("A", "ANY"):
            for value in record.values:
                reply.add_answer(RR(qname, QTYPE.A, ttl=ttl, rdata=A(value)))
        return reply  # other types: NOERROR with no answer (NODATA)

    def _log(self, answer: Answer) -> None:
        last = self.answers[-1] if self.answers else None
        if last is None or (last.role, last.values) != (answer.role, answer.values):
            self.answers.append(answer)


class _QuietLogger:
    """dnslib logs every query to stdout by default; the drill prints its own progress."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class FailoverDnsServer:
    """UDP + TCP DNS server for the failover records on one loopback address and port."""

    def __init__(self, resolver: FailoverResolver, address: str = "127.0.0.1", port: int = 0) -> None:
        if not address.startswith("127."):
            raise ValueError(f"the local DNS server binds loopback only, not {address}")
        self.resolver = resolver
        self.address = address
        self.port = port
        self._servers: list[DNSServer] = []

    def start(self) -> FailoverDnsServer:
        for _ in range(20):  # a free port must be free for both UDP and TCP
            port = self.port or _free_udp_port(self.address)
            try:
                udp = DNSServer(self.resolver, address=self.address, port=port, logger=_QuietLogger())
            except OSError:
                if self.port:
                    raise
                continue
            try:
                tcp = DNSServer(self.resolver, address=self.address, port=port, tcp=True, logger=_QuietLogger())
            except OSError:
                udp.server.server_close()
                if self.port:
                    raise
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                server.start_thread()
            return self
        raise OSError(f"no port free for both UDP and TCP on {self.address}")

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def __enter__(self) -> FailoverDnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_udp_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def api_records_reader(client: Any, zone_id: str) -> Callable[[], list[FailoverRecord]]:
    """Reads every failover record of the zone through the Route 53 API."""
    return lambda: read_failover(client, zone_id, None)

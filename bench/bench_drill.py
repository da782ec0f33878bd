"""The failover drill's local Route 53 data plane: DNS answers per second, probe latency, and how
detection compares with Route 53's bound (interval x threshold) over repeated outages.

Runs without emulators (a DNS server and a tiny HTTP server on 127.0.0.1); the full drill is
`make drill-fast`, whose figures are in its own report.
"""

from __future__ import annotations

import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dns.message
import dns.query

from bench.report import Section
from failover.dns_server import FailoverDnsServer, FailoverResolver
from failover.healthcheck import CheckSpec, HealthCheckFleet, ProbeResult, probe
from failover.route53_setup import FailoverRecord

NAME = "api.example.com."


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def run(report: Section) -> None:
    records = [
        FailoverRecord(NAME, "A", "PRIMARY", "aws-primary", 60, ("127.0.0.2",), "hc"),
        FailoverRecord(NAME, "A", "SECONDARY", "azure-secondary", 60, ("127.0.0.3",), None),
    ]
    resolver = FailoverResolver(lambda: records, lambda check: True, refresh_s=1.0, zone="example.com")
    with FailoverDnsServer(resolver, "127.0.0.1", 0) as server:
        query = dns.message.make_query(NAME, "A")
        for _ in range(50):
            dns.query.udp(query, "127.0.0.1", port=server.port, timeout=2)
        count, started = 1000, time.perf_counter()
        latencies = []
        for _ in range(count):
            t = time.perf_counter()
            dns.query.udp(query, "127.0.0.1", port=server.port, timeout=2)
            latencies.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - started
    report.figure("dns answers per second (one client, UDP)", count / elapsed, "q/s")
    report.figure("dns answer latency p50", statistics.median(latencies) * 1000, "ms")

    http = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        port = http.server_address[1]
        samples = [probe("127.0.0.1", port, "/health/deep", "h", 4.0, 2.0).latency_s for _ in range(200)]
    finally:
        http.shutdown()
        http.server_close()
    report.figure("health probe latency p50 (connect + status line)", statistics.median(samples) * 1000, "ms")

    # Detection against the bound: interval 10 s x scale 0.01 = 0.1 s, threshold 3 -> bound 0.3 s.
    state = {"ok": True}
    spec = CheckSpec("hc", "HTTP", "127.0.0.1", "h", 1, "/", 10, 3)

    def fake_probe(*args: Any) -> ProbeResult:
        return ProbeResult(state["ok"], 200, 0.0)

    ratios = []
    fleet = HealthCheckFleet(lambda: spec, checkers=8, scale=0.01, probe_fn=fake_probe).start()
    try:
        for _ in range(10):
            time.sleep(0.37)  # an arbitrary phase against the checkers' schedule
            state["ok"] = False
            began = time.monotonic()
            while fleet.healthy:
                time.sleep(0.001)
            ratios.append((time.monotonic() - began) / 0.3)
            state["ok"] = True
            while not fleet.healthy:
                time.sleep(0.001)
    finally:
        fleet.stop()
    report.figure("detection / (interval x threshold), median of 10", statistics.median(ratios), "", "< 1")
    report.figure("detection / (interval x threshold), worst of 10", max(ratios), "", "< 1 (+ scheduling)")

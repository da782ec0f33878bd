"""Replication lag on the local runtime: a write acknowledged in one cloud → readable in the other.

A mesh of AWS (runtime.aws: moto DynamoDB, Streams poller → handlers.aws.changes) and Azure
(runtime.azure: cosmosdb-server, emulated change feed → handlers.azure.changes), each its own
processes on its own loopback address. For each direction, an open-loop writer posts at a
steady rate (RATE writes/s for SECONDS s, after a short warm-up) and a reader polls the other
cloud every POLL_S; a message's lag is the time from the 201 in the source cloud to the first
read in the target cloud that returns it. The poll interval bounds the resolution (lag is
over-stated by POLL_S/2 on average).

Reads are listings of small channels: the writer moves to a new channel every second and the
reader lists only channels that still have unseen messages. Listing one ever-growing channel
would make the reader the heaviest load on moto (its Query reads the whole partition), and the
benchmark would measure its own reader.

Target: p99 under 1 s (what DynamoDB global tables quote for cross-region replication).

    python -m bench replication
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from bench.report import Section

RATE = 20.0  # writes per second
SECONDS = 15.0
WARMUP_S = 2.0
POLL_S = 0.025
GIVE_UP_S = 15.0


class Connection:
    """One keep-alive HTTP connection per thread."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._local = threading.local()

    def request(self, method: str, path: str, body: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        payload = json.dumps(body).encode() if body is not None else None
        try:
            conn.request(method, path, body=payload, headers={"content-type": "application/json"})
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self._local.conn = None
            raise


def measure(source_url: str, target_url: str, prefix: str, rate: float, seconds: float) -> dict[str, float]:
    source, target = Connection(source_url), Connection(target_url)
    acked: dict[str, tuple[float, str]] = {}  # id → (ack time, channel)
    seen: dict[str, float] = {}  # id → first time readable in the target
    lock = threading.Lock()
    errors = 0
    done = threading.Event()
    per_channel = max(int(rate), 1)

    def post(i: int, measured: bool) -> None:
        nonlocal errors
        channel = f"{prefix}-{i // per_channel}"
        try:
            status, body = source.request("POST", f"/channels/{channel}/messages", {"author": "bench", "text": f"m{i}"})
        except (OSError, http.client.HTTPException):
            status, body = 0, b""
        now = time.perf_counter()
        if status != 201:
            with lock:
                errors += 1
            return
        if measured:
            with lock:
                acked[json.loads(body)["id"]] = (now, channel)

    def read() -> None:
        while not done.is_set():
            with lock:
                channels = sorted({channel for i, (_, channel) in acked.items() if i not in seen})
            for channel in channels:
                try:
                    status, body = target.request("GET", f"/channels/{channel}/messages?limit=100")
                except (OSError, http.client.HTTPException):
                    continue
                now = time.perf_counter()
                if status == 200:
                    with lock:
                        for item in json.loads(body)["items"]:
                            seen.setdefault(item["id"], now)
            done.wait(POLL_S)

    reader = threading.Thread(target=read, name="lag-reader", daemon=True)
    reader.start()
    total = int((WARMUP_S + seconds) * rate)
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="lag-writer") as pool:
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, i, i >= WARMUP_S * rate)
    deadline = time.perf_counter() + GIVE_UP_S
    while time.perf_counter() < deadline:
        with lock:
            if all(i in seen for i in acked):
                break
        time.sleep(0.05)
    done.set()
    reader.join(5)
    lags = sorted((seen[i] - t) * 1000 for i, (t, _) in acked.items() if i in seen)
    return {
        "writes": len(acked),
        "errors": errors,
        "missing": len(acked) - len(lags),
        "p50": percentile(lags, 50),
        "p99": percentile(lags, 99),
        "max": lags[-1] if lags else float("nan"),
    }


def percentile(values: list[float], p: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def run(report: Section) -> None:
    from runtime.mesh import Mesh

    with Mesh.start(["aws", "azure"], env={"OVERCAST_LOG_LEVEL": "WARNING", "OVERCAST_AUTH_DISABLED": "true"}) as mesh:
        for source, target in (("aws", "azure"), ("azure", "aws")):
            result = measure(mesh.cloud(source).url, mesh.cloud(target).url, f"lag-{source}", RATE, SECONDS)
            name = f"{source} → {target}"
            report.figure(f"{name} writes ({RATE:.0f}/s for {SECONDS:.0f} s)", int(result["writes"]), "")
            report.figure(f"{name} replication lag p50", round(result["p50"], 1), "ms")
            report.figure(f"{name} replication lag p99", round(result["p99"], 1), "ms", target="< 1000 ms")
            report.figure(f"{name} replication lag max", round(result["max"], 1), "ms")
            report.figure(f"{name} not readable after {GIVE_UP_S:.0f} s", int(result["missing"]), "", target="0")
            if result["errors"]:
                report.figure(f"{name} write errors", int(result["errors"]), "")
        report.figure("reader poll interval (resolution)", POLL_S * 1000, "ms")
        # Context for the figures: everything (two runtimes, two emulators, the load) shares the CPUs.
        report.figure(f"load average (1 min) on {os.cpu_count()} CPUs", round(os.getloadavg()[0], 2), "")

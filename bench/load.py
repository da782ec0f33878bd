"""A small closed-loop HTTP load driver for benchmarks: N keep-alive connections, fixed duration."""

from __future__ import annotations

import http.client
import json
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

RequestSpec = tuple[str, str, bytes | None]  # method, path, body


@dataclass
class LoadResult:
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(p) - 1]


def drive(
    host: str, port: int, next_request: Callable[[int, int], RequestSpec], connections: int, seconds: float
) -> LoadResult:
    """Each connection loops ``next_request(worker, i)`` until the time is up."""
    result = LoadResult()
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker(w: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        local, errors, i = [], 0, 0
        while time.perf_counter() < deadline:
            method, path, body = next_request(w, i)
            i += 1
            started = time.perf_counter()
            try:
                headers = {"content-type": "application/json"} if body else {}
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    errors += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
            local.append((time.perf_counter() - started) * 1000)
        conn.close()
        with lock:
            result.latencies_ms.extend(local)
            result.requests += len(local)
            result.errors += errors

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.perf_counter() - started
    return result


def post_body(text: str) -> bytes:
    return json.dumps({"author": "bench", "text": text}).encode()

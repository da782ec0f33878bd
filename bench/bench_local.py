"""Local provider: handler import time, and requests/s of the local server against SQLite."""

from __future__ import annotations

import json
import sys
import tempfile
import urllib.request
from pathlib import Path

from bench.load import LoadResult, drive, post_body
from bench.report import Section, import_time
from emulators.base import ServerProcess, free_port

SECONDS = 5.0
CONNECTIONS = 4


def run(report: Section) -> None:
    report.figure("import handlers.local (fresh interpreter)", import_time("import handlers.local") * 1000, "ms")
    report.figure("import core.bootstrap alone", import_time("import core.bootstrap") * 1000, "ms")

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        argv = [sys.executable, "-m", "handlers.local", "--port", str(port), "--db", str(Path(tmp) / "bench.sqlite")]
        with ServerProcess(
            "bench-local", argv, port=port, env={"OVERCAST_LOG_LEVEL": "WARNING", "OVERCAST_AUTH_DISABLED": "true"}
        ):
            base = "/channels/bench/messages"
            posts = drive("127.0.0.1", port, lambda w, i: ("POST", base, post_body(f"w{w} m{i}")), CONNECTIONS, SECONDS)
            _line(report, "POST /channels/{c}/messages", posts)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{base}?limit=1") as response:
                some_id = json.load(response)["items"][0]["id"]
            gets = drive("127.0.0.1", port, lambda w, i: ("GET", f"{base}/{some_id}", None), CONNECTIONS, SECONDS)
            _line(report, "GET /channels/{c}/messages/{id}", gets)
            lists = drive("127.0.0.1", port, lambda w, i: ("GET", f"{base}?limit=20", None), CONNECTIONS, SECONDS)
            _line(report, "GET /channels/{c}/messages?limit=20", lists)


def _line(report: Section, name: str, result: LoadResult) -> None:
    report.figure(f"{name} req/s ({CONNECTIONS} conns)", round(result.per_second, 1), "req/s")
    report.figure(f"{name} p50 latency", round(result.percentile(50), 2), "ms")
    report.figure(f"{name} p99 latency", round(result.percentile(99), 2), "ms")
    if result.errors:
        report.figure(f"{name} errors", result.errors, "")

"""The local server's throughput against a plain standard-library server doing the same SQL
(bench/stdlib_server.py: ThreadingHTTPServer + sqlite3 on the same schema and triggers).

Both run as their own processes on loopback; each route is driven with the same closed-loop
load (CONNECTIONS keep-alive connections), in windows taken in turns (ours, base, base, ours),
so load from other processes on the shared machine falls on both alike. Target: ours >= 0.9x.

    python -m bench local_server
"""

from __future__ import annotations

import json
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.load import RequestSpec, drive, post_body
from bench.report import Section
from emulators.base import ServerProcess, free_port

WINDOW_S = 3.0
CONNECTIONS = 4


def run(report: Section) -> None:
    from adapters.local.store import SqliteMessageStore

    report.method(
        f"closed loop, {CONNECTIONS} keep-alive connections, {WINDOW_S:g} s windows ours/base/base/ours per route; "
        "base = stdlib ThreadingHTTPServer + sqlite3, same SQL, schema, triggers and pragmas (WAL, synchronous=NORMAL), "
        "no validation; ours at WARNING, reads repeat one row/page (ours validates a repeated row once)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        ours_db, base_db = Path(tmp) / "ours.sqlite", Path(tmp) / "base.sqlite"
        SqliteMessageStore(base_db).close()
        ours_port, base_port = free_port(), free_port()
        ours_argv = [sys.executable, "-m", "handlers.local", "--port", str(ours_port), "--db", str(ours_db)]
        base_argv = [sys.executable, "-m", "bench.stdlib_server", str(base_port), str(base_db)]
        env = {"OVERCAST_LOG_LEVEL": "WARNING", "OVERCAST_AUTH_DISABLED": "true"}
        with (
            ServerProcess("bench-local-ours", ours_argv, port=ours_port, env=env),
            ServerProcess("bench-local-stdlib", base_argv, port=base_port),
        ):
            path = "/channels/bench/messages"
            post: Callable[[int, int], RequestSpec] = lambda w, i: ("POST", path, post_body(f"w{w} m{i}"))  # noqa: E731
            _compare(report, "POST message", ours_port, base_port, post, post)
            ours_id, base_id = _some_id(ours_port, path), _some_id(base_port, path)
            _compare(
                report,
                "GET message",
                ours_port,
                base_port,
                lambda w, i: ("GET", f"{path}/{ours_id}", None),
                lambda w, i: ("GET", f"{path}/{base_id}", None),
            )
            listing: Callable[[int, int], RequestSpec] = lambda w, i: ("GET", f"{path}?limit=20", None)  # noqa: E731
            _compare(report, "GET listing limit=20", ours_port, base_port, listing, listing)


def _some_id(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}?limit=1") as response:
        return str(json.load(response)["items"][0]["id"])


def _compare(
    report: Section,
    name: str,
    ours_port: int,
    base_port: int,
    ours_request: Callable[[int, int], RequestSpec],
    base_request: Callable[[int, int], RequestSpec],
) -> None:
    totals = {"ours": [0, 0.0, 0], "base": [0, 0.0, 0]}  # requests, seconds, errors
    for side in ("ours", "base", "base", "ours"):
        port, request = (ours_port, ours_request) if side == "ours" else (base_port, base_request)
        result = drive("127.0.0.1", port, request, CONNECTIONS, WINDOW_S)
        totals[side][0] += result.requests
        totals[side][1] += result.seconds
        totals[side][2] += result.errors
    ours, base = (totals[s][0] / totals[s][1] for s in ("ours", "base"))
    report.figure(f"{name}: req/s, local server", round(ours, 1), "req/s")
    report.figure(f"{name}: req/s, stdlib + sqlite3", round(base, 1), "req/s")
    report.figure(f"{name}: ratio local server / stdlib", round(ours / base, 3), "x", ">= 0.9")
    for side, label in (("ours", "local server"), ("base", "stdlib + sqlite3")):
        if totals[side][2]:
            report.figure(f"{name}: errors, {label}", int(totals[side][2]), "")

"""Azure provider: import cost of handlers.azure over the Azure SDKs alone, and what the adapter and
core add to a Cosmos DB call, measured against the direct SDK call on the same emulator.

The emulator is the keep-alive launcher (emulators/cosmos_server.js), so a call costs a few ms of
real HTTPS round trip; the two sides run interleaved (A, B, A, B, ...) so drift on a shared
machine hits both equally. Call ratios are medians of per-round paired ratios.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.report import Section, paired, report_paired

ROUNDS = 400
WARMUP = 40


def run(report: Section) -> None:
    handler_runs, sdk_runs = _import_times("import handlers.azure", "import azure.cosmos, azure.functions")
    sdk_s = statistics.median(sdk_runs)
    report.figure("import handlers.azure (fresh interpreter, median)", statistics.median(handler_runs) * 1000, "ms")
    report.figure("import azure.cosmos, azure.functions alone (median)", sdk_s * 1000, "ms")
    report.figure("import ratio handlers.azure / SDKs alone", _paired_ratio(handler_runs, sdk_runs), "x", "<= 1.15")
    # Less noisy view of our own share: in one interpreter, the SDKs first, then handlers.azure.
    extra_s = _import_increment("import azure.cosmos, azure.functions", "import handlers.azure")
    report.figure("import handlers.azure on top of the SDKs (same interpreter)", extra_s * 1000, "ms")
    report.figure("import ratio (SDKs + that increment) / SDKs", round((sdk_s + extra_s) / sdk_s, 3), "x", "<= 1.15")

    from adapters.azure.store import CosmosMessageStore, ensure_container
    from core.bootstrap import bootstrap
    from core.model import Message, Version, new_message_id
    from core.settings import Settings
    from emulators.cosmos import CosmosEmulator
    from tests.fakes import RecordingTransport

    with _emulator(CosmosEmulator) as emulator:
        client = emulator.client()
        container = ensure_container(client, "bench", "messages")
        store = CosmosMessageStore(container)
        settings = Settings.from_env(
            {"OVERCAST_PROVIDER": "azure", "OVERCAST_LOG_LEVEL": "INFO", "OVERCAST_AUTH_DISABLED": "true"}
        )  # token verification is measured on its own: bench_auth
        overcast = bootstrap(settings, store, RecordingTransport())
        service = overcast.service

        def sdk_create() -> None:
            now = time.time_ns() // 1_000_000
            message = Message("bench", new_message_id(now), "ada", "Hello London", now, Version(now, 0, "azure"))
            container.create_item(message.to_record(), timeout=store.timeout_s)  # the store's own bound

        def adapter_create() -> None:
            now = time.time_ns() // 1_000_000
            store.create(Message("bench", new_message_id(now), "ada", "Hello London", now, Version(now, 0, "azure")))

        def core_create() -> None:
            service.post("bench", "ada", "Hello London")

        known = service.post("bench", "ada", "read me").message
        sdk_read = lambda: container.read_item(known.id, partition_key=known.channel, timeout=store.timeout_s)  # noqa: E731
        adapter_read = lambda: store.get(known.channel, known.id)  # noqa: E731
        core_read = lambda: service.get(known.channel, known.id)  # noqa: E731

        for op, names, fns in (
            ("create", ("container.create_item", "CosmosMessageStore.create", "MessageService.post"), (sdk_create, adapter_create, core_create)),
            ("read", ("container.read_item", "CosmosMessageStore.get", "MessageService.get"), (sdk_read, adapter_read, core_read)),
        ):  # fmt: skip
            times = _interleaved(*fns)
            for name, series in zip(names, times, strict=True):
                report.figure(f"{op}: {name} p50", statistics.median(series) * 1000, "ms")
            report.figure(f"{op} ratio adapter / SDK", _paired_ratio(times[1], times[0]), "x", "<= 1.10")
            report.figure(f"{op} ratio core + adapter / SDK", _paired_ratio(times[2], times[0]), "x", "<= 1.10")

        # The whole request as the function serves it after mapping the trigger's event: HttpApp
        # (routing, validation, JSON, the INFO request line) + core + adapter, against the SDK call.
        from core.http import Request

        app = overcast.app
        post_request = Request(
            "POST", "/channels/bench/messages", {}, {"content-type": "application/json"},
            b'{"author": "ada", "text": "Hello London"}',
        )  # fmt: skip
        get_request = Request("GET", f"/channels/bench/messages/{known.id}", {}, {}, b"")

        def app_post() -> None:
            assert app.handle(post_request).status == 201

        def app_get() -> None:
            assert app.handle(get_request).status == 200

        report.method(
            f"per request: HttpApp.handle at INFO (log lines written to /dev/null) vs the bare SDK call "
            "(with the store's per-call timeout), "
            f"{ROUNDS // 2} each, A-B/B-A turns; client CPU = this process's time"
        )
        real_stderr, sys.stderr = sys.stderr, open(os.devnull, "w", buffering=1)  # noqa: SIM115
        try:
            for op, ours, base in (("create", app_post, sdk_create), ("read", app_get, sdk_read)):
                result = paired(ours, base, ROUNDS // 2, warmup=WARMUP)
                report_paired(report, f"{op} via HttpApp", "app + core + adapter", "SDK call alone", result)
        finally:
            sys.stderr.close()
            sys.stderr = real_stderr
        overcast.store.close()
    _keep_alive_figures(report)


def _keep_alive_figures(report: Section) -> None:
    """What the launcher's keep-alive buys: a point read on the package's own CLI (which answers
    `connection: close`, so every call opens a new TCP + TLS connection) vs on the launcher."""
    import shutil

    from adapters.azure.store import ensure_container
    from emulators.base import ServerProcess, free_port
    from emulators.cosmos import CosmosEmulator, emulator_client, find_package

    package, node = find_package(), shutil.which("node")
    if package is None or node is None:
        return
    timings = {}
    port = free_port()
    cli = [node, str(package / "lib" / "cli.js"), "--host", "127.0.0.1", "-p", str(port)]
    with ServerProcess("cosmosdb-server-cli", cli, port=port):
        timings["close"] = _read_p50(ensure_container(emulator_client(f"https://127.0.0.1:{port}"), "b", "c"))
    with _emulator(CosmosEmulator) as emulator:
        timings["keep-alive"] = _read_p50(ensure_container(emulator.client(), "b", "c"))
    report.figure("emulator read_item p50, package CLI (connection: close)", timings["close"] * 1000, "ms")
    report.figure("emulator read_item p50, keep-alive launcher", timings["keep-alive"] * 1000, "ms")


def _read_p50(container: Any, rounds: int = 60) -> float:
    container.upsert_item({"id": "k", "channel": "london"})
    for _ in range(5):
        container.read_item("k", partition_key="london")
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        container.read_item("k", partition_key="london")
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _cached_env() -> dict[str, str]:
    """The environment for import measurements, with bytecode caching allowed: pip compiled the
    SDKs' modules at install, so ours must be read from __pycache__ too (the first, warm-up run
    writes it) or the comparison would charge only our side for compiling sources."""
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _import_times(a: str, b: str, repeat: int = 21) -> tuple[list[float], list[float]]:
    """Import times of two statements in fresh interpreters, run in adjacent pairs (A B, B A, ...)
    so load on the shared machine falls on both sides alike."""
    import subprocess
    import sys

    env = _cached_env()

    def once(statement: str) -> float:
        code = f"import time; t=time.perf_counter(); {statement}; print(time.perf_counter()-t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        return float(out.stdout.strip().splitlines()[-1])

    once(a), once(b)  # warm the file cache
    times: dict[str, list[float]] = {a: [], b: []}
    for i in range(repeat):
        for statement in (a, b) if i % 2 == 0 else (b, a):
            times[statement].append(once(statement))
    return times[a], times[b]


def _import_increment(first: str, then: str, repeat: int = 15) -> float:
    """Median time ``then`` takes in a fresh interpreter that has already run ``first``."""
    import subprocess
    import sys

    code = f"import time; {first}; t=time.perf_counter(); {then}; print(time.perf_counter()-t)"
    env = _cached_env()
    run = lambda: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)  # noqa: E731
    run()  # writes our modules' bytecode cache
    runs = [float(run().stdout.split()[-1]) for _ in range(repeat)]
    return statistics.median(runs)


def _paired_ratio(ours: list[float], sdk: list[float]) -> float:
    """Median of the per-round ratios: each round's calls ran back to back, so a burst of load
    from other processes on the shared machine hits both sides of a pair alike."""
    return round(statistics.median(a / b for a, b in zip(ours, sdk, strict=True)), 3)


def _interleaved(*fns: Callable[[], Any]) -> list[list[float]]:
    """Seconds per call of each function, calls interleaved (one of each per round, the order
    rotated every round)."""
    for _ in range(WARMUP):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    order = list(range(len(fns)))
    for i in range(ROUNDS):
        for j in order[i % len(fns) :] + order[: i % len(fns)]:
            started = time.perf_counter()
            fns[j]()
            times[j].append(time.perf_counter() - started)
    return times


class _emulator:
    def __init__(self, factory: Any) -> None:
        self.emulator = factory()

    def __enter__(self) -> Any:
        return self.emulator.start()

    def __exit__(self, *exc: object) -> None:
        self.emulator.stop()

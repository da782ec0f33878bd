"""Replication lag on the local runtime, swept over write rates: a write acknowledged in one cloud
→ readable in the other, AWS → Azure and Azure → AWS, and the rate where the lag starts to grow.

A mesh of AWS (runtime.aws: moto DynamoDB, Streams poller → handlers.aws.changes) and Azure
(runtime.azure: cosmosdb-server, emulated change feed → handlers.azure.changes), each its own
processes on its own loopback address. For each rate a FRESH mesh is started (so every rate
starts from empty stores: cosmosdb-server answers every query by scanning every document, and
a store grown by the rates before would make the later rates slower by the data alone), then,
for each direction, an open-loop writer posts at the rate for WINDOW_S s (after WARMUP_S s) and
a reader checks the other cloud every POLL_S; a message's lag is the time from the 201 in the
source cloud to the first read in the target cloud that returns it.

The reader does point reads (``GET /channels/c/messages/{id}``), oldest unseen first, and
stops a round after MISS_BUDGET misses: a point read is O(1) in both emulators, whereas a
listing is a full scan in cosmosdb-server, and a listing reader made the benchmark measure its
own reader (at 10,000 documents one listing took ~370 ms of the emulator's single thread). The
poll interval bounds the resolution (lag is over-stated by about POLL_S/2).

After the window the reader goes on for GRACE_S s; what it has not read then is "unread" (a
backlog that kept up with the rate is empty by then: 0 means delivery kept up). The lag
percentiles include the records read up to DRAIN_S s later; any still unread count as
never-arrived, so a p99 over the drain shows as ">".

Per window, the CPU time each process used (from /proc) shows who was saturated: Node
(cosmosdb-server) and each Python process (GIL) can use about one core at most.

Target: p99 under 1 s (what DynamoDB global tables quote for cross-region replication).
The lag "starts to grow" at the first rate where p99 > 1 s or a backlog is left after the window.

    python -m bench replication                  # the sweep (about 3-4 min)
    OVERCAST_BENCH_RATES=20 python -m bench replication   # one rate
"""

from __future__ import annotations

import http.client
import json
import math
import os
import statistics
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.report import Section

RATES = (25.0, 50.0, 100.0, 150.0, 200.0)  # writes per second
WINDOW_S = 8.0
WARMUP_S = 1.0
POLL_S = 0.05
MISS_BUDGET = 8  # misses per reader round (the receiver applies a batch on 8 workers)
GRACE_S = 3.0
DRAIN_S = 5.0
PER_CHANNEL = 50  # messages per channel before the writer moves on
LAG_BOUND_MS = 1000.0
WRITERS = 16


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


@dataclass
class Window:
    """What one direction at one rate came to."""

    rate: float
    writes: int = 0
    errors: int = 0
    achieved_rate: float = 0.0
    p50: float = math.nan
    p50_open: bool = False  # more than half never arrived within the drain: p50 is a lower bound
    p99: float = math.nan
    p99_open: bool = False  # some records never arrived within the drain: p99 is a lower bound
    max: float = math.nan
    unread: int = 0  # not readable GRACE_S after the window
    missing: int = 0  # not readable DRAIN_S after that
    reads: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # process → share of one core in the window

    @property
    def grows(self) -> bool:
        return self.unread > 0 or self.p99_open or not self.p99 <= LAG_BOUND_MS


def measure(
    source_url: str, target_url: str, prefix: str, rate: float, pids: dict[str, int | None] | None = None
) -> Window:
    source, target = Connection(source_url), Connection(target_url)
    order: list[tuple[str, str]] = []  # (channel, id) in ack order
    acked: dict[str, float] = {}  # id → ack time
    seen: dict[str, float] = {}  # id → first time readable in the target
    lock = threading.Lock()
    errors = 0
    reads = 0
    done = threading.Event()

    def post(i: int, measured: bool) -> None:
        nonlocal errors
        channel = f"{prefix}-{i // PER_CHANNEL}"
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
                message_id = json.loads(body)["id"]
                acked[message_id] = now
                order.append((channel, message_id))

    def read() -> None:
        nonlocal reads
        start = 0  # everything before it in ``order`` has been seen
        while not done.is_set():
            with lock:
                candidates = [key for key in order[start:] if key[1] not in seen]
            misses = 0
            for channel, message_id in candidates:
                try:
                    status, _ = target.request("GET", f"/channels/{channel}/messages/{message_id}")
                except (OSError, http.client.HTTPException):
                    status = 0
                reads += 1
                if status == 200:
                    with lock:
                        seen.setdefault(message_id, time.perf_counter())
                else:
                    misses += 1
                    if misses >= MISS_BUDGET:
                        break
            with lock:
                while start < len(order) and order[start][1] in seen:
                    start += 1
            done.wait(POLL_S)

    cpu_before = _cpu_seconds(pids or {})
    reader = threading.Thread(target=read, name="lag-reader", daemon=True)
    reader.start()
    total = int((WARMUP_S + WINDOW_S) * rate)
    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="lag-writer") as pool:
        start = time.perf_counter()
        for i in range(total):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(post, i, i >= WARMUP_S * rate)
    written = time.perf_counter()
    elapsed = written - start
    cpu_after = _cpu_seconds(pids or {})
    cpu = {name: round((cpu_after[name] - cpu_before[name]) / elapsed, 2) for name in cpu_after if name in cpu_before}
    time.sleep(GRACE_S)
    with lock:
        unread = sum(1 for i in acked if i not in seen)
    deadline = time.perf_counter() + DRAIN_S
    while unread and time.perf_counter() < deadline:
        with lock:
            if all(i in seen for i in acked):
                break
        time.sleep(0.05)
    done.set()
    reader.join(5)
    with lock:
        lags = sorted((seen[i] - t) * 1000 for i, t in acked.items() if i in seen)
        missing = len(acked) - len(lags)
        writes = len(acked)
    # Records never read count as +inf: the p99 is then a lower bound when they are past the 1%.
    ranked = lags + [math.inf] * missing
    p50, p99 = percentile(ranked, 50), percentile(ranked, 99)
    return Window(
        rate=rate,
        writes=writes,
        errors=errors,
        achieved_rate=round(total / elapsed, 1),
        p50=p50 if math.isfinite(p50) else (lags[-1] if lags else math.nan),
        p50_open=not math.isfinite(p50),
        p99=p99 if math.isfinite(p99) else (lags[-1] if lags else math.nan),
        p99_open=not math.isfinite(p99),
        max=lags[-1] if lags else math.nan,
        unread=unread,
        missing=missing,
        reads=reads,
        cpu=cpu,
    )


def percentile(values: Sequence[float], p: int) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    if math.inf in values:  # statistics.quantiles interpolates: take the rank directly
        return sorted(values)[min(len(values) - 1, math.ceil(p / 100 * len(values)) - 1)]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def _cpu_seconds(pids: dict[str, int | None]) -> dict[str, float]:
    """User + system CPU seconds each process (its threads included) has used so far."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for name, pid in pids.items():
        if pid is None:
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = (int(fields[11]) + int(fields[12])) / tick
    out["bench"] = sum(os.times()[:2])
    return out


def _pids(mesh: Any) -> dict[str, int | None]:
    aws, azure = mesh.cloud("aws"), mesh.cloud("azure")
    return {
        "aws runtime": aws.process.pid if aws.process else None,
        "moto": aws.emulator_process.pid if aws.emulator_process else None,
        "azure runtime": azure.process.pid if azure.process else None,
        "cosmosdb-server": azure.emulator_process.pid if azure.emulator_process else None,
    }


def _rates() -> tuple[float, ...]:
    text = os.environ.get("OVERCAST_BENCH_RATES", "").strip()
    return tuple(float(r) for r in text.replace(",", " ").split()) if text else RATES


feed_queries: list[tuple[float, int, float]] = []  # (rate, documents, ms) per rate


def feed_query_ms(cloud: Any) -> tuple[int, float]:
    """How long cosmosdb-server takes for the emulated change feed's poll query (no row matches:
    its cost is the scan, not the answer) on the documents the mesh holds now; median of 3."""
    from emulators.cosmos import emulator_client
    from runtime.azure import CosmosCommitLog

    client = emulator_client(cloud.emulator.endpoint, cloud.emulator.key, timeout_s=30.0)
    container = client.get_database_client(cloud.database).get_container_client(cloud.container)
    counted = container.query_items("SELECT VALUE COUNT(1) FROM c", enable_cross_partition_query=True)
    documents = int(str(next(iter(counted))))
    log = CosmosCommitLog(container)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        log.read(int(time.time()) + 60)
        times.append((time.perf_counter() - started) * 1000)
    return documents, statistics.median(times)


def emulator_ceilings(ops: int = 300, workers: int = 8) -> dict[str, float]:
    """Operations per second each emulator takes from the production SDK clients on 8 threads,
    with no project code in the path: what any code in front of it can get at most."""
    from adapters.aws.store import make_client
    from adapters.aws.table import create_table
    from adapters.azure.store import ensure_container
    from emulators.cosmos import CosmosEmulator
    from emulators.moto import MotoServer

    def rate(fn: Any) -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(fn, range(ops)))
        return ops / (time.perf_counter() - started)

    out: dict[str, float] = {}
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with MotoServer(host="127.0.0.1") as moto:
        client = make_client("us-east-1", moto.url)
        create_table(client, "ceiling")

        def put(i: int) -> None:
            client.put_item(
                TableName="ceiling",
                Item={"pk": {"S": f"c{i // PER_CHANNEL}"}, "sk": {"S": f"{i:08d}"}, "version": {"S": "v"}},
                ConditionExpression="attribute_not_exists(pk) OR #v < :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": {"S": "w"}},
            )

        out["moto: conditional put_item"] = rate(put)
    cosmos = CosmosEmulator(host="127.0.0.1").start()
    try:
        container = ensure_container(cosmos.client(), "ceiling", "items")
        stamp = time.time_ns()

        def create(i: int) -> None:
            container.create_item({"id": f"c{stamp}-{i}", "channel": f"c{i // PER_CHANNEL}", "text": "x"})

        def read(i: int) -> None:
            container.read_item(f"c{stamp}-{i}", partition_key=f"c{i // PER_CHANNEL}")

        out["cosmosdb-server: create_item"] = rate(create)
        out["cosmosdb-server: read_item"] = rate(read)
    finally:
        cosmos.stop()
    return out


def sweep(rates: Sequence[float]) -> dict[tuple[str, str], list[Window]]:
    from runtime.mesh import Mesh

    results: dict[tuple[str, str], list[Window]] = {("aws", "azure"): [], ("azure", "aws"): []}
    env = {"OVERCAST_LOG_LEVEL": "WARNING", "OVERCAST_AUTH_DISABLED": "true"}
    for n, rate in enumerate(rates):
        with Mesh.start(["aws", "azure"], env=env) as mesh:
            pids = _pids(mesh)
            for source, target in results:
                prefix = f"lag-{n}-{source}"
                window = measure(mesh.cloud(source).url, mesh.cloud(target).url, prefix, rate, pids)
                results[(source, target)].append(window)
                print(f"   {source} → {target} at {rate:g}/s: {_line(window)}", flush=True)
            documents, query_ms = feed_query_ms(mesh.cloud("azure"))
            feed_queries.append((rate, documents, query_ms))
            print(
                f"   cosmosdb-server after {rate:g}/s: {documents:,} documents, one change-feed poll query"
                f" {query_ms:.0f} ms (a full scan: every query reads every document)",
                flush=True,
            )
    return results


def _ms(value: float, open_: bool = False) -> str:
    if math.isnan(value):
        return "—"
    return (">" if open_ else "") + f"{value:,.0f}"


def _line(w: Window) -> str:
    cpu = ", ".join(f"{k} {v:.0%}" for k, v in sorted(w.cpu.items(), key=lambda kv: -kv[1]))
    return (
        f"p50 {_ms(w.p50, w.p50_open)} ms, p99 {_ms(w.p99, w.p99_open)} ms, unread {w.unread}/{w.writes}"
        f" (sent {w.achieved_rate:g}/s; {w.errors} write errors); CPU of one core: {cpu}"
    )


def run(report: Section) -> None:
    rates = _rates()
    report.method(
        f"per rate a fresh aws+azure mesh; per direction an open-loop writer for {WINDOW_S:g} s "
        f"(after {WARMUP_S:g} s warm-up), a point-read reader every {POLL_S * 1000:.0f} ms; lag = 201 in the "
        f"source → first read in the target; unread = not readable {GRACE_S:g} s after the window"
    )
    results = sweep(rates)
    print(f"   {'direction':<15}{'rate/s':>7}{'sent/s':>8}{'p50 ms':>9}{'p99 ms':>10}{'unread':>13}", flush=True)
    for (source, target), windows in results.items():
        name = f"{source} → {target}"
        for w in windows:
            row = (
                f"   {name:<15}{w.rate:>7g}{w.achieved_rate:>8g}{_ms(w.p50, w.p50_open):>9}{_ms(w.p99, w.p99_open):>10}"
            )
            print(f"{row}{f'{w.unread}/{w.writes}':>13}", flush=True)
    for (source, target), windows in results.items():
        name = f"{source} → {target}"
        for w in windows:
            label = f"{name} at {w.rate:g}/s"
            report.figure(f"{label}: lag p50", round(w.p50, 1), "ms")
            report.figure(f"{label}: lag p99", round(w.p99, 1), "ms", target="< 1000 ms")
            report.figure(f"{label}: unread after {GRACE_S:g} s", w.unread, "", target="0")
            busiest = max(w.cpu.items(), key=lambda kv: kv[1], default=None)
            if busiest is not None:
                report.figure(f"{label}: busiest process ({busiest[0]})", busiest[1], "cores")
        grows = next((w.rate for w in windows if w.grows), None)
        if grows is None:
            report.figure(f"{name}: lag grows from (none up to {windows[-1].rate:g}/s)", 0.0, "writes/s")
        else:
            report.figure(f"{name}: lag grows from", grows, "writes/s", target="> 200")
    for rate, documents, query_ms in feed_queries:
        report.figure(
            f"cosmosdb-server feed poll query at {documents:,} documents (after {rate:g}/s)", round(query_ms), "ms"
        )
    report.method(
        "emulator ceilings: the production SDK clients on 8 threads straight at a fresh emulator, no project code"
    )
    for name, value in emulator_ceilings().items():
        report.figure(f"{name} (8 threads)", round(value), "ops/s")
    report.method(
        "project code alone: one thread, in-memory store, a transport that answers at once (no emulator, no network)"
    )
    for name, value in own_code_capacity().items():
        report.figure(f"our code: {name}", round(value), "records/s")
    report.figure(f"load average (1 min) on {os.cpu_count()} CPUs", round(os.getloadavg()[0], 2), "")


# -- the project's own code, without any emulator -------------------------------------------------


def own_code_capacity(batches_n: int = 20, size: int = 100) -> dict[str, float]:
    """Records per second through the project's code alone, one thread, no emulator and no
    network: the receiver (signed ``POST /replication/batch`` → verify → decode → apply with
    the 8 apply workers, on the in-memory store) and each sender (``handlers.aws.changes`` on a
    Lambda Streams event, ``handlers.azure.changes`` on a change-feed ``DocumentList``: read the
    records, batch, encode, sign, "push" to a transport that answers 200 at once)."""
    import handlers.aws
    import handlers.azure
    from adapters.aws.store import message_to_item
    from adapters.azure.events import to_documents
    from core.bootstrap import bootstrap
    from core.http import Request
    from core.model import HybridLogicalClock, Message, Version, new_message_id
    from core.replication import BATCH_PATH, encode_batch, signed_headers
    from core.settings import Settings
    from tests.fakes import InMemoryMessageStore, RecordingTransport

    secret = "bench-secret-bench-secret-bench-secret"

    def app(origin: str, peer: str) -> Any:
        env = {
            "OVERCAST_ORIGIN": origin,
            "OVERCAST_PROVIDER": origin,
            "OVERCAST_PEERS": json.dumps([{"name": peer, "url": f"http://127.0.0.1:9/{peer}"}]),
            "OVERCAST_REPLICATION_SECRET": secret,
            "OVERCAST_AUTH_DISABLED": "true",
            "OVERCAST_LOG_LEVEL": "ERROR",
            "OVERCAST_METRICS_FORMAT": "off",
        }
        return bootstrap(
            Settings.from_env(env), InMemoryMessageStore(), RecordingTransport(), HybridLogicalClock(origin)
        )

    def messages(origin: str, k: int) -> list[Message]:
        now = int(time.time() * 1000)
        return [
            Message(f"cap-{k}-{i // PER_CHANNEL}", new_message_id(now), "bench", f"m{i}", now, Version(now, i, origin))
            for i in range(size)
        ]

    out: dict[str, float] = {}
    receiver = app("azure", "aws")
    bodies = [encode_batch("aws", messages("aws", k)) for k in range(batches_n)]
    started = time.perf_counter()
    for body in bodies:
        headers = signed_headers("aws", secret, int(time.time()), body)
        response = receiver.app.handle(Request("POST", BATCH_PATH, {}, headers, body))
        assert response.status == 200, response.body
    out["receiver (verify, decode, apply)"] = batches_n * size / (time.perf_counter() - started)

    aws_app = app("aws", "azure")
    handlers.aws.overcast.install(aws_app)
    events = [
        {
            "Records": [
                {
                    "eventID": f"{k}-{i}",
                    "eventName": "INSERT",
                    "eventSource": "aws:dynamodb",
                    "dynamodb": {"NewImage": message_to_item(m), "SequenceNumber": f"{k:010d}{i:010d}"},
                }
                for i, m in enumerate(messages("aws", k))
            ]
        }
        for k in range(batches_n)
    ]
    started = time.perf_counter()
    for event in events:
        assert handlers.aws.changes(event) == {"batchItemFailures": []}
    out["aws sender (handlers.aws.changes)"] = batches_n * size / (time.perf_counter() - started)
    assert len(aws_app.replicator.transport.calls) == batches_n  # every record was pushed
    handlers.aws.overcast.install(None)

    azure_app = app("azure", "aws")
    handlers.azure.install(azure_app)
    feeds = [to_documents([m.to_record() for m in messages("azure", k)]) for k in range(batches_n)]
    from runtime.azure import LocalContext

    started = time.perf_counter()
    for documents in feeds:
        handlers.azure.changes(documents, LocalContext("changes"))
    out["azure sender (handlers.azure.changes)"] = batches_n * size / (time.perf_counter() - started)
    assert len(azure_app.replicator.transport.calls) == batches_n
    handlers.azure.install(None)
    return out

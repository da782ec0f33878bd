"""Anti-entropy scaling: what one full pass (``window_s=0``) costs as the store grows, for
identical stores and for one difference, and how many passes repairing everything takes.

Two clouds in one process (tests.property.inprocess: each an Overcast over its own store, the
peer reached through its HttpApp with the same signed bytes HTTP would carry). Per pass:
requests sent to the peer, items read from both stores (records, or kept digest rows), read
units where the store reports them (DynamoDB Local), and wall time.

* SQLite, 1k / 10k / 100k / 1M records: digests kept by triggers, so the tree is read, not
  computed. The first pass of a peer on an older release (no tree route, the full digest as
  before) is measured beside it up to 100k, for contrast.
* DynamoDB Local, 1k / 10k / 100k: the digest tree kept in the table (adapters/aws/digests.py);
  at 1k also without it, where each tree request is a scan of the store.
* Passes for 10 M records: an empty peer backfilled from a 30k store in passes of a small
  budget gives records repaired per second of pass; 10 M / (that x 240 s) is the number of
  scheduled passes a full backfill takes, checked against the real pass count of the 30k run.

    python -m bench anti_entropy
    OVERCAST_BENCH_AE_MAX=100000 python -m bench anti_entropy   # stop the SQLite sizes at 100k
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import Section

SIZES = (1_000, 10_000, 100_000, 1_000_000)
LEGACY_UP_TO = 100_000
DYNAMODB_SIZES = (1_000, 10_000, 100_000)  # loading is the limit: ~100k records fit a bench run
DYNAMODB_SCAN_UP_TO = 1_000  # scanning's cost beside the kept tree's (each tree request is a scan)
BUDGET_S = 240.0  # the scheduled pass's budget (handlers' default)
BACKFILL_RECORDS = 30_000
BACKFILL_BUDGET_S = 2.0
TARGET = 10_000_000
NOW_MS = 1_760_000_000_000


def run(report: Section) -> None:
    limit = int(os.environ.get("OVERCAST_BENCH_AE_MAX", str(SIZES[-1])))
    report.method(
        "one full pass (window_s=0) between two in-process clouds over signed routes; items = records or "
        "digest rows read from both stores; pass = pull phase + push phase"
    )
    quiet = logging.getLogger("overcast")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # in-process clouds without auth: no log lines (restored after)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ae-") as scratch:
            _sqlite_scaling(report, Path(scratch), [n for n in SIZES if n <= limit])
            rate = _backfill(report, Path(scratch))
        _passes_for(report, rate)
        _dynamodb_scaling(report, limit)
    finally:
        quiet.setLevel(level)


# -- SQLite ----------------------------------------------------------------------------------


def _sqlite_scaling(report: Section, scratch: Path, sizes: list[int]) -> None:
    from adapters.local.store import SqliteMessageStore

    base = scratch / "base.sqlite"
    SqliteMessageStore(base).close()
    held = 0
    for size in sizes:
        _bulk_load(base, held, size)
        held = size
        a_path, b_path = scratch / f"a-{size}.sqlite", scratch / f"b-{size}.sqlite"
        shutil.copy(base, a_path)
        shutil.copy(base, b_path)
        stores = {"aws": SqliteMessageStore(a_path), "azure": SqliteMessageStore(b_path)}
        try:
            _measure(report, f"sqlite {size:>9,}", stores, legacy=size <= LEGACY_UP_TO)
        finally:
            for store in stores.values():
                store.close()
            a_path.unlink()
            b_path.unlink()


def _bulk_load(path: Path, start: int, stop: int) -> None:
    """Records [start, stop) in one transaction, through the store's own columns and triggers."""
    from adapters.local import store as sqlite_store

    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN")
    insert = f"INSERT INTO messages ({sqlite_store._WRITE_COLUMNS}) VALUES ({sqlite_store._PLACEHOLDERS})"
    for first in range(start, stop, 10_000):
        db.executemany(insert, (sqlite_store._row(_record(i)) for i in range(first, min(first + 10_000, stop))))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _record(i: int, origin: str = "aws") -> Any:
    """Record ``i``, the same on every call (ids derived from ``i``, not random)."""
    from core.model import Message, Version, idempotent_message_id

    created, channel = NOW_MS - 10_000_000 + i, f"c{i % 64}"
    message_id = idempotent_message_id(channel, f"bench-{i}")
    return Message(channel, message_id, "ada", f"message {i}", created, Version(created, 0, origin))


# -- one store pair, identical then one difference -------------------------------------------


def _measure(report: Section, label: str, stores: dict[str, Any], *, legacy: bool, extra: int = 10**8) -> None:
    """``extra``: the number of the record made for the difference (one not yet in the stores)."""

    clouds = _mesh(stores)
    same = _pass(clouds)
    _figures(report, f"{label} identical", same)
    stores["aws"].create(_record(extra))  # one record the peer lacks
    one = _pass(clouds)
    _figures(report, f"{label} one difference", one)
    if one["pushed"] != 1 or not one["ok"]:
        raise RuntimeError(f"{label}: one difference was not repaired: {one}")
    if legacy:
        stores["aws"].create(_record(extra + 1))
        old = _pass(clouds, without_tree=True)
        _figures(report, f"{label} one diff, full digest (no tree)", old)


def _pass(clouds: dict[str, Any], *, without_tree: bool = False) -> dict[str, Any]:
    from core import anti_entropy
    from core.http import Request, Response
    from core.replication import TREE_PATH

    peer = clouds["azure"]
    handle = peer.app.handle
    if without_tree:  # a peer on a release without the tree route

        def older(request: Request) -> Response:
            if request.path == TREE_PATH:
                return Response.json(404, {"error": {"code": "not_found", "message": "no route"}})
            return handle(request)

        peer.app.handle = older
    stores = [clouds["aws"].store, peer.store]
    items = [s.items_read for s in stores]
    units = [s.read_units for s in stores]
    started = time.perf_counter()
    try:
        report = anti_entropy.run(clouds["aws"], window_s=0, budget_s=3600, now_ms=lambda: NOW_MS)
    finally:
        peer.app.handle = handle
    seconds = time.perf_counter() - started
    result = report.peers[0]
    return {
        "ok": report.ok,
        "requests": result.requests,
        "items": sum(s.items_read for s in stores) - sum(items),
        "units": sum(s.read_units for s in stores) - sum(units),
        "seconds": seconds,
        "pushed": result.pushed,
        "pulled": result.pulled,
    }


def _figures(report: Section, label: str, figures: dict[str, Any]) -> None:
    report.figure(f"{label}: requests", figures["requests"], "")
    report.figure(f"{label}: items read", figures["items"], "")
    if figures["units"]:
        report.figure(f"{label}: read units", round(figures["units"], 1), "RCU")
    report.figure(f"{label}: wall", round(figures["seconds"] * 1000, 1), "ms")


# -- backfill: records repaired per second of budget, passes for 10 M ------------------------


def _backfill(report: Section, scratch: Path) -> float:
    from adapters.local.store import SqliteMessageStore
    from core import anti_entropy

    source = scratch / "backfill.sqlite"
    SqliteMessageStore(source).close()
    _bulk_load(source, 0, BACKFILL_RECORDS)
    stores = {"aws": SqliteMessageStore(source), "azure": SqliteMessageStore(scratch / "empty.sqlite")}
    clouds = _mesh(stores)
    passes, repaired, spent, start = 0, 0, 0.0, 0
    try:
        while True:
            passes += 1
            started = time.perf_counter()
            result = anti_entropy.run(
                clouds["aws"], window_s=0, budget_s=BACKFILL_BUDGET_S, start_leaf=start, now_ms=lambda: NOW_MS
            )
            spent += time.perf_counter() - started
            peer = result.peers[0]
            repaired += peer.pushed
            if result.ok or peer.errors or passes > 10_000:
                break
            start = peer.resume_leaf or 0
    finally:
        for store in stores.values():
            store.close()
    if repaired != BACKFILL_RECORDS:
        raise RuntimeError(f"backfill repaired {repaired} of {BACKFILL_RECORDS}")
    rate = repaired / spent
    report.method(
        f"backfill: {BACKFILL_RECORDS:,} records into an empty SQLite peer, passes of {BACKFILL_BUDGET_S:g} s budget "
        "resumed from resume_leaf until ok"
    )
    report.figure(f"backfill {BACKFILL_RECORDS:,}: passes at {BACKFILL_BUDGET_S:g} s budget", passes, "")
    report.figure(
        f"backfill {BACKFILL_RECORDS:,}: passes predicted from the rate",
        math.ceil(BACKFILL_RECORDS / (rate * BACKFILL_BUDGET_S)),
        "",
    )
    report.figure("backfill rate (pushed records per second of pass)", round(rate), "rec/s")
    return rate


def _passes_for(report: Section, rate: float) -> None:
    from core import digest

    report.method(
        f"simulated {TARGET:,}: backfill passes = records / (rate x {BUDGET_S:g} s); tree levels opened "
        f"until a node holds <= {_list_below()} records"
    )
    report.figure(
        f"{TARGET:,} records, empty peer: scheduled passes ({BUDGET_S:g} s each)",
        math.ceil(TARGET / (rate * BUDGET_S)),
        "",
        "bounded",
    )
    report.figure(f"{TARGET:,} records, identical: requests per pass", 1, "")
    per_node = TARGET
    levels = 0
    while per_node > _list_below() and levels < digest.LEAF_DEPTH:
        per_node //= digest.FANOUT
        levels += 1
    # per phase: one tree request per level down to the listed node, one listing, one fetch or batch
    report.figure(f"{TARGET:,} records, one difference: requests per pass", 2 * (levels + 2), "")
    report.figure(f"{TARGET:,} records, one difference: records listed per side", max(per_node, 1), "")


def _list_below() -> int:
    from core import anti_entropy

    return anti_entropy.LIST_BELOW


# -- DynamoDB Local ----------------------------------------------------------------------------


def _dynamodb_scaling(report: Section, limit: int) -> None:
    from adapters.aws.digests import scan_records
    from adapters.aws.store import DynamoDBMessageStore, make_client
    from adapters.aws.table import create_table, message_to_item
    from emulators.dynamodb_local import DynamoDBLocal, unavailable_reason
    from emulators.moto import EMULATOR_CREDENTIALS, EMULATOR_REGION

    reason = unavailable_reason()
    if reason:
        print(f"   DynamoDB Local: not measured ({reason})", flush=True)
        return
    report.method(
        "DynamoDB Local: digest tree kept in the table (adapters/aws/digests.py), loaded by its rebuild and then "
        "kept as the stream consumer keeps it (note_changes after each write); scanning shown beside it at "
        f"{DYNAMODB_SCAN_UP_TO:,}; read units from ConsumedCapacity"
    )

    class FollowingItsStream(DynamoDBMessageStore):
        """Each write noted at once, as handlers.aws.changes notes it a moment later."""

        def _create(self, message: Any) -> None:
            super()._create(message)
            self.note_changes([message])

        def _put_if_newer(self, message: Any) -> bool:
            wrote = super()._put_if_newer(message)
            if wrote:
                self.note_changes([message])
            return wrote

    with DynamoDBLocal() as server:
        client = make_client(EMULATOR_REGION, server.url, **EMULATOR_CREDENTIALS)
        held = 0
        for name in ("ae-a", "ae-b"):
            create_table(client, name)
        for size in [n for n in DYNAMODB_SIZES if n <= limit]:
            started = time.perf_counter()
            for name in ("ae-a", "ae-b"):
                _batch_put(client, name, [message_to_item(_record(i)) for i in range(held, size)])
            loaded = time.perf_counter() - started
            stores = {n: FollowingItsStream(client, t, digests="kept") for n, t in (("aws", "ae-a"), ("azure", "ae-b"))}
            started = time.perf_counter()
            for store in stores.values():
                store.tree.rebuild(scan_records(store))
            print(
                f"   loaded {size - held:,} records into each table in {loaded:.1f} s, "
                f"trees rebuilt in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            held = size
            if size <= DYNAMODB_SCAN_UP_TO:
                scanning = {"aws": DynamoDBMessageStore(client, "ae-a"), "azure": DynamoDBMessageStore(client, "ae-b")}
                _figures(report, f"dynamodb {size:>9,} identical, digests by scanning", _pass(_mesh(scanning)))
            # Both tables keep the repaired differences: the next size starts identical again.
            _measure(report, f"dynamodb {size:>9,}", stores, legacy=False, extra=10**8 + size)


def _mesh(stores: dict[str, Any]) -> dict[str, Any]:
    """Two in-process clouds over ``stores``, silent: building one sets the log level its settings
    name, and its metric lines would bury the figures."""
    from tests.property.inprocess import mesh

    logging.disable(logging.ERROR)  # "auth not configured": these clouds take no client requests
    try:
        clouds = mesh(stores, {n: (lambda: NOW_MS) for n in stores})[0]
    finally:
        logging.disable(logging.NOTSET)
    logging.getLogger("overcast").setLevel(logging.CRITICAL)
    for cloud in clouds.values():
        cloud.status.metrics._write = lambda line: None
    return clouds


def _batch_put(client: Any, table: str, items: list[dict[str, Any]]) -> None:
    for first in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": item}} for item in items[first : first + 25]]}
        while request:
            answer = client.batch_write_item(RequestItems=request)
            request = answer.get("UnprocessedItems") or {}

"""Check a nemesis history against the final contents of every store.

A history is JSON lines, one per event, in the order they happened::

    {"index": 0, "time": 0.12, "process": "c1", "type": "invoke", "f": "post", "cloud": "aws",
     "channel": "n1", "key": null, "value": "c1-0"}
    {"index": 1, "time": 0.15, "process": "c1", "type": "ok", "f": "post", "cloud": "aws",
     "channel": "n1", "key": null, "value": "c1-0", "id": "01k...", "version": "0001764...-000000-aws"}

``type`` is ``invoke`` (the client sent it), ``ok`` (acknowledged: 201 / 204), ``fail`` (known not
to have happened: a 4xx the service answers before writing) or ``info`` (indeterminate: timeout,
connection error, 5xx — it may or may not have happened). ``f`` is ``post``, ``delete`` or
``read``; reads are the watcher's polls of a peer after an acknowledged write (``watch``: the
index of that ``ok``; ``visible``: whether the peer showed it). The nemesis logs its own events
with ``process: "nemesis"`` and the run logs ``f: "healed"`` when every fault was lifted and one
anti-entropy pass ran.

The final state maps each cloud to its store's records (``Message.to_record()``, tombstones
included). The checker asserts, for every cloud's store:

* **lost**: every acknowledged post is present with its version, or superseded by a higher one;
* **resurrected**: every acknowledged delete left a tombstone (the workload deletes only
  messages posted without an Idempotency-Key, so nothing may legitimately bring one back);
* **duplicate**: one message per Idempotency-Key (every acknowledgement names the same id, and
  one live record carries that key's value);
* **phantom**: every live record's text is a value some client tried to write;
* **divergent**: all stores identical after the heal.

It reports convergence time (acknowledgement → visible on every other cloud, from the watcher's
reads) as percentiles, and how many writes reached a peer only through the heal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Key = tuple[str, str]  # (channel, message id)


@dataclass(frozen=True)
class Anomaly:
    kind: str  # lost | resurrected | duplicate | phantom | divergent
    cloud: str
    key: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "cloud": self.cloud, "key": self.key, "detail": self.detail}


@dataclass
class CheckReport:
    anomalies: list[Anomaly] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    convergence_s: dict[str, float | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.anomalies

    def kinds(self) -> set[str]:
        return {a.kind for a in self.anomalies}

    def to_dict(self, show: int = 20) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "anomalies": len(self.anomalies),
            "anomaly_kinds": sorted(self.kinds()),
            "examples": [a.to_dict() for a in self.anomalies[:show]],
            "counts": self.counts,
            "convergence_s": self.convergence_s,
        }


def read_history(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def read_final(path: str | Path) -> dict[str, list[dict[str, Any]]]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    clouds: dict[str, list[dict[str, Any]]] = data["clouds"]
    return clouds


def percentiles(samples: Sequence[float]) -> dict[str, float | None]:
    """Nearest-rank p50 / p90 / p99 / max (None for no samples)."""
    ordered = sorted(samples)
    if not ordered:
        return {"p50": None, "p90": None, "p99": None, "max": None}

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 3)

    return {"p50": rank(0.5), "p90": rank(0.9), "p99": rank(0.99), "max": round(ordered[-1], 3)}


def check(history: Iterable[Mapping[str, Any]], final: Mapping[str, Sequence[Mapping[str, Any]]]) -> CheckReport:
    events = list(history)
    report = CheckReport()
    stores = {cloud: {(r["channel"], r["id"]): r for r in records} for cloud, records in final.items()}
    oks = [e for e in events if e.get("type") == "ok" and e.get("process") != "nemesis"]
    posts = [e for e in oks if e["f"] == "post"]
    deletes = [e for e in oks if e["f"] == "delete"]
    tried_values = {e["value"] for e in events if e.get("f") == "post" and e.get("type") == "invoke"}

    for cloud, store in stores.items():
        _check_posts(report, cloud, store, posts)
        _check_deletes(report, cloud, store, deletes)
        _check_idempotency(report, cloud, store, posts)
        for (channel, message_id), record in store.items():
            if not record.get("deleted") and record.get("text") not in tried_values:
                report.anomalies.append(
                    Anomaly("phantom", cloud, f"{channel}/{message_id}", f"text {record.get('text')!r} nobody wrote")
                )
    _check_identical(report, stores)
    _convergence(report, events, oks, len(stores))
    report.counts.update(
        {
            "events": len(events),
            "acknowledged_posts": len(posts),
            "acknowledged_deletes": len(deletes),
            "indeterminate": sum(1 for e in events if e.get("type") == "info" and e.get("process") != "nemesis"),
            "failed": sum(1 for e in events if e.get("type") == "fail"),
            "nemesis_events": sum(1 for e in events if e.get("process") == "nemesis"),
            "records": max((len(s) for s in stores.values()), default=0),
        }
    )
    return report


def _check_posts(report: CheckReport, cloud: str, store: Mapping[Key, Mapping[str, Any]], posts: list[Any]) -> None:
    for post in posts:
        key = (post["channel"], post["id"])
        name = "/".join(key)
        record = store.get(key)
        if record is None:
            report.anomalies.append(Anomaly("lost", cloud, name, f"acknowledged post {post['version']} is missing"))
        elif record["version"] < post["version"]:
            report.anomalies.append(
                Anomaly("lost", cloud, name, f"acknowledged {post['version']} but the store holds {record['version']}")
            )
        elif record["version"] == post["version"] and (record.get("deleted") or record.get("text") != post["value"]):
            report.anomalies.append(
                Anomaly("lost", cloud, name, f"version {post['version']} holds other content than was acknowledged")
            )


def _check_deletes(report: CheckReport, cloud: str, store: Mapping[Key, Mapping[str, Any]], deletes: list[Any]) -> None:
    for delete in deletes:
        key = (delete["channel"], delete["id"])
        record = store.get(key)
        if record is None:
            report.anomalies.append(Anomaly("lost", cloud, "/".join(key), "acknowledged delete left no tombstone"))
        elif not record.get("deleted"):
            report.anomalies.append(
                Anomaly("resurrected", cloud, "/".join(key), f"deleted, but live again at {record['version']}")
            )


def _check_idempotency(
    report: CheckReport, cloud: str, store: Mapping[Key, Mapping[str, Any]], posts: list[Any]
) -> None:
    by_key: dict[tuple[str, str], set[str]] = {}
    values: dict[tuple[str, str], str] = {}
    for post in posts:
        if post.get("key"):
            by_key.setdefault((post["channel"], post["key"]), set()).add(post["id"])
            values[(post["channel"], post["key"])] = post["value"]
    for (channel, idem), ids in by_key.items():
        if len(ids) > 1:
            report.anomalies.append(
                Anomaly("duplicate", cloud, f"{channel}/{idem}", f"acknowledged as {len(ids)} ids: {sorted(ids)}")
            )
        live = [
            k
            for k, r in store.items()
            if k[0] == channel and not r.get("deleted") and r.get("text") == values[(channel, idem)]
        ]
        if len(live) > 1:
            report.anomalies.append(
                Anomaly("duplicate", cloud, f"{channel}/{idem}", f"{len(live)} live records carry its value")
            )


def _check_identical(report: CheckReport, stores: Mapping[str, Mapping[Key, Mapping[str, Any]]]) -> None:
    names = sorted(stores)
    if len(names) < 2:
        return
    keys = set().union(*(set(s) for s in stores.values()))
    for key in sorted(keys):
        seen = {name: _comparable(stores[name].get(key)) for name in names}
        if len({json.dumps(v, sort_keys=True) for v in seen.values()}) > 1:
            versions = {n: (v or {}).get("version", "absent") for n, v in seen.items()}
            report.anomalies.append(Anomaly("divergent", ",".join(names), "/".join(key), f"versions {versions}"))


def _comparable(record: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if record is None else dict(record)


def _convergence(report: CheckReport, events: list[Any], oks: list[Any], clouds: int) -> None:
    """Acknowledgement → visible on every other cloud, from the watcher's reads of each write."""
    healed = next((e["time"] for e in events if e.get("f") == "healed"), None)
    first_seen: dict[int, dict[str, float]] = {}
    for read in events:
        if read.get("f") == "read" and read.get("type") == "ok" and read.get("visible"):
            seen = first_seen.setdefault(read["watch"], {})
            seen.setdefault(read["cloud"], read["time"])
    samples: list[float] = []
    by_heal = 0
    for ack in oks:
        if ack["f"] not in ("post", "delete"):
            continue
        seen = first_seen.get(ack["index"], {})
        if len(seen) >= clouds - 1:
            samples.append(max(seen.values()) - ack["time"])
        else:
            by_heal += 1
            if healed is not None:
                samples.append(max(healed - ack["time"], 0.0))
    report.convergence_s = percentiles(samples)
    report.counts["converged_by_streams"] = len(samples) - (by_heal if healed is not None else 0)
    report.counts["converged_by_heal"] = by_heal

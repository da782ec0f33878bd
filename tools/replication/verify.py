"""Do two or three stores hold identical content? Counts, a digest, and the first differences.

The digest is SHA-256 over every record (tombstones included) in canonical form — the record's
JSON with sorted keys, one per line — ordered by (channel, id). Equal digests mean equal
content, whatever each store's native layout.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.ports import MessageStore
from core.replication import iter_changes

Key = tuple[str, str]


def canonical(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def snapshot(store: MessageStore) -> dict[Key, dict[str, Any]]:
    """Every record the store holds, keyed by (channel, id)."""
    return {(m.channel, m.id): m.to_record() for m in iter_changes(store, None, page_size=1000)}


@dataclass
class StoreSummary:
    name: str
    records: int
    live: int
    tombstones: int
    digest: str


@dataclass
class Difference:
    key: Key
    records: dict[str, dict[str, Any] | None]  # store name → record, None where missing


@dataclass
class VerifyReport:
    stores: list[StoreSummary]
    differing: int
    differences: list[Difference] = field(default_factory=list)  # the first N, in key order

    @property
    def identical(self) -> bool:
        return self.differing == 0 and len({s.digest for s in self.stores}) == 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "stores": [s.__dict__ for s in self.stores],
            "differing": self.differing,
            "differences": [{"channel": d.key[0], "id": d.key[1], "records": d.records} for d in self.differences],
        }

    def render(self) -> str:
        lines = [f"{'store':<12} {'records':>8} {'live':>8} {'tombstones':>10}  sha256"]
        lines += [f"{s.name:<12} {s.records:>8} {s.live:>8} {s.tombstones:>10}  {s.digest}" for s in self.stores]
        if self.identical:
            lines.append("IDENTICAL: every store holds the same records")
            return "\n".join(lines)
        lines.append(f"DIFFERENT: {self.differing} record(s) differ; first {len(self.differences)}:")
        names = [s.name for s in self.stores]
        for diff in self.differences:
            lines.append(f"  {diff.key[0]}/{diff.key[1]}")
            for name in names:
                lines.append(f"    {name:<12} {_brief(diff.records.get(name))}")
        return "\n".join(lines)


def _brief(record: Mapping[str, Any] | None) -> str:
    if record is None:
        return "(missing)"
    state = "tombstone" if record.get("deleted") else f"{record.get('author')!s}: {str(record.get('text'))[:40]!r}"
    return f"{record.get('version')}  {state}"


def compare(snapshots: Mapping[str, Mapping[Key, dict[str, Any]]], show: int = 10) -> VerifyReport:
    summaries = []
    for name, records in snapshots.items():
        digest = hashlib.sha256()
        for key in sorted(records):
            digest.update(canonical(records[key]).encode() + b"\n")
        tombstones = sum(1 for r in records.values() if r.get("deleted"))
        summaries.append(StoreSummary(name, len(records), len(records) - tombstones, tombstones, digest.hexdigest()))
    keys = sorted(set().union(*(set(r) for r in snapshots.values()))) if snapshots else []
    differing = 0
    differences: list[Difference] = []
    for key in keys:
        seen = {name: records.get(key) for name, records in snapshots.items()}
        texts = {canonical(r) if r is not None else "" for r in seen.values()}
        if len(texts) > 1:
            differing += 1
            if len(differences) < show:
                differences.append(Difference(key, seen))
    return VerifyReport(summaries, differing, differences)


def verify(stores: Mapping[str, MessageStore], show: int = 10) -> VerifyReport:
    """Compare the full content of named stores (reads every record of each)."""
    return compare({name: snapshot(store) for name, store in stores.items()}, show)


@dataclass
class AckReport:
    """Acknowledged writes held against a store's content."""

    acknowledged: int
    missing: list[dict[str, Any]]  # acked but absent, or present only with an older version
    unexpected: list[Key]  # held but never acknowledged (a duplicate or a phantom)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unexpected

    def render(self) -> str:
        lines = [
            f"acknowledged writes: {self.acknowledged}; missing: {len(self.missing)}; "
            f"unacknowledged records (duplicates): {len(self.unexpected)}"
        ]
        lines += [f"  missing {a['channel']}/{a['id']} at {a['version']}" for a in self.missing[:10]]
        lines += [f"  unexpected {c}/{i}" for c, i in self.unexpected[:10]]
        return "\n".join(lines)


def check_acks(records: Mapping[Key, Mapping[str, Any]], acks: Iterable[Mapping[str, Any]]) -> AckReport:
    """Every acknowledged write (``{"channel", "id", "version"}``, a post, edit or delete) must be
    present or superseded by a newer version; every record held must have been acknowledged."""
    acked: dict[Key, list[str]] = {}
    for ack in acks:
        acked.setdefault((str(ack["channel"]), str(ack["id"])), []).append(str(ack["version"]))
    missing = []
    for key, versions in acked.items():
        held = records.get(key)
        for version in versions:
            if held is None or str(held["version"]) < version:
                missing.append({"channel": key[0], "id": key[1], "version": version})
    unexpected = sorted(set(records) - set(acked))
    return AckReport(sum(map(len, acked.values())), missing, unexpected)

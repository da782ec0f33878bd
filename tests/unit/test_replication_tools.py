"""tools.replication: the verify command (counts, digest, first differences, acks) and its store
registry, which imports a vendor SDK only for that vendor's spec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.local.store import SqliteMessageStore
from core.errors import ConfigurationError
from core.model import Message, Version, new_message_id
from tests.fakes import InMemoryMessageStore
from tools.replication.__main__ import main
from tools.replication.stores import OPENERS, STORE_CLASSES, load, open_store
from tools.replication.verify import check_acks, snapshot, verify

BASE = 1_760_000_000_000


def message(i: int, origin: str = "aws") -> Message:
    return Message("london", new_message_id(BASE + i), "ada", f"text {i}", BASE + i, Version(BASE + i, 0, origin))


def test_identical_stores_have_equal_counts_and_digests() -> None:
    a, b = InMemoryMessageStore(), InMemoryMessageStore()
    messages = [message(i) for i in range(5)]
    for m in messages:
        a.create(m)
    for m in reversed(messages):  # insertion order must not matter
        b.create(m)
    report = verify({"aws": a, "azure": b})
    assert report.identical and report.differing == 0
    assert [s.records for s in report.stores] == [5, 5] and report.stores[0].digest == report.stores[1].digest
    assert "IDENTICAL" in report.render()


def test_differences_are_counted_and_the_first_shown_side_by_side() -> None:
    a, b, c = InMemoryMessageStore(), InMemoryMessageStore(), InMemoryMessageStore()
    messages = [message(i) for i in range(6)]
    for store in (a, b, c):
        for m in messages:
            store.create(m)
    b.put_if_newer(messages[1].tombstone(Version(BASE + 100, 0, "azure")))
    c.put_if_newer(Message(**{**messages[2].__dict__, "text": "edited", "version": Version(BASE + 50, 0, "gcp")}))
    extra = message(99)
    a.create(extra)
    report = verify({"aws": a, "azure": b, "gcp": c}, show=2)
    assert not report.identical and report.differing == 3 and len(report.differences) == 2
    assert len({s.digest for s in report.stores}) == 3
    text = report.render()
    assert "DIFFERENT: 3" in text and "tombstone" in text
    shown = {d.key for d in report.differences}
    assert shown == set(sorted({(m.channel, m.id) for m in (messages[1], messages[2], extra)})[:2])


def test_acks_missing_superseded_and_unexpected() -> None:
    store = InMemoryMessageStore()
    kept, superseded, lost = message(1), message(2), message(3)
    store.create(kept)
    store.create(superseded)
    store.put_if_newer(superseded.tombstone(Version(BASE + 100, 0, "azure")))
    phantom = message(4)
    store.create(phantom)
    acks = [{"channel": m.channel, "id": m.id, "version": str(m.version)} for m in (kept, superseded, lost)]
    report = check_acks(snapshot(store), acks)
    assert [a["id"] for a in report.missing] == [lost.id]
    assert report.unexpected == [("london", phantom.id)] and not report.ok


def write_sqlite(path: Path, messages: list[Message]) -> str:
    store = SqliteMessageStore(path)
    for m in messages:
        store.put_if_newer(m)
    store.close()
    return f"sqlite://{path}"


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    messages = [message(i) for i in range(4)]
    same1 = write_sqlite(tmp_path / "a.sqlite", messages)
    same2 = write_sqlite(tmp_path / "b.sqlite", messages)
    short = write_sqlite(tmp_path / "c.sqlite", messages[:3])
    assert main(["verify", same1, same2]) == 0
    assert main(["verify", same1, same2, short, "--json"]) == 1
    out = json.loads(capsys.readouterr().out.split("IDENTICAL: every store holds the same records\n")[-1])
    assert out["identical"] is False and out["differing"] == 1
    assert out["differences"][0]["records"]["store3"] is None
    assert main(["verify", same1, f"sqlite://{tmp_path / 'missing.sqlite'}"]) == 2
    acks = tmp_path / "acks.jsonl"
    acks.write_text(
        "".join(json.dumps({"channel": m.channel, "id": m.id, "version": str(m.version)}) + "\n" for m in messages)
    )
    assert main(["verify", same1, same2, "--acks", str(acks)]) == 0
    assert main(["verify", short, "--acks", str(acks)]) == 1


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="sqlite://"):
        open_store("mysql://db")


def test_every_registered_store_class_exists() -> None:
    assert set(STORE_CLASSES) == set(OPENERS)
    for dotted in STORE_CLASSES.values():
        assert load(dotted).__name__ == dotted.rsplit(":", 1)[1]


def test_verifying_sqlite_imports_no_vendor_sdk(tmp_path: Path) -> None:
    spec = write_sqlite(tmp_path / "a.sqlite", [message(1)])
    vendors = ("boto3", "botocore", "azure", "google.cloud.", "google.api_core")
    code = (
        "import sys; from tools.replication.__main__ import main; "
        f"rc = main(['verify', {spec!r}, {spec!r}]); "
        f"bad = [m for m in sys.modules if m.startswith({vendors!r})]; "
        "print(bad); sys.exit(rc or (1 if bad else 0))"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr

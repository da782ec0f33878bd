"""Anti-entropy over the digest tree (core/digest.py): full passes and windows too big to hold,
between in-process clouds wired through the signed replication routes. Cost follows the
differences: an identical pair is one request, a difference a few per tree level; a pass cut
short keeps what it repaired and the next one carries on."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.local.store import SqliteMessageStore
from core import anti_entropy
from core.bootstrap import Overcast
from core.digest import LEAF_DEPTH, LEAVES, digests_of, entry_hash, key_leaf, nodes_at
from core.http import Request, Response
from core.model import Message, Version, new_message_id
from core.ports import MessageStore
from core.replication import TREE_PATH, signed_headers
from tests.fakes import InMemoryMessageStore
from tests.openapi import assert_response_conforms
from tests.property.inprocess import AppTransport, mesh

NOW_MS = 1_760_000_000_000


def message(i: int, origin: str, *, ms: int | None = None) -> Message:
    created = ms if ms is not None else NOW_MS - 500_000 + i
    return Message("london", new_message_id(created), "ada", f"m{i}", created, Version(created, 0, origin))


def contents(store: MessageStore) -> list[dict]:
    return [m.to_record() for m in anti_entropy.iter_changes(store, None, page_size=1000)]


def fill(stores: list[MessageStore], records: list[Message]) -> None:
    for store in stores:
        for record in records:
            store.create(record)


@pytest.fixture(params=["memory", "sqlite"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, Overcast], AppTransport]]:
    """aws and azure: in-memory stores (digests computed by scanning) or SQLite (kept by triggers)."""
    if request.param == "memory":
        stores: dict[str, MessageStore] = {n: InMemoryMessageStore() for n in ("aws", "azure")}
    else:
        stores = {n: SqliteMessageStore(tmp_path / f"{n}.sqlite") for n in ("aws", "azure")}
    yield mesh(stores, {n: (lambda: NOW_MS) for n in stores})
    for store in stores.values():
        store.close()


def run(cloud: Overcast, **kw: object) -> anti_entropy.AntiEntropyReport:
    return anti_entropy.run(cloud, now_ms=lambda: NOW_MS + 1000, **{"window_s": 0, **kw})  # type: ignore[arg-type]


def test_identical_stores_cost_one_request(pair) -> None:
    clouds, transport = pair
    fill([clouds["aws"].store, clouds["azure"].store], [message(i, "aws") for i in range(2000)])
    report = run(clouds["aws"])
    azure = report.peers[0]
    assert report.ok and azure.mode == "tree" and (azure.pushed, azure.pulled) == (0, 0)
    assert azure.requests == 1 and transport.calls == [("azure", "tree")]
    assert azure.local_records == azure.peer_records == 2000


def test_one_missing_record_on_each_side_costs_a_few_requests_per_level(pair) -> None:
    clouds, transport = pair
    aws, azure = clouds["aws"].store, clouds["azure"].store
    fill([aws, azure], [message(i, "aws") for i in range(3000)])
    only_aws, only_azure = message(5000, "aws"), message(5001, "azure")
    aws.create(only_aws)
    azure.create(only_azure)
    report = run(clouds["aws"])
    peer = report.peers[0]
    assert report.ok and (peer.pushed, peer.pulled) == (1, 1), report.to_dict()
    assert contents(aws) == contents(azure)
    # per phase (pull, then push): one tree request per level opened plus one listing, then the
    # fetch and the batch; nothing like one request per 5,000 records
    assert peer.requests <= 2 * (LEAF_DEPTH + 1) + 2, transport.calls
    again = run(clouds["aws"]).peers[0]
    assert again.ok and (again.pushed, again.pulled, again.requests) == (0, 0, 1)


def test_a_window_larger_than_the_cap_still_converges(pair) -> None:
    """The scheduled pass used to stop, repairing nothing, when its window held more than
    ``max_entries`` records: now that window is compared as a tree, and one pass converges."""
    clouds, _ = pair
    aws, azure = clouds["aws"].store, clouds["azure"].store
    fill([aws, azure], [message(i, "aws", ms=NOW_MS - 60_000 + i) for i in range(3000)])
    only_aws, only_azure = message(1, "aws", ms=NOW_MS - 100), message(2, "azure", ms=NOW_MS - 50)
    aws.create(only_aws)
    azure.create(only_azure)
    report = run(clouds["aws"], window_s=900, max_entries=500)
    peer = report.peers[0]
    assert report.ok, report.to_dict()
    assert peer.mode == "tree" and "compared as a tree" in peer.note
    assert (peer.pushed, peer.pulled) == (1, 1)
    assert azure.get("london", only_aws.id) == only_aws and aws.get("london", only_azure.id) == only_azure
    assert contents(aws) == contents(azure)


def test_the_tree_over_a_window_leaves_older_records_alone(pair) -> None:
    clouds, _ = pair
    aws, azure = clouds["aws"].store, clouds["azure"].store
    ancient = message(0, "aws", ms=NOW_MS - 3_600_000)
    aws.create(ancient)
    fill([aws, azure], [message(i, "aws", ms=NOW_MS - 60_000 + i) for i in range(50)])
    report = run(clouds["aws"], window_s=900, max_entries=10)
    assert report.ok and report.peers[0].mode == "tree" and report.pushed == 0
    assert azure.get("london", ancient.id) is None


@pytest.mark.parametrize("resume", [True, False], ids=["from-resume-leaf", "from-leaf-0"])
def test_a_pass_cut_short_keeps_its_repairs_and_the_next_carries_on(pair, resume: bool) -> None:
    """A budget so small that each pass gets one batch through: every pass still makes
    progress, and passes carry on (from the resume leaf, or from the start: repaired leaves
    compare equal) until the stores converge, in a bounded number of passes."""
    clouds, _ = pair
    aws, azure = clouds["aws"].store, clouds["azure"].store
    fill([aws, azure], [message(i, "aws") for i in range(200)])
    fill([aws], [message(1000 + i, "aws") for i in range(450)])  # azure lacks 450
    batch = clouds["aws"].replicator.limits.max_batch_records
    start, passes, pushed = 0, 0, []
    while True:
        passes += 1
        report = run(clouds["aws"], budget_s=0, start_leaf=start)
        peer = report.peers[0]
        assert not peer.errors
        pushed.append(peer.pushed)
        if report.ok:
            break
        assert peer.truncated and peer.resume_leaf is not None and peer.pushed >= 1
        start = peer.resume_leaf if resume else 0
        assert passes <= 450 // batch + 2
    assert sum(pushed) == 450 and contents(aws) == contents(azure)
    assert passes >= 450 // batch  # cut short indeed: one batch per pass


def test_one_tree_pass_from_one_cloud_converges_the_whole_mesh(tmp_path: Path) -> None:
    stores = {n: SqliteMessageStore(tmp_path / f"{n}.sqlite") for n in ("aws", "azure", "gcp")}
    clouds, _ = mesh(stores, {n: (lambda: NOW_MS) for n in stores})
    fill(list(stores.values()), [message(i, "aws") for i in range(500)])
    for offset, name in enumerate(stores):
        stores[name].create(message(900 + offset, name))
    report = run(clouds["aws"])
    assert report.ok and report.pulled == 2
    assert {p.peer: p.pushed for p in report.peers} == {"azure": 2, "gcp": 2}
    assert contents(stores["aws"]) == contents(stores["azure"]) == contents(stores["gcp"])
    for store in stores.values():
        store.close()


def test_a_peer_without_the_tree_route_gets_the_full_digest(pair) -> None:
    """A peer still on a release without /replication/tree answers 404: the pass falls back to
    the digest of everything, as before."""
    clouds, transport = pair
    aws, azure = clouds["aws"].store, clouds["azure"].store
    fill([aws, azure], [message(i, "aws") for i in range(20)])
    only_aws, only_azure = message(100, "aws"), message(101, "azure")
    aws.create(only_aws)
    azure.create(only_azure)
    handle = clouds["azure"].app.handle

    def older_release(request: Request) -> Response:
        if request.path == TREE_PATH:
            return Response.json(404, {"error": {"code": "not_found", "message": "no route"}})
        return handle(request)

    clouds["azure"].app.handle = older_release  # type: ignore[method-assign]
    report = run(clouds["aws"])
    peer = report.peers[0]
    assert report.ok and peer.mode == "window" and "no tree route" in peer.note
    assert (peer.pushed, peer.pulled) == (1, 1) and contents(aws) == contents(azure)
    assert ("azure", "digest") in transport.calls


def test_a_sqlite_file_from_before_the_tree_gets_one_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE messages (channel TEXT NOT NULL, id TEXT NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL,"
        " created_ms INTEGER NOT NULL, sort_key TEXT NOT NULL, version TEXT NOT NULL, deleted INTEGER NOT NULL,"
        " request_digest TEXT NOT NULL, PRIMARY KEY (channel, id)) WITHOUT ROWID;"
    )
    records = [message(i, "aws") for i in range(300)]
    for m in records:
        row = {**m.to_record(), "deleted": 0}
        del row["origin"]
        old.execute(f"INSERT INTO messages ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    old.commit()
    old.close()
    store = SqliteMessageStore(path)
    edited = Message(**{**records[0].__dict__, "text": "edited", "version": Version(NOW_MS, 0, "aws")})
    assert store.put_if_newer(edited)
    held = [edited, *records[1:]]
    entries = sorted((key_leaf(m.channel, m.id), m.channel, m.id, str(m.version)) for m in held)
    for depth in range(LEAF_DEPTH + 1):
        assert store.tree_digests(depth, 0, nodes_at(depth)) == digests_of(entries, depth)
    assert store.tree_entries(0, LEAVES, None, 1000) == entries
    store.close()
    reopened = SqliteMessageStore(path)  # a second open finds the tree there and keeps it
    assert reopened.tree_digests(0, 0, 1) == digests_of(entries, 0)
    reopened.close()


# -- the route -------------------------------------------------------------------------------


def ask(cloud: Overcast, payload: dict, *, secret: str | None = None) -> Response:
    body = json.dumps({**payload, "origin": "azure"}).encode()
    key = secret if secret is not None else cloud.settings.peer("azure").secret  # type: ignore[union-attr]
    headers = signed_headers("azure", key, cloud.app.now_s(), body)
    response = cloud.app.handle(Request("POST", TREE_PATH, {}, headers, body))
    assert_response_conforms("POST", TREE_PATH, response.status, response.headers, response.body)
    return response


def test_the_tree_route_answers_per_the_spec(pair) -> None:
    clouds, _ = pair
    aws = clouds["aws"]
    stored = aws.service.post("london", "ada", "hello").message
    top = ask(aws, {"since": None, "depth": 0, "nodes": [0]})
    assert top.status == 200
    leaf = key_leaf("london", stored.id)
    assert top.json_body() == {
        "depth": 1,
        "digests": [[leaf >> 12, 1, entry_hash("london", stored.id, str(stored.version))]],
        "origin": "aws",
    }
    listed = ask(aws, {"since": None, "leaves": [0, LEAVES], "after": None, "limit": 10})
    assert listed.status == 200
    assert listed.json_body()["entries"] == [[leaf, "london", stored.id, str(stored.version)]]


def test_the_tree_route_refuses_unsigned_and_wrongly_signed_requests(pair) -> None:
    aws = pair[0]["aws"]
    aws.service.post("london", "ada", "secret text")
    for secret in ("wrong", ""):
        response = ask(aws, {"since": None, "leaves": [0, LEAVES]}, secret=secret)
        assert response.status == 401 and b"london" not in response.body


@pytest.mark.parametrize(
    "payload",
    [
        {"depth": 4, "nodes": [0]},
        {"depth": 0, "nodes": []},
        {"depth": 0, "nodes": [1]},
        {"depth": 1, "nodes": list(range(65))},
        {"depth": True, "nodes": [0]},
        {"depth": 0, "nodes": ["0"]},
        {"leaves": [0]},
        {"leaves": [0, LEAVES + 1]},
        {"leaves": [5, 4]},
        {"leaves": [0, 10], "after": ["london"]},
        {"leaves": [0, 10], "limit": 0},
        {"since": 5, "depth": 0, "nodes": [0]},
    ],
)
def test_the_tree_route_validates_its_input(pair, payload: dict) -> None:
    assert ask(pair[0]["aws"], payload).status == 400

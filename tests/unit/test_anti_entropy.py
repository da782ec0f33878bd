"""Anti-entropy between in-process clouds (each an HttpApp over its own in-memory store, wired
through the signed replication routes): what it repairs, what it leaves alone, how it fails."""

from __future__ import annotations

import json

import pytest

from core import anti_entropy
from core.bootstrap import Overcast
from core.http import Request
from core.model import Message, Version, new_message_id
from core.replication import DIGEST_PATH, FETCH_PATH, signed_headers
from tests.fakes import InMemoryMessageStore
from tests.openapi import assert_response_conforms
from tests.property.inprocess import AppTransport, mesh

NOW_MS = 1_760_000_000_000


def contents(overcast: Overcast) -> list[dict]:
    return [m.to_record() for m in overcast.store.changes_since(None, 10_000)]


def message(text: str, *, ms: int, origin: str, counter: int = 0, message_id: str | None = None) -> Message:
    return Message("london", message_id or new_message_id(ms), "ada", text, ms, Version(ms, counter, origin))


@pytest.fixture
def clouds() -> tuple[dict[str, Overcast], AppTransport]:
    return mesh(
        {n: InMemoryMessageStore() for n in ("aws", "azure", "gcp")},
        {n: (lambda: NOW_MS) for n in ("aws", "azure", "gcp")},
    )


def run(cloud: Overcast, **kw: object) -> anti_entropy.AntiEntropyReport:
    return anti_entropy.run(cloud, now_ms=lambda: NOW_MS + 1000, **kw)  # type: ignore[arg-type]


def test_one_pass_repairs_both_sides_of_every_pair(clouds) -> None:
    mesh_, _ = clouds
    only_aws = mesh_["aws"].service.post("london", "ada", "only in aws").message
    only_azure = mesh_["azure"].service.post("london", "bob", "only in azure").message
    report = run(mesh_["aws"])
    assert report.ok, report.to_dict()
    assert contents(mesh_["aws"]) == contents(mesh_["azure"])
    assert {m["id"] for m in contents(mesh_["gcp"])} == {only_aws.id, only_azure.id}
    by_peer = {p.peer: p for p in report.peers}
    assert (by_peer["azure"].pushed, by_peer["azure"].pulled) == (1, 1)
    assert (by_peer["gcp"].pushed, by_peer["gcp"].pulled) == (2, 0)
    assert contents(mesh_["gcp"]) == contents(mesh_["aws"])


def test_one_pass_from_one_cloud_converges_the_whole_mesh_and_the_next_finds_nothing(clouds) -> None:
    mesh_, _ = clouds
    mesh_["aws"].service.post("london", "ada", "hello")
    mesh_["gcp"].service.post("london", "ada", "hi")
    mesh_["azure"].service.post("london", "ada", "hey")
    first = run(mesh_["aws"])
    assert first.ok and first.pulled == 2  # azure's and gcp's, before anything is pushed
    assert {p.peer: p.pushed for p in first.peers} == {"azure": 2, "gcp": 2}  # what each one lacked
    assert contents(mesh_["aws"]) == contents(mesh_["azure"]) == contents(mesh_["gcp"])
    for name in ("aws", "azure", "gcp"):
        again = run(mesh_[name])
        assert again.ok and again.pushed == 0 and again.pulled == 0


def test_newer_versions_win_whichever_side_holds_them(clouds) -> None:
    mesh_, _ = clouds
    aws, azure = mesh_["aws"], mesh_["azure"]
    base = message("v1", ms=NOW_MS - 5000, origin="aws")
    for cloud in (aws, azure):
        cloud.store.create(base)
    newer_on_azure = Message(**{**base.__dict__, "text": "v2", "version": Version(NOW_MS - 10, 0, "azure")})
    azure.store.put_if_newer(newer_on_azure)
    other = message("w1", ms=NOW_MS - 4000, origin="azure")
    for cloud in (aws, azure):
        cloud.store.create(other)
    deleted_on_aws = other.tombstone(Version(NOW_MS - 5, 0, "aws"))
    aws.store.put_if_newer(deleted_on_aws)
    report = run(aws, peers=["azure"])
    assert report.ok
    assert aws.store.get("london", base.id) == newer_on_azure  # pulled
    assert azure.store.get("london", other.id) == deleted_on_aws  # pushed (the tombstone)
    assert contents(aws) == contents(azure)


def test_only_the_window_is_compared_unless_asked_for_everything(clouds) -> None:
    mesh_, _ = clouds
    aws, azure = mesh_["aws"], mesh_["azure"]
    ancient = message("ancient", ms=NOW_MS - 3_600_000, origin="aws")
    recent = message("recent", ms=NOW_MS - 60_000, origin="aws")
    aws.store.create(ancient)
    aws.store.create(recent)
    report = run(aws, peers=["azure"], window_s=900)
    assert report.pushed == 1 and azure.store.get("london", ancient.id) is None
    report = run(aws, peers=["azure"], window_s=0)
    assert report.ok and report.pushed == 1 and azure.store.get("london", ancient.id) == ancient


def test_a_record_changed_in_the_window_beats_the_peers_pre_window_copy(clouds) -> None:
    """The peer's copy is older than the floor so its digest omits it: still pushed."""
    mesh_, _ = clouds
    aws, azure = mesh_["aws"], mesh_["azure"]
    old = message("old", ms=NOW_MS - 3_600_000, origin="aws")
    aws.store.create(old)
    azure.store.create(old)
    edited = Message(**{**old.__dict__, "text": "edited", "version": Version(NOW_MS - 1000, 0, "aws")})
    aws.store.put_if_newer(edited)
    assert run(aws, peers=["azure"]).pushed == 1
    assert azure.store.get("london", old.id) == edited


def test_many_records_page_through_digest_and_fetch(clouds, monkeypatch) -> None:
    monkeypatch.setattr(anti_entropy, "DIGEST_PAGE_MAX", 7)
    mesh_, transport = clouds
    aws, azure = mesh_["aws"], mesh_["azure"]
    for i in range(120):
        aws.store.create(message(f"a{i}", ms=NOW_MS - 100_000 + i, origin="aws"))
        azure.store.create(message(f"z{i}", ms=NOW_MS - 100_000 + i, origin="azure"))
    report = run(aws, peers=["azure"])
    assert report.ok and report.pushed == 120 and report.pulled == 120
    assert contents(aws) == contents(azure)
    digests = [c for c in transport.calls if c == ("azure", "digest")]
    fetches = [c for c in transport.calls if c == ("azure", "fetch")]
    assert len(digests) >= 120 // 7 and len(fetches) == 2  # 100 keys per fetch


def test_an_unreachable_peer_is_reported_and_the_others_still_repaired(clouds) -> None:
    mesh_, transport = clouds
    transport.down.add("azure")
    mesh_["aws"].service.post("london", "ada", "hello")
    report = run(mesh_["aws"])
    assert not report.ok
    by_peer = {p.peer: p for p in report.peers}
    assert by_peer["azure"].errors and not by_peer["gcp"].errors and by_peer["gcp"].pushed == 1
    with pytest.raises(anti_entropy.AntiEntropyError, match="azure"):
        report.raise_for_errors()


def test_a_pass_over_budget_says_truncated(clouds) -> None:
    mesh_, _ = clouds
    mesh_["aws"].service.post("london", "ada", "hello")
    report = run(mesh_["aws"], budget_s=-1)
    assert not report.ok and all(p.truncated for p in report.peers)


def test_an_unknown_peer_name_is_an_error_not_a_silent_no_op(clouds) -> None:
    report = run(clouds[0]["aws"], peers=["oracle"])
    assert not report.ok and "oracle" in report.peers[0].errors[0]


def test_report_is_json_for_scheduled_function_logs(clouds) -> None:
    report = run(clouds[0]["aws"])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True and {p["peer"] for p in data["peers"]} == {"azure", "gcp"}


@pytest.mark.parametrize("path, payload", [(DIGEST_PATH, {"since": None}), (FETCH_PATH, {"keys": []})])
def test_digest_and_fetch_refuse_unsigned_and_wrongly_signed_requests(clouds, path: str, payload: dict) -> None:
    aws = clouds[0]["aws"]
    aws.store.create(message("secret text", ms=NOW_MS, origin="aws"))
    body = json.dumps({**payload, "origin": "azure"}).encode()
    now = aws.app.now_s()
    for headers in ({}, signed_headers("azure", "wrong", now, body), signed_headers("azure", "x", now - 10_000, body)):
        response = aws.app.handle(Request("POST", path, {}, headers, body))
        assert_response_conforms("POST", path, response.status, response.headers, response.body)
        assert response.status == 401 and b"secret text" not in response.body


@pytest.mark.parametrize(
    "path, payload",
    [
        (DIGEST_PATH, {"since": 5}),
        (DIGEST_PATH, {"since": None, "limit": 0}),
        (DIGEST_PATH, {"since": None, "limit": True}),
        (FETCH_PATH, {"keys": "london"}),
        (FETCH_PATH, {"keys": [["london"]]}),
        (FETCH_PATH, {"keys": [["london", "x"]] * 101}),
        (FETCH_PATH, {"keys": [["London!", "0" * 26]]}),
    ],
)
def test_digest_and_fetch_validate_their_input(clouds, path: str, payload: dict) -> None:
    aws = clouds[0]["aws"]
    secret = aws.settings.peer("azure").secret  # type: ignore[union-attr]
    body = json.dumps({**payload, "origin": "azure"}).encode()
    response = aws.app.handle(Request("POST", path, {}, signed_headers("azure", secret, aws.app.now_s(), body), body))
    assert_response_conforms("POST", path, response.status, response.headers, response.body)
    assert response.status == 400


def test_signed_digest_and_fetch_answer_per_the_spec(clouds) -> None:
    aws = clouds[0]["aws"]
    stored = aws.service.post("london", "ada", "hello").message
    secret = aws.settings.peer("azure").secret  # type: ignore[union-attr]
    for path, payload in ((DIGEST_PATH, {"since": None}), (FETCH_PATH, {"keys": [["london", stored.id]]})):
        body = json.dumps({**payload, "origin": "azure"}).encode()
        response = aws.app.handle(
            Request("POST", path, {}, signed_headers("azure", secret, aws.app.now_s(), body), body)
        )
        assert_response_conforms("POST", path, response.status, response.headers, response.body)
        assert response.status == 200
    assert response.json_body()["records"] == [stored.to_record()]

"""Replication through core.app.HttpApp: signatures, last-writer-wins, loops, batching, failures.

Every refused request is checked twice: the status and error code, and that the store holds
exactly what it held before (nothing applied).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from core import replication
from core.bootstrap import Overcast, bootstrap
from core.errors import Unavailable
from core.http import Request, Response
from core.model import HybridLogicalClock, Limits, Message, Version, new_message_id
from core.ports import PeerResponse, PeerTransport
from core.replication import Replicator, batches, changes_page, encode_batch, iter_changes, sign, signed_headers
from core.settings import Peer, Settings
from tests.fakes import InMemoryMessageStore, ManualClock, RecordingTransport
from tests.openapi import assert_response_conforms

NOW_S = 1_760_000_000
SECRET = "pair-secret-aws-azure"
SKEW = 300


def record(
    text: str = "Hello London", *, ms: int = NOW_S * 1000, counter: int = 0, origin: str = "azure", **kw
) -> Message:
    message_id = kw.pop("message_id", None) or new_message_id(ms)
    return Message("london", message_id, kw.pop("author", "bob"), text, ms, Version(ms, counter, origin), **kw)


def snapshot(store: InMemoryMessageStore) -> list[dict]:
    return [m.to_record() for m in store.changes_since(None, 10_000)]


@pytest.fixture
def store() -> InMemoryMessageStore:
    return InMemoryMessageStore()


@pytest.fixture
def aws(store: InMemoryMessageStore) -> Overcast:
    """The receiving cloud: knows peer azure (secret via env var) and gcp."""
    env = {
        "OVERCAST_PROVIDER": "aws",
        "OVERCAST_PEERS": json.dumps(
            [
                {"name": "azure", "url": "https://azure.example.net/api", "secret_env": "AZ"},
                {"name": "gcp", "url": "https://gcp.example.net", "secret_env": "GCP"},
            ]
        ),
        "AZ": SECRET,
        "GCP": "pair-secret-aws-gcp",
        "OVERCAST_REPLICATION_MAX_SKEW_S": str(SKEW),
        "OVERCAST_LOG_LEVEL": "ERROR",
    }
    clock = ManualClock(NOW_S * 1000)
    overcast = bootstrap(Settings.from_env(env), store, RecordingTransport(), HybridLogicalClock("aws", clock.now_ms))
    overcast.app.now_s = lambda: NOW_S
    return overcast


def send(
    overcast: Overcast,
    body: bytes,
    headers: Mapping[str, str],
    path: str = replication.BATCH_PATH,
) -> Response:
    response = overcast.app.handle(Request("POST", path, {}, {k.lower(): v for k, v in headers.items()}, body))
    assert_response_conforms("POST", path, response.status, response.headers, response.body)
    return response


def signed(body: bytes, *, origin: str = "azure", secret: str = SECRET, ts: int = NOW_S) -> dict[str, str]:
    return signed_headers(origin, secret, ts, body)


def error_code(response: Response) -> str:
    return response.json_body()["error"]["code"]


# -- signatures ---------------------------------------------------------------------------------


def test_a_signed_batch_is_applied(aws: Overcast, store: InMemoryMessageStore) -> None:
    messages = [record("one"), record("two")]
    body = encode_batch("azure", messages)
    response = send(aws, body, signed(body))
    assert response.status == 200 and response.json_body()["applied"] == 2
    assert {m.text for m in store.changes_since(None, 10)} == {"one", "two"}


def test_tampered_body_is_rejected_and_nothing_applied(aws: Overcast, store: InMemoryMessageStore) -> None:
    existing = record("before", origin="aws")
    store.create(existing)
    before = snapshot(store)
    body = encode_batch("azure", [record("genuine")])
    headers = signed(body)
    tampered = body.replace(b"genuine", b"forged!")
    response = send(aws, tampered, headers)
    assert response.status == 401 and error_code(response) == "signature_invalid"
    assert snapshot(store) == before


def test_tampered_timestamp_is_rejected(aws: Overcast, store: InMemoryMessageStore) -> None:
    body = encode_batch("azure", [record()])
    headers = {**signed(body), "x-overcast-timestamp": str(NOW_S + 1)}
    response = send(aws, body, headers)
    assert response.status == 401 and error_code(response) == "signature_invalid"
    assert snapshot(store) == []


def test_wrong_secret_is_rejected(aws: Overcast, store: InMemoryMessageStore) -> None:
    body = encode_batch("azure", [record()])
    response = send(aws, body, signed(body, secret="not-the-pair-secret"))
    assert response.status == 401 and error_code(response) == "signature_invalid"
    assert snapshot(store) == []


def test_another_pairs_secret_is_rejected(aws: Overcast, store: InMemoryMessageStore) -> None:
    """gcp's secret cannot speak for azure: each pair has its own."""
    body = encode_batch("azure", [record()])
    response = send(aws, body, signed(body, secret="pair-secret-aws-gcp"))
    assert response.status == 401
    assert snapshot(store) == []


def test_unknown_peer_is_rejected(aws: Overcast, store: InMemoryMessageStore) -> None:
    body = encode_batch("oracle", [record(origin="oracle")])
    response = send(aws, body, signed(body, origin="oracle"))
    assert response.status == 401 and error_code(response) == "unknown_peer"
    assert snapshot(store) == []


@pytest.mark.parametrize("missing", ["x-overcast-origin", "x-overcast-timestamp", "x-overcast-signature"])
def test_missing_headers_are_rejected(aws: Overcast, store: InMemoryMessageStore, missing: str) -> None:
    body = encode_batch("azure", [record()])
    headers = {k: v for k, v in signed(body).items() if k != missing}
    response = send(aws, body, headers)
    assert response.status == 401 and error_code(response) == "signature_missing"
    assert snapshot(store) == []


def test_unsigned_batch_is_rejected(aws: Overcast, store: InMemoryMessageStore) -> None:
    body = encode_batch("azure", [record()])
    response = send(aws, body, {"content-type": "application/json"})
    assert response.status == 401
    assert snapshot(store) == []


@pytest.mark.parametrize("offset", [-(SKEW + 1), SKEW + 1, -86_400, 10**6])
def test_stale_and_future_batches_are_rejected(aws: Overcast, store: InMemoryMessageStore, offset: int) -> None:
    body = encode_batch("azure", [record()])
    response = send(aws, body, signed(body, ts=NOW_S + offset))
    assert response.status == 401 and error_code(response) == "clock_skew"
    assert response.json_body()["error"]["offset_s"] == offset  # named, with the offset
    assert snapshot(store) == []


@pytest.mark.parametrize("offset", [-SKEW, SKEW])
def test_timestamps_within_the_skew_are_accepted(aws: Overcast, offset: int) -> None:
    body = encode_batch("azure", [record()])
    assert send(aws, body, signed(body, ts=NOW_S + offset)).status == 200


@pytest.mark.parametrize(
    "header, value",
    [
        ("x-overcast-signature", "v1=" + "é" * 64),  # non-ASCII must not crash compare_digest
        ("x-overcast-signature", "sha1=abc"),
        ("x-overcast-signature", "V1=" + "A" * 64),
        ("x-overcast-timestamp", " 1760000000"),
        ("x-overcast-timestamp", "1_760_000_000"),
        ("x-overcast-timestamp", "-1"),
        ("x-overcast-timestamp", "١٧٦٠٠٠٠٠٠٠"),  # Arabic-Indic digits parse with int(); not ours
    ],
)
def test_malformed_signature_headers_get_401_not_500(
    aws: Overcast, store: InMemoryMessageStore, header: str, value: str
) -> None:
    body = encode_batch("azure", [record()])
    response = send(aws, body, {**signed(body), header: value})
    assert response.status == 401 and error_code(response) == "signature_invalid"
    assert snapshot(store) == []


def test_signed_origin_must_match_the_body(aws: Overcast, store: InMemoryMessageStore) -> None:
    """A peer cannot sign a body that claims to come from another peer."""
    body = encode_batch("gcp", [record()])
    response = send(aws, body, signed(body, origin="azure"))
    assert response.status == 400
    assert snapshot(store) == []


def test_one_bad_record_rejects_the_whole_batch(aws: Overcast, store: InMemoryMessageStore) -> None:
    good = record("good").to_record()
    bad = {**record("bad").to_record(), "version": "yesterday"}
    body = json.dumps({"origin": "azure", "records": [good, bad]}).encode()
    response = send(aws, body, signed(body))
    assert response.status == 400
    assert snapshot(store) == []


def test_a_batch_over_the_record_limit_is_413(aws: Overcast, store: InMemoryMessageStore) -> None:
    messages = [record(f"m{i}", counter=i) for i in range(Limits().max_batch_records + 1)]
    body = encode_batch("azure", messages)
    response = send(aws, body, signed(body))
    assert response.status == 413
    assert snapshot(store) == []


def test_a_replayed_batch_is_harmless(aws: Overcast, store: InMemoryMessageStore) -> None:
    body = encode_batch("azure", [record("one"), record("two")])
    headers = signed(body)
    assert send(aws, body, headers).json_body()["applied"] == 2
    after_first = snapshot(store)
    again = send(aws, body, headers)
    assert again.status == 200 and again.json_body() == {**again.json_body(), "applied": 0, "ignored": 2}
    assert snapshot(store) == after_first


def test_a_replayed_old_batch_cannot_undo_a_newer_write(aws: Overcast, store: InMemoryMessageStore) -> None:
    old = record("v1")
    old_body = encode_batch("azure", [old])
    old_headers = signed(old_body)
    send(aws, old_body, old_headers)
    newer = Message(**{**old.__dict__, "text": "v2", "version": Version(old.version.physical_ms + 5, 0, "azure")})
    new_body = encode_batch("azure", [newer])
    send(aws, new_body, signed(new_body))
    send(aws, old_body, old_headers)  # replay the older one
    assert store.get("london", old.id) == newer


# -- last-writer-wins ---------------------------------------------------------------------------


def test_last_writer_wins_in_any_delivery_order(aws: Overcast, store: InMemoryMessageStore) -> None:
    base = record("base", origin="azure")
    edits = [
        Message(**{**base.__dict__, "text": f"t{i}", "version": Version(base.created_ms + i, 0, "azure")})
        for i in range(5)
    ]
    for message in reversed(edits):
        body = encode_batch("azure", [message])
        send(aws, body, signed(body))
    assert store.get("london", base.id) == edits[-1]


def test_equal_clocks_break_ties_on_origin_the_same_everywhere() -> None:
    a, b = Version(1000, 3, "aws"), Version(1000, 3, "azure")
    assert max(a, b) == b and str(a) < str(b)  # Python order and string order agree


def test_a_tombstone_beats_an_older_edit_arriving_late(aws: Overcast, store: InMemoryMessageStore) -> None:
    original = record("hello")
    tombstone = original.tombstone(Version(original.created_ms + 10, 0, "azure"))
    late_edit = Message(
        **{**original.__dict__, "text": "edited", "version": Version(original.created_ms + 5, 0, "azure")}
    )
    for message in (original, tombstone, late_edit):
        body = encode_batch("azure", [message])
        send(aws, body, signed(body))
    stored = store.get("london", original.id)
    assert stored is not None and stored.deleted and stored.text == ""
    assert aws.app.handle(Request("GET", f"/channels/london/messages/{original.id}")).status == 404


def test_receiving_a_future_version_moves_the_local_clock_past_it(aws: Overcast, store: InMemoryMessageStore) -> None:
    remote = record("from the future", ms=NOW_S * 1000 + 60_000, counter=7)
    body = encode_batch("azure", [remote])
    send(aws, body, signed(body))
    aws.service.delete("london", remote.id)
    stored = store.get("london", remote.id)
    assert stored is not None and stored.deleted and stored.version > remote.version and stored.origin == "aws"


# -- loops and forwarding ----------------------------------------------------------------------


class ScriptedTransport(PeerTransport):
    """Answers per peer host: a status, or raises when the host is listed in ``down``."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.status: dict[str, int] = {}
        self.calls: list[tuple[str, int]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        host = url.split("/")[2].split(".")[0]
        self.calls.append((host, len(json.loads(body)["records"])))
        if host in self.down:
            raise Unavailable(f"{url}: timed out after {timeout} s")
        if host == "broken":
            raise RuntimeError("transport bug")
        return PeerResponse(self.status.get(host, 200), b"{}")


def replicator(transport: PeerTransport, *names: str, limits: Limits | None = None) -> Replicator:
    peers = [Peer(n, f"https://{n}.example.net", f"secret-{n}") for n in names]
    return Replicator("aws", peers, transport, lambda: NOW_S, limits or Limits(), timeout_s=0.5)


def test_only_locally_originated_changes_are_forwarded() -> None:
    transport = ScriptedTransport()
    local = [record(f"mine{i}", origin="aws", counter=i) for i in range(3)]
    received = [record("theirs", origin="azure"), record("gcps", origin="gcp")]
    result = replicator(transport, "azure", "gcp").forward([*received, *local])
    assert result.ok and result.sent == 3
    assert sorted(transport.calls) == [("azure", 3), ("gcp", 3)]


def test_a_change_applied_from_a_peer_is_not_sent_back(aws: Overcast, store: InMemoryMessageStore) -> None:
    """The full loop: a peer's batch lands, the local change stream sees it, nothing goes out."""
    body = encode_batch("azure", [record("from azure")])
    send(aws, body, signed(body))
    transport = aws.replicator.transport
    assert isinstance(transport, RecordingTransport)
    result = aws.replicator.forward(store.changes_since(None, 100))
    assert result.ok and result.sent == 0 and transport.calls == []


def test_a_local_delete_of_a_peers_message_is_forwarded(aws: Overcast, store: InMemoryMessageStore) -> None:
    message = record("from azure")
    body = encode_batch("azure", [message])
    send(aws, body, signed(body))
    aws.service.delete("london", message.id)
    transport = aws.replicator.transport
    assert isinstance(transport, RecordingTransport)
    result = aws.replicator.forward(store.changes_since(None, 100))
    assert result.sent == 1
    sent = {json.loads(call[1])["records"][0]["deleted"] for call in transport.calls}
    assert sent == {True} and {call[0].split("/")[2] for call in transport.calls} == {
        "azure.example.net",
        "gcp.example.net",
    }


def test_pushes_are_signed_so_the_peer_accepts_them(aws: Overcast) -> None:
    transport = ScriptedTransport()
    result = replicator(transport, "azure").forward([record(origin="aws")])
    assert result.ok
    body = encode_batch("aws", [record(origin="aws", message_id="0" * 26)])
    assert (
        sign("secret-azure", NOW_S, body) == signed_headers("aws", "secret-azure", NOW_S, body)["x-overcast-signature"]
    )


# -- batching ------------------------------------------------------------------------------------


def test_batches_respect_the_record_limit() -> None:
    messages = [record(f"m{i}", counter=i, origin="aws") for i in range(250)]
    sizes = [len(b) for b in batches(messages, Limits())]
    assert sizes == [100, 100, 50]


def test_batches_respect_the_byte_limit_and_the_receiver_accepts_each(aws: Overcast) -> None:
    limits = Limits(max_batch_bytes=20_000)
    messages = [record("x" * 3000, counter=i) for i in range(20)]
    split = list(batches(messages, limits))
    assert len(split) > 1 and sum(map(len, split)) == 20
    assert all(len(encode_batch("azure", b)) <= limits.max_batch_bytes for b in split)
    for batch in split:
        body = encode_batch("azure", batch)
        assert send(aws, body, signed(body)).status == 200


def test_forward_sends_every_batch_to_every_peer() -> None:
    transport = ScriptedTransport()
    messages = [record(f"m{i}", counter=i, origin="aws") for i in range(230)]
    result = replicator(transport, "azure", "gcp").forward(messages)
    assert result.ok and result.sent == 230
    assert sorted(transport.calls) == sorted([(p, n) for p in ("azure", "gcp") for n in (100, 100, 30)])


# -- failures are reported, never acknowledged ----------------------------------------------------


def test_an_unreachable_peer_fails_the_delivery() -> None:
    transport = ScriptedTransport()
    transport.down.add("azure")
    messages = [record(f"m{i}", counter=i, origin="aws") for i in range(3)]
    result = replicator(transport, "azure").forward(messages)
    assert not result.ok and result.failed == messages and result.sent == 0
    assert "timed out" in result.errors[0]


@pytest.mark.parametrize("status", [401, 403, 404, 429, 500, 503])
def test_a_peer_answering_an_error_fails_the_delivery(status: int) -> None:
    transport = ScriptedTransport()
    transport.status["azure"] = status
    result = replicator(transport, "azure").forward([record(origin="aws")])
    assert not result.ok and f"HTTP {status}" in result.errors[0]


def test_one_failing_peer_fails_the_batch_and_is_tried_once_per_delivery() -> None:
    """The platform retries the whole batch (re-delivery to the healthy peer is harmless); a dead
    peer costs one timeout per delivery, not one per batch."""
    transport = ScriptedTransport()
    transport.down.add("gcp")
    messages = [record(f"m{i}", counter=i, origin="aws") for i in range(250)]
    result = replicator(transport, "azure", "gcp").forward(messages)
    assert len(result.failed) == 250 and result.sent == 0
    assert [c for c in transport.calls if c[0] == "gcp"] == [("gcp", 100)]
    assert [n for host, n in transport.calls if host == "azure"] == [100, 100, 50]


class RefusingTransport(PeerTransport):
    """Refuses (with ``status``) every batch holding a record whose text is "poison"."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.calls = 0

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        self.calls += 1
        texts = [r["text"] for r in json.loads(body)["records"]]
        return PeerResponse(self.status if "poison" in texts else 200, b"{}")


@pytest.mark.parametrize("status", [400, 413, 422])
def test_a_record_a_peer_refuses_for_good_is_poison_and_the_rest_gets_through(status: int) -> None:
    messages = [record(f"m{i}", counter=i, origin="aws") for i in range(40)]
    messages[17] = record("poison", counter=17, origin="aws")
    transport = RefusingTransport(status)
    result = replicator(transport, "azure").forward(messages)
    assert result.ok and result.failed == [] and result.poison == [messages[17]] and result.sent == 39
    assert transport.calls <= 2 * 6 + 1  # bisection: about two pushes per halving, not one per record


def test_a_poison_record_refused_by_one_peer_is_still_retried_for_a_peer_that_is_down() -> None:
    class Mixed(RefusingTransport):
        def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
            if "gcp" in url:
                raise Unavailable("gcp down")
            return super().post(url, body, headers, timeout)

    messages = [record("poison", origin="aws"), record("fine", counter=1, origin="aws")]
    result = replicator(Mixed(400), "azure", "gcp").forward(messages)
    assert result.failed == messages and not result.ok  # gcp still needs both


def test_a_record_too_big_for_any_batch_is_poison_not_retried_forever() -> None:
    limits = Limits(max_batch_bytes=4096)
    big = record("x" * 5000, origin="aws")
    small = record("fits", counter=1, origin="aws")
    transport = ScriptedTransport()
    result = replicator(transport, "azure", limits=limits).forward([big, small])
    assert result.ok and result.poison == [big] and result.sent == 1 and transport.calls == [("azure", 1)]
    assert (
        replicator(transport, "azure", limits=limits).push_to(Peer("azure", "https://azure.example.net", "s"), [big])
        == []
    )


def test_a_transport_bug_is_a_reported_failure_not_a_crash() -> None:
    result = replicator(ScriptedTransport(), "broken").forward([record(origin="aws")])
    assert not result.ok and "RuntimeError" in result.errors[0]


def test_nothing_to_forward_is_ok_and_sends_nothing() -> None:
    transport = ScriptedTransport()
    assert replicator(transport, "azure").forward([record(origin="azure")]).ok
    assert replicator(transport).forward([record(origin="aws")]).ok
    assert transport.calls == []


# -- change paging --------------------------------------------------------------------------------


def test_change_pages_never_split_a_version_tie(store: InMemoryMessageStore) -> None:
    """Two instances of one cloud can issue the same version in the same millisecond."""
    ms = NOW_S * 1000
    for i, offset in enumerate([-2, -1, 0, 0, 0, 5, 6]):  # three records share one version
        store.create(record(f"m{i}", ms=ms + offset, origin="aws"))
    page, cursor = changes_page(store, None, 4)
    assert len(page) == 2 and cursor is not None
    assert len(list(iter_changes(store, None, page_size=3))) == 7
    assert sorted(m.id for m in iter_changes(store, None, page_size=4)) == sorted(
        m.id for m in store.changes_since(None, 100)
    )


# -- applying a batch -----------------------------------------------------------------------------


def test_a_large_batch_with_several_versions_of_one_record_keeps_the_newest(
    aws: Overcast, store: InMemoryMessageStore
) -> None:
    base = record("v0", counter=0)
    versions = [
        Message(**{**base.__dict__, "text": f"v{i}", "version": Version(base.created_ms, i, "azure")})
        for i in range(40)
    ]
    others = [record(f"other {i}", counter=i) for i in range(60)]
    batch = others[:30] + list(reversed(versions)) + others[30:]
    body = encode_batch("azure", batch)
    answer = send(aws, body, signed(body)).json_body()
    assert answer["applied"] + answer["ignored"] == 100 and answer["applied"] >= 61
    assert store.get("london", base.id) == versions[-1]
    assert len(snapshot(store)) == 61


def test_a_store_failure_mid_batch_is_503_and_the_retry_completes_it(
    aws: Overcast, store: InMemoryMessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [record(f"m{i}", counter=i) for i in range(50)]
    body = encode_batch("azure", messages)
    calls = 0
    real = InMemoryMessageStore._put_if_newer

    def flaky(self: InMemoryMessageStore, message: Message) -> bool:
        nonlocal calls
        calls += 1
        if calls % 7 == 0:
            raise Unavailable("throttled")
        return real(self, message)

    monkeypatch.setattr(InMemoryMessageStore, "_put_if_newer", flaky)
    response = send(aws, body, signed(body))
    assert response.status == 503 and "retry-after" in response.headers
    monkeypatch.setattr(InMemoryMessageStore, "_put_if_newer", real)
    assert send(aws, body, signed(body)).status == 200
    assert len(snapshot(store)) == 50

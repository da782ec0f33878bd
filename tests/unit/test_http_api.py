"""The HTTP API through the router, every response held to openapi.yaml."""

from __future__ import annotations

import json
import time

import pytest

from core.errors import Unavailable
from tests.fakes import InMemoryMessageStore, ManualClock
from tests.openapi import spec
from tests.unit.conftest import ApiClient

MESSAGES = "/channels/london/messages"


def post(api: ApiClient, text: str = "Hello London", key: str | None = None, author: str = "ada") -> dict:
    headers = {"Idempotency-Key": key} if key else {}
    response = api.post(MESSAGES, json_body={"author": author, "text": text}, headers=headers)
    assert response.status == 201, response.body
    return response.json_body()


def test_post_returns_the_message_with_served_by(api: ApiClient) -> None:
    body = post(api)
    assert body["author"] == "ada" and body["text"] == "Hello London" and body["channel"] == "london"
    assert body["served_by"] == {"provider": "aws", "region": "eu-west-1"}
    assert api.get(f"{MESSAGES}/{body['id']}").json_body() == body


def test_idempotency_key_returns_the_same_message_once(api: ApiClient, store: InMemoryMessageStore) -> None:
    first = post(api, key="order-42")
    again = api.post(
        MESSAGES, json_body={"author": "ada", "text": "Hello London"}, headers={"Idempotency-Key": "order-42"}
    )
    assert again.status == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json_body() == first
    assert len(api.get(MESSAGES).json_body()["items"]) == 1


def test_idempotency_key_reused_with_other_text_is_refused(api: ApiClient) -> None:
    post(api, key="k")
    response = api.post(MESSAGES, json_body={"author": "ada", "text": "different"}, headers={"Idempotency-Key": "k"})
    assert response.status == 422 and response.json_body()["error"]["code"] == "idempotency_key_reused"


def test_idempotency_key_of_a_deleted_message_conflicts(api: ApiClient) -> None:
    message = post(api, key="k")
    assert api.delete(f"{MESSAGES}/{message['id']}").status == 204
    response = api.post(MESSAGES, json_body={"author": "ada", "text": "Hello London"}, headers={"Idempotency-Key": "k"})
    assert response.status == 409 and response.json_body()["error"]["code"] == "message_deleted"


def test_list_pages_with_cursor_newest_first(api: ApiClient, clock: ManualClock) -> None:
    ids = []
    for i in range(7):
        clock.advance(5)
        ids.append(post(api, text=f"m{i}")["id"])
    seen, cursor = [], None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = api.get(MESSAGES, query=query).json_body()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


def test_delete_then_get_is_404_and_list_omits_it(api: ApiClient) -> None:
    message = post(api)
    assert api.delete(f"{MESSAGES}/{message['id']}").status == 204
    assert api.get(f"{MESSAGES}/{message['id']}").status == 404
    assert api.delete(f"{MESSAGES}/{message['id']}").status == 404
    assert api.get(MESSAGES).json_body()["items"] == []


def test_health_shallow_and_deep(api: ApiClient) -> None:
    assert api.get("/health").json_body()["status"] == "ok"
    deep = api.get("/health/deep").json_body()
    assert deep["store"] == "memory" and deep["served_by"]["provider"] == "aws"


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"body": b"{not json"}, 400, "invalid_json"),
        ({"body": b"\xff\xfe"}, 400, "invalid_json"),
        ({"json_body": ["a", "list"]}, 400, "invalid_json"),
        ({"json_body": {"text": "no author"}}, 400, "missing_field"),
        ({"json_body": {"author": "ada"}}, 400, "missing_field"),
        ({"json_body": {"author": "ada", "text": 5}}, 400, "invalid_field"),
        ({"json_body": {"author": "   ", "text": "x"}}, 400, "invalid_field"),
        ({"json_body": {"author": "ada", "text": "x" * 4001}}, 400, "field_too_long"),
        ({"json_body": {"author": "a" * 65, "text": "x"}}, 400, "field_too_long"),
        ({"json_body": {"author": "ada", "text": "x", "admin": True}}, 400, "unknown_field"),
        (
            {"json_body": {"author": "ada", "text": "x"}, "headers": {"Idempotency-Key": "has space"}},
            400,
            "invalid_idempotency_key",
        ),
        (
            {"json_body": {"author": "ada", "text": "x"}, "headers": {"Idempotency-Key": "k" * 129}},
            400,
            "invalid_idempotency_key",
        ),
        ({"body": b"{" + b" " * 70_000 + b"}"}, 413, "payload_too_large"),
    ],
)
def test_bad_posts_get_documented_errors_and_store_nothing(
    api: ApiClient, store: InMemoryMessageStore, kwargs: dict, status: int, code: str
) -> None:
    response = api.post(MESSAGES, **kwargs)
    assert response.status == status
    assert response.json_body()["error"]["code"] == code
    assert store.changes_since(None, 100) == []


@pytest.mark.parametrize(
    "method, path, query, status, code",
    [
        ("GET", "/nowhere", {}, 404, "route_not_found"),
        ("PUT", MESSAGES, {}, 405, "method_not_allowed"),
        ("GET", "/channels/London!/messages", {}, 400, "invalid_channel"),
        ("GET", f"{MESSAGES}/not-an-id", {}, 400, "invalid_message_id"),
        ("GET", f"{MESSAGES}/0123456789abcdefghjkmnpqrs", {}, 404, "not_found"),
        ("GET", MESSAGES, {"limit": "0"}, 400, "invalid_limit"),
        ("GET", MESSAGES, {"limit": "101"}, 400, "invalid_limit"),
        ("GET", MESSAGES, {"limit": "ten"}, 400, "invalid_limit"),
        ("GET", MESSAGES, {"cursor": "garbage!"}, 400, "invalid_cursor"),
    ],
)
def test_bad_requests_get_json_errors(
    api: ApiClient, method: str, path: str, query: dict, status: int, code: str
) -> None:
    response = api.request(method, path, query=query, check_spec=path != "/nowhere" and method != "PUT")
    assert response.status == status
    error = response.json_body()["error"]
    assert error["code"] == code and error["message"] and error["request_id"] == response.headers["x-request-id"]
    if status == 405:
        assert "GET" in response.headers["allow"] and "POST" in response.headers["allow"]


def test_store_outage_is_503_with_retry_after(api: ApiClient, store: InMemoryMessageStore) -> None:
    store.available = False
    for response in (
        api.post(MESSAGES, json_body={"author": "a", "text": "b"}),
        api.get(MESSAGES),
        api.get("/health/deep"),
    ):
        assert response.status == 503
        assert int(response.headers["retry-after"]) >= 1
        assert response.json_body()["error"]["code"] == "unavailable"


def test_deep_health_fails_when_the_store_hangs(api: ApiClient, store: InMemoryMessageStore, monkeypatch) -> None:
    monkeypatch.setattr(store, "_ping", lambda: time.sleep(3))
    started = time.monotonic()
    response = api.get("/health/deep")
    assert response.status == 503 and response.json_body()["error"]["code"] == "store_timeout"
    assert time.monotonic() - started < 2.0  # Route 53 gives up after 2 s


def test_unexpected_bug_is_a_json_500_without_stack_trace(
    api: ApiClient, store: InMemoryMessageStore, monkeypatch
) -> None:
    def boom(*_: object) -> None:
        raise KeyError("secret internals")

    monkeypatch.setattr(store, "_get", boom)
    response = api.get(f"{MESSAGES}/0123456789abcdefghjkmnpqrs", check_spec=False)
    assert response.status == 500
    assert response.json_body()["error"]["code"] == "internal"
    assert b"secret internals" not in response.body and b"Traceback" not in response.body


def test_unavailable_retry_after_is_rounded_up_to_a_whole_second(
    api: ApiClient, store: InMemoryMessageStore, monkeypatch
) -> None:
    def throttled(*_: object) -> None:
        raise Unavailable("throttled", retry_after=0.2)

    monkeypatch.setattr(store, "_ping", throttled)
    assert api.get("/health/deep").headers["retry-after"] == "1"


def test_request_id_is_propagated_or_generated(api: ApiClient) -> None:
    assert api.get("/health", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"] == "abc-123"
    # API Gateway's own ids are base64: kept, so the response names the line in its access log.
    assert api.get("/health", headers={"X-Request-Id": "JKJaXmPLvHc+/A="}).headers["x-request-id"] == "JKJaXmPLvHc+/A="
    generated = api.get("/health", headers={"X-Request-Id": "bad id with spaces"}).headers["x-request-id"]
    assert generated != "bad id with spaces" and len(generated) == 32


def test_routes_are_matched_by_depth_and_method(api: ApiClient) -> None:
    one = MESSAGES + "/0" + "1" * 25
    assert api.request("PUT", one, check_spec=False).headers["allow"] == "DELETE, GET"
    assert api.request("PUT", MESSAGES, check_spec=False).headers["allow"] == "GET, POST"
    for path in (one + "/extra", "/channels/london", "/", "/health/deep/more"):
        assert api.get(path, check_spec=False).json_body()["error"]["code"] == "route_not_found", path
    assert api.get("/health").status == api.get("/health/deep").status == 200


def test_trailing_slash_is_the_same_route(api: ApiClient) -> None:
    assert api.get(MESSAGES + "/", check_spec=False).status == 200


def test_every_route_is_documented_and_every_documented_path_is_routed(api: ApiClient) -> None:
    routed = {(r.method.lower(), r.template) for r in api.overcast.app.router._routes}
    documented = {(method, path) for path, item in spec()["paths"].items() for method in item if method != "parameters"}
    assert routed == documented


def test_logs_are_json_lines_with_the_request_id(api: ApiClient, capsys) -> None:
    api.get("/health", headers={"X-Request-Id": "trace-me"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    request_lines = [line for line in lines if line["msg"] == "request"]
    assert request_lines and request_lines[-1]["request_id"] == "trace-me"
    assert request_lines[-1]["provider"] == "aws" and request_lines[-1]["status"] == 200


def test_delete_supersedes_a_record_from_a_peer_whose_clock_runs_far_ahead(
    api: ApiClient, store: InMemoryMessageStore, clock: ManualClock
) -> None:
    from core.model import Message, Version, new_message_id

    future = Version(clock.ms + 3_600_000, 0, "gcp")
    message = Message("london", new_message_id(clock.ms), "eve", "from the future", clock.ms, future)
    assert api.overcast.service.apply_replicated([message]).applied == 1
    assert api.overcast.clock.tick().physical_ms < future.physical_ms  # the clock was not dragged ahead
    assert api.delete(f"{MESSAGES}/{message.id}").status == 204
    assert api.get(f"{MESSAGES}/{message.id}").status == 404

"""The local provider over a real socket: `python -m handlers.local` as its own process."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from emulators.base import ServerProcess, free_port
from tests.http_client import HttpClient, HttpResult
from tests.openapi import assert_response_conforms

MESSAGES = "/channels/london/messages"


class CheckedClient(HttpClient):
    def request(self, method: str, path: str, **kw) -> HttpResult:  # type: ignore[override]
        result = super().request(method, path, **kw)
        assert_response_conforms(method, path, result.status, result.headers, result.body)
        return result


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    db = tmp_path_factory.mktemp("local") / "board.sqlite"
    port = free_port()
    argv = [sys.executable, "-m", "handlers.local", "--host", "127.0.0.1", "--port", str(port), "--db", str(db)]
    with ServerProcess("overcast-local", argv, port=port, env={"OVERCAST_REGION": "test-1"}) as process:
        yield process


@pytest.fixture
def client(server: ServerProcess) -> CheckedClient:
    return CheckedClient(server.url)


def test_walk_the_whole_api(client: CheckedClient) -> None:
    key = {"Idempotency-Key": "walk-1"}
    first = client.request("POST", MESSAGES, json_body={"author": "ada", "text": "Hello London"}, headers=key)
    again = client.request("POST", MESSAGES, json_body={"author": "ada", "text": "Hello London"}, headers=key)
    assert first.status == again.status == 201 and first.json()["id"] == again.json()["id"]
    assert first.json()["served_by"] == {"provider": "local", "region": "test-1"}
    for i in range(4):
        assert client.request("POST", MESSAGES, json_body={"author": "bob", "text": f"n{i}"}).status == 201
    seen, cursor = [], None
    while True:
        page = client.request("GET", MESSAGES, query={"limit": "2", **({"cursor": cursor} if cursor else {})}).json()
        seen += [m["id"] for m in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 5 and seen[-1] == first.json()["id"]
    message_path = f"{MESSAGES}/{first.json()['id']}"
    assert client.request("GET", message_path).json()["text"] == "Hello London"
    assert client.request("DELETE", message_path).status == 204
    assert client.request("GET", message_path).status == 404
    assert client.request("GET", "/health/deep").json()["store"] == "sqlite"


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"body": b"{oops"}, 400, "invalid_json"),
        ({"json_body": {"author": "ada", "text": "x" * 4001}}, 400, "field_too_long"),
        ({"json_body": {"author": "ada"}}, 400, "missing_field"),
    ],
)
def test_bad_input_stores_nothing(client: CheckedClient, kwargs: dict, status: int, code: str) -> None:
    channel = f"/channels/bad-{code.replace('_', '-')}/messages"
    response = client.request("POST", channel, **kwargs)
    assert response.status == status and response.json()["error"]["code"] == code
    assert client.request("GET", channel).json()["items"] == []


def test_unknown_route_is_a_json_404(server: ServerProcess) -> None:
    response = HttpClient(server.url).request("GET", "/nope")
    assert response.status == 404 and response.json()["error"]["code"] == "route_not_found"

"""End to end on AWS shapes: API Gateway events (HTTP API v2 and REST v1) → handlers.aws.http →
DynamoDB over a real socket (moto server and DynamoDB Local), every answer held to openapi.yaml."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from core import replication
from core.model import Message, Version, new_message_id
from emulators.moto import EMULATOR_ENV
from handlers import aws as handler
from runtime.aws import LambdaContext, http_event
from tests.fixtures.dynamodb import DynamoDBServer
from tests.http_client import HttpResult
from tests.openapi import assert_response_conforms

MESSAGES = "/channels/london/messages"
SECRET = "e2e-secret"


class ApiGatewayClient:
    """Sends requests as API Gateway would deliver them to the Lambda function."""

    def __init__(self, payload: str) -> None:
        self.payload = payload

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResult:
        if json_body is not None:
            body = json.dumps(json_body).encode()
        headers = {"content-type": "application/json", **(headers or {})} if body else dict(headers or {})
        target = path + ("?" + urlencode(query) if query else "")
        if self.payload == "v2":
            event = http_event(method, target, list(headers.items()), body or b"", "api.example.com", "127.0.0.1")
        else:
            event = _rest_event(method, path, query or {}, headers, body or b"")
        result = handler.http(event, LambdaContext("http", 29))
        payload = result["body"].encode() if not result["isBase64Encoded"] else b""
        answer = HttpResult(result["statusCode"], {k.lower(): v for k, v in result["headers"].items()}, payload)
        assert_response_conforms(method, path, answer.status, answer.headers, answer.body)
        return answer


def _rest_event(method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "stage": "dev",
            "path": f"/dev{path}",
            "requestId": f"rest-{time.monotonic_ns()}",
            "httpMethod": method,
        },
        "body": body.decode() if body else None,
        "isBase64Encoded": False,
    }


@pytest.fixture(params=["v2", "v1"])
def api(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    dynamodb_server: DynamoDBServer,
    dynamodb_table: str,
) -> Iterator[ApiGatewayClient]:
    env = {
        **EMULATOR_ENV,
        "OVERCAST_DYNAMODB_TABLE": dynamodb_table,
        "OVERCAST_DYNAMODB_ENDPOINT": dynamodb_server.url,
        "OVERCAST_REGION": "eu-west-1",
        "OVERCAST_PEERS": json.dumps([{"name": "azure", "url": "https://azure.example.com/api"}]),
        "OVERCAST_REPLICATION_SECRET": SECRET,
        "OVERCAST_LOG_LEVEL": "WARNING",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handler.reset()
    yield ApiGatewayClient(request.param)
    handler.reset()


def test_walk_the_whole_api(api: ApiGatewayClient) -> None:
    key = {"Idempotency-Key": "walk-1"}
    first = api.request("POST", MESSAGES, json_body={"author": "ada", "text": "Hello London"}, headers=key)
    again = api.request("POST", MESSAGES, json_body={"author": "ada", "text": "Hello London"}, headers=key)
    assert first.status == again.status == 201 and first.json()["id"] == again.json()["id"]
    assert first.json()["served_by"] == {"provider": "aws", "region": "eu-west-1"}
    reused = api.request("POST", MESSAGES, json_body={"author": "ada", "text": "different"}, headers=key)
    assert reused.status == 422
    for i in range(4):
        assert api.request("POST", MESSAGES, json_body={"author": "bob", "text": f"n{i}"}).status == 201
    seen, cursor = [], None
    while True:
        page = api.request("GET", MESSAGES, query={"limit": "2", **({"cursor": cursor} if cursor else {})}).json()
        seen += [m["id"] for m in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 5 and seen[-1] == first.json()["id"]
    message_path = f"{MESSAGES}/{first.json()['id']}"
    assert api.request("GET", message_path).json()["text"] == "Hello London"
    assert api.request("DELETE", message_path).status == 204
    assert api.request("GET", message_path).status == 404
    retry = api.request("POST", MESSAGES, json_body={"author": "ada", "text": "Hello London"}, headers=key)
    assert retry.status == 409  # the key's message was deleted: no resurrection
    deep = api.request("GET", "/health/deep").json()
    assert deep["store"] == "dynamodb" and deep["status"] == "ok"


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"body": b"{oops"}, 400, "invalid_json"),
        ({"json_body": {"author": "ada", "text": "x" * 4001}}, 400, "field_too_long"),
        ({"json_body": {"author": "ada"}}, 400, "missing_field"),
        ({"json_body": {"author": "ada", "text": "hi", "admin": True}}, 400, "unknown_field"),
    ],
)
def test_bad_input_stores_nothing(api: ApiGatewayClient, kwargs: dict[str, Any], status: int, code: str) -> None:
    response = api.request("POST", MESSAGES, **kwargs)
    assert response.status == status and response.json()["error"]["code"] == code
    assert api.request("GET", MESSAGES).json()["items"] == []


def test_a_signed_peer_batch_is_applied_last_writer_wins(api: ApiGatewayClient) -> None:
    now = int(time.time() * 1000)
    incoming = Message("london", new_message_id(now), "zoë", "from Azure", now, Version(now, 0, "azure"))
    older = Message(**{**incoming.__dict__, "text": "stale", "version": Version(now - 5, 0, "azure")})
    body = replication.encode_batch("azure", [incoming, older])
    headers = replication.signed_headers("azure", SECRET, int(time.time()), body)
    answer = api.request("POST", replication.BATCH_PATH, body=body, headers=headers)
    assert answer.status == 200 and (answer.json()["applied"], answer.json()["ignored"]) == (1, 1)
    got = api.request("GET", f"{MESSAGES}/{incoming.id}").json()
    assert got["text"] == "from Azure" and got["origin"] == "azure"
    forged = replication.signed_headers("azure", "wrong-secret", int(time.time()), body)
    assert api.request("POST", replication.BATCH_PATH, body=body, headers=forged).status == 401


def test_unknown_route_and_method(api: ApiGatewayClient) -> None:
    assert handler.http(http_event("GET", "/nope", [], b"", "h", "127.0.0.1"))["statusCode"] == 404
    wrong = handler.http(http_event("PUT", MESSAGES, [], b"", "h", "127.0.0.1"))
    assert wrong["statusCode"] == 405 and "POST" in wrong["headers"]["allow"]

"""The Powertools reference that `bench aws` measures beside handlers.aws does the same work:
the same DynamoDB calls on a real server, answers a client could use. A reference that failed
or skipped its call would make its ratio meaningless."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.powertools_reference import build_handler
from core.model import new_message_id
from emulators.moto import MotoServer
from runtime.aws import LambdaContext, http_event

pytestmark = pytest.mark.emulator("moto")


@pytest.fixture
def dynamodb_server(moto_server: MotoServer) -> MotoServer:
    return moto_server


def call(handler: Any, method: str, target: str, body: bytes = b"") -> tuple[int, Any]:
    headers = [("content-type", "application/json")] if body else []
    event = http_event(method, target, headers, body, "api.example.com", "127.0.0.1")
    response = handler(event, LambdaContext("http", 29))
    return response["statusCode"], json.loads(response["body"])


def test_the_reference_writes_reads_and_lists_through_dynamodb(dynamodb_client: Any, dynamodb_table: str) -> None:
    handler = build_handler(dynamodb_client, dynamodb_table, new_message_id)
    posted = [
        call(handler, "POST", "/channels/ref/messages", json.dumps({"author": "ada", "text": f"n{i}"}).encode())
        for i in range(3)
    ]
    assert [status for status, _ in posted] == [201, 201, 201]
    first = posted[0][1]
    held = dynamodb_client.get_item(TableName=dynamodb_table, Key={"pk": {"S": "ref"}, "sk": {"S": first["id"]}})
    assert held["Item"]["text"] == {"S": "n0"}
    assert call(handler, "GET", f"/channels/ref/messages/{first['id']}") == (200, first)
    assert call(handler, "GET", "/channels/ref/messages/unknown")[0] == 404
    status, page = call(handler, "GET", "/channels/ref/messages?limit=2")
    assert status == 200 and len(page["items"]) == 2

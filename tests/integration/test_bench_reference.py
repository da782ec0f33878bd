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


def test_the_single_pass_get_answers_what_the_handler_answers(
    moto_server: MotoServer, dynamodb_client: Any, dynamodb_table: str
) -> None:
    """bench/single_pass_reference.py is the measuring stick for what the layers cost: it must do
    the handler's work, so it answers the same bytes, and refuses what the handler refuses."""
    import handlers.aws
    from bench.single_pass_reference import build_aws_get
    from core.errors import NotFound, ValidationError
    from emulators.moto import EMULATOR_ENV

    overcast = handlers.aws.build(
        {
            **EMULATOR_ENV,
            "OVERCAST_DYNAMODB_TABLE": dynamodb_table,
            "OVERCAST_DYNAMODB_ENDPOINT": moto_server.url,
            "OVERCAST_PEERS": "[]",
            "OVERCAST_AUTH_DISABLED": "true",
        }
    )
    overcast.store.client = dynamodb_client  # the fixture's client carries the emulator's credentials
    handlers.aws.overcast.install(overcast)
    try:
        single_pass = build_aws_get(overcast.app, dynamodb_client, dynamodb_table)
        created = overcast.service.post("ref", "ada", "Hello").message
        event = http_event("GET", f"/channels/ref/messages/{created.id}", [], b"", "api.example.com", "127.0.0.1")
        ours = handlers.aws.http(event, LambdaContext("http", 29))
        theirs = single_pass(event, LambdaContext("http", 29))
        assert ours["statusCode"] == theirs["statusCode"] == 200
        assert theirs["body"] == ours["body"]
        assert theirs["headers"]["x-request-id"] == ours["headers"]["x-request-id"]
        missing = http_event("GET", "/channels/ref/messages/" + "0" * 26, [], b"", "api.example.com", "127.0.0.1")
        with pytest.raises(NotFound):
            single_pass(missing, None)
        bad = http_event("GET", "/channels/Ref!/messages/" + "0" * 26, [], b"", "api.example.com", "127.0.0.1")
        with pytest.raises(ValidationError):
            single_pass(bad, None)
    finally:
        handlers.aws.reset()
        overcast.store.close()

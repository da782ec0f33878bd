"""AWS event shapes on recorded events: API Gateway v1/v2 → Request, Response → API Gateway,
DynamoDB Streams records → Messages."""

from __future__ import annotations

import base64
import json

import pytest

from adapters.aws.events import ApiGatewayV1Event, ApiGatewayV2Event, DynamoDBStreamEvent, infer
from adapters.aws.table import item_to_message, message_to_item
from core.errors import ValidationError
from core.http import Response
from core.model import Message, Version, idempotent_message_id
from tests.events import load_event


def test_infer_picks_each_recorded_shape() -> None:
    assert type(infer(load_event("aws", "apigw_v2_post_message"))) is ApiGatewayV2Event
    assert type(infer(load_event("aws", "apigw_v1_post_message"))) is ApiGatewayV1Event
    assert type(infer(load_event("aws", "dynamodb_stream_batch"))) is DynamoDBStreamEvent


@pytest.mark.parametrize(
    "event", [{}, {"Records": []}, {"Records": [{"eventSource": "aws:sqs"}]}, {"version": "2.0"}, []]
)
def test_infer_rejects_events_it_does_not_take(event: object) -> None:
    with pytest.raises(ValidationError):
        infer(event)  # type: ignore[arg-type]


def test_v2_post_becomes_a_neutral_request() -> None:
    event = load_event("aws", "apigw_v2_post_message")
    request = ApiGatewayV2Event(event).to_request()
    assert request.method == "POST" and request.path == "/channels/london/messages"
    assert request.header("Idempotency-Key") == "7c1f0a4e-2b1d-4d8e-9f3a-1d2c3b4a5e6f"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"author": "ada", "text": "Hello London"}
    assert request.request_id == event["requestContext"]["requestId"]
    assert ApiGatewayV2Event(event).raw_event is event


def test_v2_base64_body_is_decoded() -> None:
    request = infer(load_event("aws", "apigw_v2_post_message_base64")).to_request()  # type: ignore[union-attr]
    assert request.json() == {"author": "Zoë", "text": "Hello Portland 🌲"}


def test_v2_invalid_base64_body_is_a_validation_error() -> None:
    event = {**load_event("aws", "apigw_v2_post_message"), "body": "not base64!", "isBase64Encoded": True}
    with pytest.raises(ValidationError):
        ApiGatewayV2Event(event).to_request()


def test_v2_query_takes_the_first_of_repeated_parameters_and_cookies_become_a_header() -> None:
    request = ApiGatewayV2Event(load_event("aws", "apigw_v2_list_messages")).to_request()
    assert request.method == "GET"
    assert request.query == {"limit": "2", "cursor": ""}
    assert request.header("cookie") == "session=abc123; theme=dark"
    assert request.body == b""


def test_v2_named_stage_prefix_is_stripped() -> None:
    request = ApiGatewayV2Event(load_event("aws", "apigw_v2_deep_health_named_stage")).to_request()
    assert request.path == "/health/deep"


def test_v2_default_stage_keeps_the_path() -> None:
    event = load_event("aws", "apigw_v2_post_message")
    event["rawPath"] = "/prod/channels/london/messages"  # $default stage: "prod" is part of the path
    assert ApiGatewayV2Event(event).to_request().path == "/prod/channels/london/messages"


def test_v1_requests() -> None:
    get = ApiGatewayV1Event(load_event("aws", "apigw_v1_get_message")).to_request()
    message_id = idempotent_message_id("london", "7c1f0a4e-2b1d-4d8e-9f3a-1d2c3b4a5e6f")
    assert (get.method, get.path) == ("GET", f"/channels/london/messages/{message_id}")
    assert get.header("x-forwarded-proto") == "https" and get.request_id == "5b8c1f0e-3a2d-4e6f-8a9b-0c1d2e3f4a5b"
    post = ApiGatewayV1Event(load_event("aws", "apigw_v1_post_message")).to_request()
    assert (
        post.json() == {"author": "ada", "text": "Hello London"} and post.header("idempotency-key") == "rest-key-0001"
    )
    listing = ApiGatewayV1Event(load_event("aws", "apigw_v1_list_messages")).to_request()
    assert listing.query == {"limit": "1"}


def test_v1_stage_prefix_is_stripped_where_present() -> None:
    event = load_event("aws", "apigw_v1_list_messages")
    event["path"] = "/dev/channels/london/messages"  # custom-domain mappings can leave the stage in
    assert ApiGatewayV1Event(event).to_request().path == "/channels/london/messages"


def test_v2_response_json_is_text_and_set_cookie_moves_to_cookies() -> None:
    shape = ApiGatewayV2Event(load_event("aws", "apigw_v2_post_message"))
    response = Response.json(201, {"text": "Hello 👋"}, {"location": "/x", "set-cookie": "a=b; Secure"})
    result = shape.to_response(response)
    assert result["statusCode"] == 201 and result["isBase64Encoded"] is False
    assert json.loads(result["body"]) == {"text": "Hello 👋"}
    assert result["headers"] == {"content-type": "application/json", "location": "/x"}
    assert result["cookies"] == ["a=b; Secure"]


def test_binary_and_empty_responses() -> None:
    shape = ApiGatewayV2Event(load_event("aws", "apigw_v2_post_message"))
    binary = shape.to_response(Response(200, {"content-type": "application/octet-stream"}, b"\xff\x00"))
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\xff\x00"
    empty = shape.to_response(Response.empty(204))
    assert empty == {"statusCode": 204, "headers": {}, "body": "", "isBase64Encoded": False}


def test_v1_response_shape() -> None:
    shape = ApiGatewayV1Event(load_event("aws", "apigw_v1_get_message"))
    result = shape.to_response(Response.json(404, {"error": {"code": "not_found", "message": "x"}}))
    assert set(result) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert result["statusCode"] == 404 and json.loads(result["body"])["error"]["code"] == "not_found"


def test_stream_records_expose_keys_sequence_numbers_and_messages() -> None:
    batch = DynamoDBStreamEvent(load_event("aws", "dynamodb_stream_batch"))
    records = list(batch.records)
    assert [r.event_name for r in records] == ["INSERT", "MODIFY", "INSERT", "REMOVE"]
    assert [r.sequence_number for r in records] == [f"10000000001234567890{i}" for i in range(1, 5)]
    inserted = records[0].new_message()
    assert (inserted.channel, inserted.author, inserted.text, inserted.origin) == (
        "london",
        "ada",
        "Hello London",
        "aws",
    )
    tombstone = records[1].new_message()
    assert tombstone.deleted and tombstone.text == "" and tombstone.author == ""
    assert item_to_message(records[1].old_image or {}).text == "Hello Portland 🌲"
    assert records[3].new_image is None
    with pytest.raises(ValidationError):
        records[3].new_message()


def test_stream_record_that_is_not_a_message_is_a_validation_error() -> None:
    records = list(DynamoDBStreamEvent(load_event("aws", "dynamodb_stream_unparseable_record")).records)
    with pytest.raises(ValidationError):
        records[1].new_message()


@pytest.mark.parametrize("deleted", [False, True])
def test_item_codec_round_trips(deleted: bool) -> None:
    message = Message(
        "london", "0" * 26, "ada", "Hello", 1_750_000_000_000, Version(1_750_000_000_000, 3, "aws"), request_digest="d"
    )
    if deleted:
        message = message.tombstone(Version(1_750_000_000_001, 0, "azure"))
    item = message_to_item(message)
    assert all(value != {"S": ""} for value in item.values()), "empty strings are left out"
    assert item_to_message(item) == message


@pytest.mark.parametrize("name", ["dynamodb_stream_recorded_moto", "dynamodb_stream_recorded_dynamodb_local"])
def test_stream_batches_recorded_from_servers_parse(name: str) -> None:
    """Recorded by runtime.aws's poller from each server's Streams API (create, tombstone, a hard
    delete made by hand), in the shape Lambda delivers."""
    event = load_event("aws", name)
    assert type(infer(event)) is DynamoDBStreamEvent
    records = list(DynamoDBStreamEvent(event).records)
    assert [r.event_name for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    created, tombstone = records[0].new_message(), records[1].new_message()
    assert (created.text, created.deleted, tombstone.deleted) == ("Hello London", False, True)
    assert tombstone.id == created.id and tombstone.version > created.version
    assert item_to_message(records[1].old_image or {}) == created
    assert records[2].new_image is None and records[2].keys["sk"] == {"S": created.id}
    assert len({r.sequence_number for r in records}) == 3

"""Hostile input at the core: the API answers a documented 4xx and stores nothing; records that
no store can hold never become Messages; the error path itself can never fail to encode."""

from __future__ import annotations

import json
import math

import pytest

from core.errors import OvercastError, Unavailable, ValidationError
from core.http import Response, parse_json
from core.model import Message, Version, decode_cursor, new_message_id
from tests.fakes import InMemoryMessageStore
from tests.unit.conftest import ApiClient

MESSAGES = "/channels/london/messages"
NOW = 1_700_000_000_000


def snapshot(store: InMemoryMessageStore) -> list[dict]:
    return [m.to_record() for m in store.changes_since(None, 10_000)]


def good_record(**changes: object) -> dict:
    message = Message("london", new_message_id(NOW), "ada", "hi", NOW, Version(NOW, 0, "azure"))
    return {**message.to_record(), **changes}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"author":"a","text":"t","\\ud800":1}', "invalid_unicode"),  # lone surrogate in a key
        (b'{"author":"\\ud800","text":"t"}', "invalid_unicode"),
        (b'{"author":"a","text":"x\\udfffy"}', "invalid_unicode"),
        (b'{"author":"a\\u0007b","text":"t"}', "invalid_field"),  # a control character in author
        (b'{"author":"a\\nb","text":"t"}', "invalid_field"),
        (b'{"author":"a\\u2028b","text":"t"}', "invalid_field"),
        (b"[" * 5000 + b"]" * 5000, "json_too_deep"),
        (b'{"author":' + b"[" * 60_000, "json_too_deep"),
        (b'{"author":"a","text":NaN}', "invalid_json"),
        (b'{"author":"a","text":-Infinity}', "invalid_json"),
        (b'{"author":"a","text":' + b"9" * 5000 + b"}", "invalid_json"),  # past int's digit limit
        (b'{"author":"a","text":"t"', "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
    ],
)
def test_hostile_bodies_get_a_documented_400_and_store_nothing(
    api: ApiClient, store: InMemoryMessageStore, body: bytes, code: str
) -> None:
    before = snapshot(store)
    response = api.post(MESSAGES, body=body)  # held to openapi.yaml: a documented status and code
    assert response.status == 400 and response.json_body()["error"]["code"] == code
    response.body.decode("utf-8")  # strict: the error path always encodes
    assert snapshot(store) == before
    assert api.get(MESSAGES).status == 200  # the channel still lists


def test_error_messages_never_echo_raw_input(api: ApiClient) -> None:
    response = api.post(MESSAGES, body=json.dumps({"author": "a", "text": "t", "x\u202e\n<script>": 1}).encode())
    message = response.json_body()["error"]["message"]
    assert response.status == 400 and message.isascii() and "\n" not in message and "<script>" in message
    assert "\u202e" not in message


@pytest.mark.parametrize("channel", ["nl%0A", "nl\n", "nl\r\nset-cookie:x", "Upper", "a" * 65, "\ud800"])
def test_channels_with_a_trailing_newline_or_controls_are_refused(
    api: ApiClient, store: InMemoryMessageStore, channel: str
) -> None:
    response = api.post(f"/channels/{channel}/messages", json_body={"author": "a", "text": "t"})
    assert response.status == 400 and response.json_body()["error"]["code"] == "invalid_channel"
    assert "location" not in response.headers and snapshot(store) == []


@pytest.mark.parametrize("limit", ["\u00b2", "\u0663", "1\n", "-1", "+5", " 5", "1e2", "9" * 40, ""])
def test_limit_takes_ascii_digits_only(api: ApiClient, limit: str) -> None:
    response = api.get(MESSAGES, query={"limit": limit})
    assert response.status == 400 and response.json_body()["error"]["code"] == "invalid_limit"


def test_a_request_id_with_a_newline_is_not_echoed(api: ApiClient) -> None:
    response = api.get("/health", headers={"x-request-id": "abc\nset-cookie: x"})
    assert "\n" not in response.headers["x-request-id"] and response.headers["x-request-id"] != "abc"


@pytest.mark.parametrize(
    "changes",
    [
        {"created_ms": math.inf},
        {"created_ms": -math.inf},
        {"created_ms": math.nan},
        {"created_ms": 1e13},
        {"created_ms": 10**13},
        {"created_ms": -1},
        {"created_ms": True},
        {"created_ms": 1.5},
        {"created_ms": "12\u0663"},
        {"created_ms": None},
        {"version": good_record()["version"] + "\n"},
        {"version": "\u0661" * 13 + "-000000-aws"},
        {"version": 5},
        {"author": None},
        {"author": 5},
        {"text": ["list"]},
        {"author": "a\ud800"},
        {"text": "x" * 64_001},
        {"text": "nul\x00"},
        {"channel": "london\n"},
        {"id": new_message_id(NOW) + "\n"},
        {"deleted": "false"},
        {"deleted": 2},
        {"deleted": 1},
        {"request_digest": "z" * 65},
        {"request_digest": "a b"},
        {"request_digest": 7},
    ],
)
def test_records_no_store_can_hold_are_refused_with_validation_error_only(changes: dict) -> None:
    with pytest.raises(ValidationError):
        Message.from_record(good_record(**changes))


def test_record_numbers_as_stores_hand_them_back_still_parse() -> None:
    record = good_record()
    assert Message.from_record({**record, "created_ms": float(NOW)}).created_ms == NOW  # JSON/Firestore doubles
    assert Message.from_record({**record, "created_ms": str(NOW)}).created_ms == NOW  # DynamoDB N
    assert Message.from_record({**record, "request_digest": None}).request_digest == ""
    for not_a_record in (None, [], "x", 5):
        with pytest.raises(ValidationError):
            Message.from_record(not_a_record)  # type: ignore[arg-type]


def test_parse_json_raises_validation_error_only() -> None:
    for body in (b"[" * 100_000, b'{"a":' * 50_000, b'"\\ud800"', b"1" * 10_000, b"NaN", b"\x80"):
        with pytest.raises(ValidationError):
            parse_json(body)
    assert parse_json(b'{"a": "' + b"[" * 100 + b'"}') == {"a": "[" * 100}  # brackets in strings do not nest


def test_a_cursor_of_other_scripts_digits_is_refused() -> None:
    import base64

    cursor = base64.urlsafe_b64encode(("\u0661" * 13 + "~" + new_message_id(NOW)).encode()).decode()
    with pytest.raises(ValidationError):
        decode_cursor(cursor)


def test_a_response_with_a_lone_surrogate_still_encodes() -> None:
    response = Response.json(200, {"text": "old \ud800 data"})
    assert json.loads(response.body) == {"text": "old \ud800 data"}
    response.body.decode("ascii")


@pytest.mark.parametrize(
    "error",
    [
        Unavailable(
            "DynamoDB table 't': AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/x/y is not "
            "authorized to perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/t"
        ),
        Unavailable("<!DOCTYPE html><html><title>500 Internal Server Error</title>moto.example</html>"),
        OvercastError("internal: Traceback (most recent call last): secret"),
    ],
)
def test_5xx_bodies_carry_a_generic_message_and_the_stable_code(error: OvercastError) -> None:
    body = Response.from_error(error, "req-1").json_body()["error"]
    assert body["code"] == error.code and body["request_id"] == "req-1"
    for leak in ("arn:", "123456789012", "<html", "DOCTYPE", "moto", "Traceback", "secret"):
        assert leak not in body["message"]

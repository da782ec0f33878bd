"""OpenWhisk web action and Cloudant change shapes <-> core, on the recorded payloads."""

from __future__ import annotations

import base64
import json

import pytest

from adapters.openwhisk.events import ChangeBatch, parse_doc_id, to_messages, to_request, to_response
from core.errors import ValidationError
from core.http import Response
from tests.events import load_event


def test_post_with_base64_json_body() -> None:
    request = to_request(load_event("openwhisk", "http_post_message"))
    assert request.method == "POST"
    assert request.path == "/channels/london/messages"
    assert request.header("idempotency-key") == "order-7"
    assert request.json() == {"author": "ada", "text": "Hello London"}


def test_get_with_raw_query_takes_the_first_value() -> None:
    request = to_request(load_event("openwhisk", "http_list_messages"))
    assert (request.method, request.path, request.body) == ("GET", "/channels/london/messages", b"")
    assert request.query == {"limit": "2"}


def test_client_request_id_wins_over_the_activation_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("__OW_ACTIVATION_ID", "a1b2c3")
    assert to_request(load_event("openwhisk", "http_health_deep")).request_id == ""
    assert to_request(load_event("openwhisk", "http_list_messages")).request_id == "a1b2c3"


def test_text_bodies_are_plain_and_unencoded_json_is_taken_as_is() -> None:
    text = to_request({"__ow_method": "post", "__ow_headers": {"content-type": "text/plain"}, "__ow_body": "aGk="})
    assert text.body == b"aGk="
    passthrough = to_request(
        {"__ow_method": "post", "__ow_headers": {"content-type": "application/json"}, "__ow_body": '{"a": 1}'}
    )
    assert json.loads(passthrough.body) == {"a": 1}
    assert to_request({"__ow_method": "get", "__ow_path": "health"}).path == "/health"


def test_a_non_web_invocation_is_refused() -> None:
    with pytest.raises(ValidationError):
        to_request({"cron": "* * * * *"})


def test_responses_keep_json_as_text_and_encode_binary() -> None:
    json_result = to_response(Response.json(201, {"ok": True}, {"retry-after": "1"}))
    assert json_result == {
        "statusCode": 201,
        "headers": {"content-type": "application/json", "retry-after": "1"},
        "body": '{"ok":true}',
    }
    binary = to_response(Response(200, {"content-type": "application/octet-stream"}, b"\x00\xff"))
    assert base64.b64decode(binary["body"]) == b"\x00\xff"
    assert to_response(Response.empty())["body"] == ""


def test_changes_feed_batch_skips_design_documents_and_keeps_tombstones() -> None:
    batch = ChangeBatch.from_event(load_event("openwhisk", "changes_feed_batch"))
    assert [m.channel for m in batch.messages] == ["london", "portland"]
    assert batch.messages[1].deleted and batch.messages[1].origin == "aws"
    assert batch.skipped == ["_design/overcast"] and batch.to_read == []
    assert batch.last_seq and batch.last_seq.startswith("3-")
    assert to_messages(load_event("openwhisk", "changes_feed_batch")) == batch.messages


def test_trigger_event_names_the_document_to_read() -> None:
    batch = ChangeBatch.from_event(load_event("openwhisk", "trigger_cloudant_change"))
    assert batch.messages == [] and batch.to_read == [("london", "01jd7k3q8m4x2v9c5t6b7n8p0r")]


def test_hard_deletes_and_foreign_documents_are_dropped_not_retried() -> None:
    event = {
        "results": [
            {"id": "london:01jd7k3q8m4x2v9c5t6b7n8p0r", "seq": "4", "deleted": True, "changes": [{"rev": "3-x"}]},
            {"id": "notes", "seq": "5", "changes": [{"rev": "1-y"}], "doc": {"_id": "notes", "hello": 1}},
        ],
        "last_seq": "5",
    }
    batch = ChangeBatch.from_event(event)
    assert batch.messages == [] and batch.skipped == ["london:01jd7k3q8m4x2v9c5t6b7n8p0r", "notes"]
    with pytest.raises(ValidationError):
        ChangeBatch.from_event({"cron": "* * * * *"})
    with pytest.raises(ValidationError):
        parse_doc_id("no-colon")

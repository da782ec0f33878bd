"""The reported reproducers, each on every provider: the same hostile request through each
provider's own HTTP entrypoint (its event shape, its mapping, its handler) and the local app, and
the same hostile change record through each provider's change entrypoint.

The apps are the real core over the in-memory store (see tests/fuzz/harness.py); the local
server's socket-level reproducers are in tests/e2e/test_local_server_hardening.py.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

import pytest

from adapters.local.http_server import to_request as local_request
from core.bootstrap import Overcast
from tests.events import load_event
from tests.fuzz.harness import (
    ChangeAnswer,
    HttpAnswer,
    PeerStub,
    _aws_changes,
    _aws_http,
    _azure_changes,
    _azure_http,
    _gcp_changes,
    _gcp_http,
    _openwhisk_changes,
    _openwhisk_http,
    install,
    make_app,
)
from tests.openapi import assert_response_conforms

PROVIDERS = ["aws", "azure", "gcp", "openwhisk", "local"]
CHANGE_PROVIDERS = ["aws", "azure", "gcp", "openwhisk"]


# -- one hostile HTTP request, in each provider's event shape -----------------------------------


def http_event(provider: str, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> Any:
    """``path`` as the client sent it (percent-encoded); each platform decodes it its own way."""
    decoded = unquote(path)
    if provider == "aws":
        return {
            "version": "2.0",
            "rawPath": path,
            "rawQueryString": query,
            "headers": headers,
            "requestContext": {"http": {"method": method}, "stage": "$default", "requestId": "repro"},
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }
    if provider == "azure":
        return {
            "method": method,
            "url": f"https://func.example.net/api{path}" + (f"?{query}" if query else ""),
            "headers": headers,
            "query": dict(kv.split("=", 1) for kv in query.split("&") if "=" in kv),
            "params": {"path": decoded.lstrip("/")},
            "body": {"type": "bytes", "value": body.decode()},
        }
    if provider == "gcp":
        return {"method": method, "path": path, "query_string": query, "headers": headers, "body": body.decode()}
    if provider == "openwhisk":
        return {
            "__ow_method": method.lower(),
            "__ow_path": decoded,
            "__ow_headers": headers,
            "__ow_query": query,
            "__ow_body": base64.b64encode(body).decode(),
        }
    raise AssertionError(provider)


HTTP_CALLS: dict[str, Callable[[Any, Any], HttpAnswer]] = {
    "aws": _aws_http,
    "azure": _azure_http,
    "gcp": _gcp_http,
    "openwhisk": _openwhisk_http,
}


class Cloud:
    """One provider's HTTP entrypoint over a fresh app."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.app: Overcast = make_app(provider, PeerStub("accept"))

    def request(self, method: str, path: str, query: str = "", body: bytes = b"", **headers: str) -> HttpAnswer:
        headers = {"content-type": "application/json", **headers} if body else headers
        if self.provider == "local":
            target = path + (f"?{query}" if query else "")
            response = self.app.app.handle(local_request(method, target, headers, body))
            answer = HttpAnswer(response.status, response.headers, response.body)
        else:
            module = importlib.import_module(f"handlers.{self.provider}")
            install(module, self.app)
            try:
                answer = HTTP_CALLS[self.provider](
                    module, http_event(self.provider, method, path, query, headers, body)
                )
            finally:
                install(module, None)
        lowered = {k.lower(): v for k, v in answer.headers.items()}
        if unquote(path).startswith("/channels/") and "\n" not in unquote(path):
            assert_response_conforms(method, unquote(path), answer.status, lowered, answer.body)
        return HttpAnswer(answer.status, lowered, answer.body)

    def records(self) -> list[dict[str, Any]]:
        return [m.to_record() for m in self.app.store.changes_since(None, 10_000)]


def error_code(answer: HttpAnswer) -> str:
    return json.loads(answer.body.decode("utf-8"))["error"]["code"]


@pytest.fixture(params=PROVIDERS)
def cloud(request: pytest.FixtureRequest) -> Cloud:
    return Cloud(request.param)


MESSAGES = "/channels/london/messages"


def test_a_lone_surrogate_in_a_json_key_is_a_400_that_encodes(cloud: Cloud) -> None:
    answer = cloud.request("POST", MESSAGES, body=b'{"author":"a","text":"t","\\ud800":1}')
    assert answer.status == 400 and error_code(answer) == "invalid_unicode" and cloud.records() == []


@pytest.mark.parametrize("field", ["author", "text"])
def test_a_lone_surrogate_in_author_or_text_is_refused_and_the_channel_stays_readable(cloud: Cloud, field: str) -> None:
    fields = {"author": "a", "text": "t", field: "x\ud800y"}
    body = json.dumps(fields).encode()  # json.dumps writes the lone surrogate as \ud800
    answer = cloud.request("POST", MESSAGES, body=body)
    assert answer.status == 400 and error_code(answer) == "invalid_unicode" and cloud.records() == []
    assert cloud.request("GET", MESSAGES).status == 200


def test_a_newline_in_the_channel_is_refused_and_never_reaches_a_header(cloud: Cloud) -> None:
    answer = cloud.request("POST", "/channels/nl%0A/messages", body=b'{"author":"a","text":"t"}')
    assert answer.status == 400 and error_code(answer) == "invalid_channel"
    assert "location" not in answer.headers and cloud.records() == []


def test_a_body_nested_5000_deep_is_a_400(cloud: Cloud) -> None:
    answer = cloud.request("POST", MESSAGES, body=b"[" * 5000 + b"]" * 5000)
    assert answer.status == 400 and error_code(answer) == "json_too_deep" and cloud.records() == []


@pytest.mark.parametrize("limit", ["%C2%B2", "%D9%A3", "1%0A"])
def test_a_limit_of_non_ascii_digits_is_a_400(cloud: Cloud, limit: str) -> None:
    answer = cloud.request("GET", MESSAGES, query=f"limit={limit}")
    assert answer.status == 400 and error_code(answer) == "invalid_limit"


def test_a_good_request_still_works(cloud: Cloud) -> None:
    answer = cloud.request("POST", MESSAGES, body=b'{"author":"ada","text":"Hello London"}')
    assert answer.status == 201 and answer.headers["location"].startswith(MESSAGES + "/")
    assert len(cloud.records()) == 1


# -- wrong-typed fields in direct invocations --------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "event"),
    [
        ("aws", {"version": "2.0", "rawPath": "/health", "headers": ["x"], "requestContext": {"http": {"method": 5}}}),
        ("aws", {"version": "2.0", "rawPath": 7, "requestContext": "x"}),
        ("aws", {"httpMethod": "POST", "path": MESSAGES, "multiValueHeaders": {"a": 5}, "body": 12}),
        ("aws", None),
        ("aws", ["not", "an", "event"]),
        ("openwhisk", {"__ow_method": 5, "__ow_headers": "x"}),
        ("openwhisk", {"__ow_method": "post", "__ow_path": ["x"], "__ow_headers": {"a": 1}, "__ow_body": 3}),
        ("openwhisk", None),
        ("azure", {"method": "GET", "url": 5}),
        ("azure", None),
        ("gcp", {"method": None}),
    ],
)
def test_wrong_typed_direct_invocations_get_a_well_formed_4xx(provider: str, event: Any) -> None:
    module = importlib.import_module(f"handlers.{provider}")
    install(module, make_app(provider, PeerStub("accept")))
    try:
        answer = HTTP_CALLS[provider](module, event)
    finally:
        install(module, None)
    assert 400 <= answer.status < 500 and error_code(answer)


# -- hostile change records ----------------------------------------------------------------------


def change_event(provider: str, created_ms: Any = None, text: str | None = None) -> Any:
    """The provider's recorded change delivery with its first message record altered."""
    if provider == "aws":
        event = copy.deepcopy(load_event("aws", "dynamodb_stream_batch"))
        image = event["Records"][0]["dynamodb"]["NewImage"]
        if created_ms is not None:
            image["created_ms"] = {"N": str(created_ms)}
        if text is not None:
            image["text"] = {"S": text}
        return event
    if provider == "azure":
        documents = copy.deepcopy(load_event("azure", "cosmos_change_feed"))
        if created_ms is not None:
            documents[0]["created_ms"] = created_ms
        if text is not None:
            documents[0]["text"] = text
        return documents
    if provider == "gcp":
        fixture = copy.deepcopy(load_event("gcp", "legacy_document_write_created"))
        fields = fixture["body"]["data"]["value"]["fields"]
        if created_ms is not None:
            fields["created_ms"] = (
                {"doubleValue": "Infinity" if created_ms > 0 else "-Infinity"}
                if isinstance(created_ms, float) and math.isinf(created_ms)
                else {"integerValue": str(created_ms)}
            )
        if text is not None:
            fields["text"] = {"stringValue": text}
        return fixture
    if provider == "openwhisk":
        event = copy.deepcopy(load_event("openwhisk", "changes_feed_batch"))
        doc = next(row["doc"] for row in event["results"] if "created_ms" in row.get("doc", {}))
        if created_ms is not None:
            doc["created_ms"] = created_ms
        if text is not None:
            doc["text"] = text
        return event
    raise AssertionError(provider)


CHANGE_CALLS: dict[str, Callable[[Any, Any], ChangeAnswer]] = {
    "aws": _aws_changes,
    "azure": _azure_changes,
    "gcp": _gcp_changes,
    "openwhisk": _openwhisk_changes,
}


def deliver(provider: str, event: Any, mode: str) -> tuple[ChangeAnswer, PeerStub]:
    module = importlib.import_module(f"handlers.{provider}")
    transport = PeerStub(mode)
    install(module, make_app(provider, transport))
    try:
        return CHANGE_CALLS[provider](module, json.loads(json.dumps(event))), transport
    finally:
        install(module, None)


POISON = {
    "infinite created_ms": {"created_ms": math.inf},
    "negative infinite created_ms": {"created_ms": -math.inf},
    "created_ms past 13 digits": {"created_ms": 10**13},
    "created_ms over 64 bits": {"created_ms": 10**30},
    "a document over 1 MiB": {"text": "x" * (1024 * 1024 + 1)},
}


@pytest.mark.parametrize(
    ("provider", "poison"),
    # DynamoDB's N type has no infinity: the out-of-range cases are the stream's.
    [(p, name) for p in CHANGE_PROVIDERS for name in sorted(POISON) if not (p == "aws" and "infinite" in name)],
)
def test_a_poison_change_record_is_acknowledged_not_retried(provider: str, poison: str) -> None:
    """Even with the peer down, the poison record is not reported for retry (the healthy records
    of the same delivery are, on AWS by their own sequence numbers)."""
    event = change_event(provider, **POISON[poison])
    answer, _ = deliver(provider, event, "accept")
    assert answer.retried == [] and answer.raised is None
    answer, _ = deliver(provider, event, "down")
    if provider == "aws":
        poisoned = event["Records"][0]["dynamodb"]["SequenceNumber"]
        assert poisoned not in answer.retried and answer.retried  # the rest of the batch is retried
    elif provider == "gcp":  # one document per event: the poison one is the whole delivery
        assert answer.retried == []


def test_a_stream_record_without_a_sequence_number_never_fails_the_whole_batch() -> None:
    event = copy.deepcopy(load_event("aws", "dynamodb_stream_batch"))
    del event["Records"][0]["dynamodb"]["SequenceNumber"]
    answer, _ = deliver("aws", event, "down")
    assert "" not in answer.retried and answer.retried  # the other records are still retried


@pytest.mark.parametrize("records", [{"a": 1}, "Records", 5, [1, "x", None], [{"dynamodb": 5}]])
def test_malformed_stream_records_are_acknowledged(records: Any) -> None:
    answer, _ = deliver("aws", {"Records": records}, "down")
    assert answer.retried == []


@pytest.mark.parametrize("provider", CHANGE_PROVIDERS)
def test_an_unmutated_delivery_still_replicates(provider: str) -> None:
    answer, transport = deliver(provider, change_event(provider), "accept")
    assert answer.retried == [] and transport.pushes >= 1


def test_quote_is_what_the_reproducers_send() -> None:  # keeps the %-encoded forms honest
    assert quote("nl\n") == "nl%0A" and quote("\u00b2") == "%C2%B2"

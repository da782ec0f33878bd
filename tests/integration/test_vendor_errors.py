"""A vendor's words never reach a caller: an AccessDenied naming ARNs and an emulator's HTML error
page end up in the log, under the request id, and the response body carries only the stable code
and a generic sentence — on every provider.

AWS runs its real store (botocore) against a loopback server that answers as DynamoDB does when a
role lacks a permission, and as moto's Flask server does when it fails (an HTML page). The other
providers run their HTTP entrypoints over a store failing with the same words, as each adapter's
translation carries them (the vendor's message inside the core error).
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.aws.store import DynamoDBMessageStore, make_client
from core.bootstrap import Overcast, bootstrap
from core.errors import ConfigurationError, Unavailable
from core.model import HybridLogicalClock
from core.settings import Settings
from tests.fakes import InMemoryMessageStore
from tests.fuzz.harness import PeerStub, install
from tests.fuzz.test_reproducers import HTTP_CALLS, http_event

ACCOUNT = "123456789012"
ACCESS_DENIED = (
    f"User: arn:aws:sts::{ACCOUNT}:assumed-role/overcast-prod-lambda/overcast-prod-http is not authorized to "
    f"perform: dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/overcast-prod-messages "
    "because no identity-based policy allows the dynamodb:PutItem action"
)
# What moto's server (Flask/Werkzeug) answers when a handler fails.
MOTO_HTML = (
    "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>\n"
    "<p>The server encountered an internal error and was unable to complete your request. Either the server is "
    "overloaded or there is an error in the application.</p>\n<!-- moto 5.2.5 at dynamodb.us-east-1.internal -->"
)
LEAKS = ("arn:", ACCOUNT, "overcast-prod", "<html", "<!doctype", "Internal Server Error", "moto", "dynamodb.us-east-1")


class VendorStub(BaseHTTPRequestHandler):
    """Answers every DynamoDB call with ``server.answer`` = (status, content type, body)."""

    server: Any

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        status, content_type, body = self.server.answer
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def vendor() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), VendorStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def settings(provider: str) -> Settings:
    return Settings.from_env(
        {"OVERCAST_PROVIDER": provider, "OVERCAST_AUTH_DISABLED": "true", "OVERCAST_LOG_LEVEL": "INFO"}
    )


def call_http(provider: str, app: Overcast, method: str, path: str, body: bytes = b"") -> tuple[int, dict, str]:
    module = importlib.import_module(f"handlers.{provider}")
    headers = {"content-type": "application/json"} if body else {}
    install(module, app)
    try:
        answer = HTTP_CALLS[provider](module, http_event(provider, method, path, "", headers, body))
    finally:
        install(module, None)
    return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.body.decode("utf-8")


def assert_private(status: int, headers: dict, body: str, code: str) -> None:
    assert status == 503 and int(headers["retry-after"]) >= 1, (status, body)
    error = json.loads(body)["error"]
    assert error["code"] == code, error
    for leak in LEAKS:
        assert leak not in body, f"{leak!r} reached the response: {body}"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (
            (
                400,
                "application/x-amz-json-1.0",
                json.dumps(
                    {"__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException", "message": ACCESS_DENIED}
                ).encode(),
            ),
            "misconfigured",
        ),
        ((500, "text/html; charset=utf-8", MOTO_HTML.encode()), "unavailable"),
    ],
    ids=["access-denied", "moto-html-page"],
)
def test_aws_store_errors_stay_in_the_log(
    vendor: ThreadingHTTPServer, answer: tuple, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    vendor.answer = answer  # type: ignore[attr-defined]
    host, port = vendor.server_address[:2]
    client = make_client("us-east-1", f"http://{host}:{port}", aws_access_key_id="x", aws_secret_access_key="y")
    app = bootstrap(settings("aws"), DynamoDBMessageStore(client, "overcast-prod-messages"), PeerStub("accept"))
    capsys.readouterr()
    request_ids = set()
    for method, path, body in (
        ("POST", "/channels/london/messages", b'{"author":"ada","text":"Hello London"}'),
        ("GET", "/channels/london/messages", b""),
        ("GET", "/health/deep", b""),
    ):
        status, headers, text = call_http("aws", app, method, path, body)
        assert_private(status, headers, text, code)
        request_ids.add(headers["x-request-id"])
    # The detail is in the log, on the line of the request that failed (the caller's request id).
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    details = [line for line in logged if line.get("code") == code]
    assert details and {line["request_id"] for line in details} == request_ids
    assert all(("arn:aws" in line["error"]) or ("moto" in line["error"]) for line in details), details


class FailingStore(InMemoryMessageStore):
    """A store whose every call fails with ``error`` (as an adapter translates a vendor failure)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def _check(self) -> None:
        raise self.error


@pytest.mark.parametrize("provider", ["aws", "azure", "gcp", "openwhisk"])
@pytest.mark.parametrize(
    "error",
    [
        ConfigurationError(f"store 'messages': AccessDeniedException: {ACCESS_DENIED}"),
        Unavailable(f"store 'messages': 500: {MOTO_HTML}", retry_after=1),
    ],
    ids=["access-denied", "moto-html-page"],
)
def test_no_provider_puts_vendor_words_in_a_response(provider: str, error: Exception) -> None:
    app = bootstrap(settings(provider), FailingStore(error), PeerStub("accept"), HybridLogicalClock(provider))
    code = "misconfigured" if isinstance(error, ConfigurationError) else "unavailable"
    for method, path, body in (
        ("POST", "/channels/london/messages", b'{"author":"ada","text":"Hello London"}'),
        ("GET", "/channels/london/messages", b""),
        ("GET", "/channels/london/messages/" + "0" * 26, b""),
    ):
        status, headers, text = call_http(provider, app, method, path, body)
        assert_private(status, headers, text, code)

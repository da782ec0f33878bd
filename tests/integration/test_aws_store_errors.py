"""DynamoDBMessageStore's error translation, over real sockets: a server that answers every call
with one DynamoDB error (as DynamoDB's JSON protocol sends it), through botocore's real parsing
and retries; and moto server for a missing table."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adapters.aws.store import DynamoDBMessageStore, make_client
from core.errors import AlreadyExists, ConfigurationError, Unavailable
from emulators.moto import EMULATOR_CREDENTIALS, EMULATOR_REGION, MotoServer
from tests.contract.store_suite import make_message


class FailingDynamoDB:
    """Answers every request with ``status`` and a DynamoDB error of type ``code``."""

    def __init__(self, status: int, code: str) -> None:
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                outer.requests += 1
                body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": f"{code} (test)"})
                self.send_response(status)
                self.send_header("content-type", "application/x-amz-json-1.0")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def store(self) -> DynamoDBMessageStore:
        return DynamoDBMessageStore(make_client(EMULATOR_REGION, self.url, **EMULATOR_CREDENTIALS), "messages")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def failing() -> Iterator[Any]:
    servers: list[FailingDynamoDB] = []

    def start(status: int, code: str) -> FailingDynamoDB:
        servers.append(FailingDynamoDB(status, code))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.mark.parametrize(
    "status, code",
    [
        (400, "ProvisionedThroughputExceededException"),
        (400, "RequestLimitExceeded"),
    ],
)
def test_throttling_is_unavailable_with_a_retry_hint_after_botocore_retries(
    failing: Any, status: int, code: str
) -> None:
    server = failing(status, code)
    with pytest.raises(Unavailable) as caught:
        server.store().create(make_message())
    assert caught.value.code == "store_throttled" and caught.value.retry_after >= 1
    assert not isinstance(caught.value, ConfigurationError)
    assert isinstance(caught.value.__cause__, Exception) and code in str(caught.value.__cause__)
    assert server.requests == 3, "standard retry mode: three attempts, then give up"


@pytest.mark.parametrize("status, code", [(500, "InternalServerError"), (503, "ServiceUnavailable")])
def test_server_errors_are_unavailable(failing: Any, status: int, code: str) -> None:
    store = failing(status, code).store()
    for call in (lambda: store.get("london", make_message().id), lambda: store.list("london", 10), store.ping):
        with pytest.raises(Unavailable) as caught:
            call()
        assert caught.value.code == "unavailable"


@pytest.mark.parametrize("code", ["AccessDeniedException", "UnrecognizedClientException", "ValidationException"])
def test_permission_and_schema_errors_are_configuration_errors(failing: Any, code: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        failing(400, code).store().put_if_newer(make_message())
    assert code in caught.value.message


def test_refused_connection_is_unavailable_quickly() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    store = DynamoDBMessageStore(make_client(EMULATOR_REGION, f"http://127.0.0.1:{port}", **EMULATOR_CREDENTIALS), "t")
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        store.ping()
    assert not isinstance(caught.value, ConfigurationError) and time.monotonic() - started < 5


def test_empty_table_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        DynamoDBMessageStore(object(), "")


@pytest.mark.emulator("moto")
def test_missing_table_is_a_configuration_error_naming_it(moto_server: MotoServer) -> None:
    client = make_client(EMULATOR_REGION, moto_server.url, **EMULATOR_CREDENTIALS)
    store = DynamoDBMessageStore(client, "no-such-table")
    for call in (store.ping, lambda: store.create(make_message()), lambda: store.changes_since(None, 10)):
        with pytest.raises(ConfigurationError) as caught:
            call()
        assert "no-such-table" in caught.value.message and caught.value.code == "misconfigured"


@pytest.mark.emulator("moto")
def test_conditional_failure_is_already_exists_not_an_error(moto_server: MotoServer) -> None:
    from adapters.aws.table import create_table

    client = make_client(EMULATOR_REGION, moto_server.url, **EMULATOR_CREDENTIALS)
    create_table(client, "errors-conditional")
    try:
        store = DynamoDBMessageStore(client, "errors-conditional")
        message = make_message()
        store.create(message)
        with pytest.raises(AlreadyExists) as caught:
            store.create(message)
        assert caught.value.__cause__ is not None  # raised from the botocore exception
    finally:
        client.delete_table(TableName="errors-conditional")

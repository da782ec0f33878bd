"""The local server (`make serve`) against a hostile client, over real sockets: malformed framing
gets a JSON 4xx and a closed connection, never a hung worker; every method gets JSON; bursts are
not reset; and what each connection opens is closed (threads, SQLite connections, descriptors)."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.local.http_server import LocalHttpServer
from core.bootstrap import Overcast
from handlers.local import build
from tests.openapi import assert_response_conforms

MESSAGES = "/channels/london/messages"
WORKERS = 8


@pytest.fixture
def overcast(tmp_path: Path) -> Iterator[Overcast]:
    app = build(tmp_path / "board.sqlite")
    yield app
    app.store.close()


@pytest.fixture
def server(overcast: Overcast) -> Iterator[LocalHttpServer]:
    server = LocalHttpServer(overcast.app, "127.0.0.1", 0, workers=WORKERS, timeout_s=1.0).start_background()
    try:
        yield server
    finally:
        server.stop()


def raw(server: LocalHttpServer, data: bytes, *, read_timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; read one response (status, headers, body) until the server closes."""
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=read_timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                pytest.fail(f"no answer within {read_timeout} s to {data[:60]!r}")
            if not chunk:
                break
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def json_error(status: int, headers: dict[str, str], body: bytes) -> str:
    assert headers["content-type"].startswith("application/json"), (status, body[:200])
    return json.loads(body)["error"]["code"]


def store_count(overcast: Overcast) -> int:
    return len(overcast.store.changes_since(None, 10_000))


@pytest.mark.parametrize("length", ["abc", "-1", "1.5", "+3", "0x10", "\u0663", "3, 4", " "])
def test_a_malformed_content_length_is_a_json_400_and_the_connection_closes(
    server: LocalHttpServer, overcast: Overcast, length: str
) -> None:
    request = f"POST {MESSAGES} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{{}}".encode()
    status, headers, body = raw(server, request)
    assert status == 400 and json_error(status, headers, body) == "invalid_request"
    assert headers.get("connection") == "close" and store_count(overcast) == 0


def test_two_different_content_lengths_are_refused(server: LocalHttpServer) -> None:
    request = f"POST {MESSAGES} HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}".encode()
    assert raw(server, request)[0] == 400


def test_a_body_larger_than_any_route_takes_is_refused_unread(server: LocalHttpServer) -> None:
    request = f"POST {MESSAGES} HTTP/1.1\r\nContent-Length: 999999999999\r\n\r\n".encode()
    status, headers, body = raw(server, request)
    assert status == 413 and json_error(status, headers, body) == "payload_too_large"


def test_chunked_bodies_get_a_json_411(server: LocalHttpServer) -> None:
    request = f"POST {MESSAGES} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n".encode()
    status, headers, body = raw(server, request)
    assert status == 411 and json_error(status, headers, body) == "length_required"


def test_a_client_that_stops_sending_frees_its_worker(server: LocalHttpServer) -> None:
    """Content-Length promises more than arrives: the read times out (1 s here) and the worker
    serves others again. Every worker stalled at once still recovers."""
    host, port = server.server_address[:2]
    stalled = [socket.create_connection((host, port)) for _ in range(WORKERS + 2)]
    try:
        for sock in stalled:
            sock.sendall(f"POST {MESSAGES} HTTP/1.1\r\nContent-Length: 100\r\n\r\n{{".encode())
        started = time.monotonic()
        status, _, _ = raw(server, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n", read_timeout=10)
        assert status == 200 and time.monotonic() - started < 5
    finally:
        for sock in stalled:
            sock.close()


@pytest.mark.parametrize(
    ("method", "status"), [("TRACE", 405), ("PROPFIND", 405), ("CONNECT", 405), ("OPTIONS", 405), ("BREW", 405)]
)
def test_every_method_gets_a_json_answer(server: LocalHttpServer, method: str, status: int) -> None:
    got, headers, body = raw(server, f"{method} {MESSAGES} HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
    assert got == status and json_error(got, headers, body) == "method_not_allowed" and "allow" in headers
    got, headers, body = raw(server, f"{method} /nowhere HTTP/1.1\r\nConnection: close\r\n\r\n".encode())
    assert got == 404 and json_error(got, headers, body) == "route_not_found"


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400, "invalid_request"),
        (b"GET /health\r\n\r\n", 505, "http_version_not_supported"),  # HTTP/0.9
        (b"GET /health HTTP/1.1 extra\r\n\r\n", 400, "invalid_request"),
        (b"GET /health HTTP/9.9\r\n\r\n", 505, "http_version_not_supported"),
        (b"GET /health HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n", 431, None),
        (b"GET /health HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n", 431, "header_too_large"),
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "uri_too_long"),
        (b"G\x00T /health HTTP/1.1\r\n\r\n", 400, "invalid_request"),
    ],
)
def test_the_stdlibs_own_refusals_are_json(
    server: LocalHttpServer, request_bytes: bytes, status: int, code: str | None
) -> None:
    got, headers, body = raw(server, request_bytes)
    assert got == status and (code is None or json_error(got, headers, body) == code)
    assert b"<html" not in body.lower() and b"<!doctype" not in body.lower()


def test_a_percent_encoded_newline_in_the_channel_is_refused_without_a_location(
    server: LocalHttpServer, overcast: Overcast
) -> None:
    body = b'{"author":"a","text":"t"}'
    request = f"POST /channels/nl%0A/messages HTTP/1.1\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    status, headers, answer = raw(server, request.encode() + body)
    assert status == 400 and json_error(status, headers, answer) == "invalid_channel"
    assert "location" not in headers and store_count(overcast) == 0


def test_a_burst_of_new_connections_is_not_reset(server: LocalHttpServer, overcast: Overcast) -> None:
    """400 posts at 16 concurrent connections, each its own connection: the stdlib's listen
    backlog of 5 reset some of them; every one is answered now."""
    host, port = server.server_address[:2]

    def post(i: int) -> int:
        connection = http.client.HTTPConnection(host, port, timeout=20)
        try:
            payload = json.dumps({"author": "ada", "text": f"burst {i}"})
            connection.request("POST", MESSAGES, payload, {"content-type": "application/json"})
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(post, range(400)))
    assert statuses == [201] * 400 and store_count(overcast) == 400


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to count descriptors")
def test_what_each_connection_opens_is_closed(server: LocalHttpServer) -> None:
    """2,000 connections: threads and open descriptors stay bounded by the worker pool (one
    thread per connection used to open a SQLite connection each and never close it: 2,000
    connections left 4,007 descriptors open)."""
    host, port = server.server_address[:2]
    for _ in range(50):  # warm every worker's SQLite connection
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.request("GET", MESSAGES)
        connection.getresponse().read()
        connection.close()
    fds, threads = _open_fds(), threading.active_count()
    for i in range(2000):
        connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.request("GET", MESSAGES if i % 2 else "/health/deep")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        connection.close()
    time.sleep(0.2)
    assert _open_fds() <= fds + WORKERS * 3, "descriptors grow with connections"
    assert threading.active_count() <= threads + 2


def test_responses_still_conform_over_keep_alive(server: LocalHttpServer) -> None:
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        for i in range(5):
            payload = json.dumps({"author": "ada", "text": f"k{i}"})
            connection.request("POST", MESSAGES, payload, {"content-type": "application/json"})
            response = connection.getresponse()
            body = response.read()
            headers = {k.lower(): v for k, v in response.getheaders()}
            assert_response_conforms("POST", MESSAGES, response.status, headers, body)
    finally:
        connection.close()


@pytest.mark.parametrize(
    "header_line",
    [b"NoColonHere", b"Bad Name: v", b"X-Name : v", b" folded-continuation"],
)
def test_a_malformed_header_line_is_a_json_400(server: LocalHttpServer, header_line: bytes) -> None:
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n" + header_line + b"\r\n\r\n"
    status, headers, body = raw(server, request)
    assert status == 400 and json_error(status, headers, body) == "invalid_request"
    assert headers.get("connection") == "close"


def test_expect_100_continue_is_answered_once_the_length_is_checked(
    server: LocalHttpServer, overcast: Overcast
) -> None:
    host, port = server.server_address[:2]
    body = b'{"author":"ada","text":"after continue"}'
    head = (
        f"POST {MESSAGES} HTTP/1.1\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(head.encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201 ") and store_count(overcast) == 1
    too_big = f"POST {MESSAGES} HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 999999999\r\n\r\n".encode()
    assert raw(server, too_big)[0] == 413  # refused without inviting the body


def test_http_1_0_closes_unless_asked_to_keep_alive(server: LocalHttpServer) -> None:
    status, headers, _ = raw(server, b"GET /health HTTP/1.0\r\n\r\n")
    assert status == 200 and headers.get("connection") == "close"

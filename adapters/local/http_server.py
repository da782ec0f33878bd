"""A local HTTP server that serves core's HttpApp: stdlib only, bound to loopback, hardened.

What makes it fit to face a hostile client (``make serve``, the local runtimes):

* a fixed pool of worker threads takes accepted connections from a bounded queue, so threads —
  and the per-thread SQLite connections the store opens — are bounded, not one per connection;
  when every worker is busy, connections wait in the queue and then in the listen backlog
  (128, not the stdlib's 5, which resets connections under a burst);
* every socket read has a timeout, and a body is read only after its Content-Length is checked:
  ASCII digits, one value, at most the largest body the app accepts (else 400/413, connection
  closed, nothing read);
* every method reaches the app (TRACE, PROPFIND, anything: a JSON 404/405 with ``Allow``), and
  the refusals of HTTP framing itself (a malformed request line or header line, headers too long
  or too many, an HTTP version it does not speak) are JSON errors too — never an HTML page;
* response headers are written only as tokens and values without control characters, so no
  value can split a header.

The HTTP/1.1 framing is its own small loop rather than ``http.server.BaseHTTPRequestHandler``:
the same request-line rules and limits (65,536 bytes a line, 100 headers), but header lines are
split directly instead of through the ``email`` parser, and each response goes out in one write
(status line, headers and body), which together were most of a small request's cost.
"""

from __future__ import annotations

import contextlib
import email.utils
import queue
import re
import socket
import socketserver
import threading
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from core.app import HttpApp
from core.http import Request, Response
from core.logs import get_logger

logger = get_logger("http-server")

#: Listen backlog: connections the kernel queues while every worker is busy.
BACKLOG = 128
DEFAULT_WORKERS = 32
#: Bound on each socket read (request line, each header line, the body) and on each write.
DEFAULT_TIMEOUT_S = 10.0
#: The longest request line or header line, and the most header lines (the stdlib's limits).
MAX_LINE_BYTES = 65_536
MAX_HEADERS = 100
_TOKEN_RE = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}\Z")  # RFC 9110 token (methods, header names)
_HEADER_NAME_RE = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}\Z")  # a request's header names
_CONTENT_LENGTH_RE = re.compile(r"\A[0-9]{1,12}\Z")
_HEADER_VALUE_UNSAFE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_END_OF_HEADERS = (b"\r\n", b"\n")
#: A target urlsplit would only split at its first "?": a path, no authority, fragment or tab/CR/LF.
_ORIGIN_FORM_RE = re.compile(r"\A/(?!/)[^#\t\r\n]*\Z")
_REASONS = {status.value: status.phrase for status in HTTPStatus}
#: The framing's own refusals, as stable codes.
_STATUS_CODES = {
    400: "invalid_request",
    408: "request_timeout",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    431: "header_too_large",
    501: "not_implemented",
    505: "http_version_not_supported",
}


def to_request(method: str, target: str, headers: Any, body: bytes) -> Request:
    """The neutral request. The path is percent-decoded like every platform's front door does
    (API Gateway, the Functions host, Flask), so ``/channels/nl%0A/messages`` is channel
    ``"nl\\n"`` — which validation then refuses — on every provider alike."""
    if _ORIGIN_FORM_RE.match(target):
        path, _, query = target.partition("?")  # what urlsplit returns for such a target
    else:
        parts = urlsplit(target)
        path, query = parts.path, parts.query
    return Request(
        method=method,
        path=unquote(path) or "/",
        query=dict(parse_qsl(query, keep_blank_values=True, max_num_fields=100)) if query else {},
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
    )


class _Refusal(Exception):
    """A request the server answers itself, then closes the connection (its body is unread)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Connection(socketserver.StreamRequestHandler):
    """One client connection: HTTP/1.1 requests, kept alive until either side closes."""

    server: LocalHttpServer
    # One write per response, so Nagle would only hold back the next response's first bytes.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.timeout_s)  # every read and write is bounded

    def handle(self) -> None:
        try:
            while self._serve_one():
                pass
        except (TimeoutError, ConnectionError):  # a client that stopped sending or went away
            pass

    def _serve_one(self) -> bool:
        """Read one request, answer it; whether the connection stays open for another."""
        line = self.rfile.readline(MAX_LINE_BYTES + 1)
        if not line:
            return False
        if len(line) > MAX_LINE_BYTES:
            return self._refuse(414, "request line too long")
        words = line.decode("latin-1").rstrip("\r\n").split()
        if not words:
            return False
        version = (0, 9)
        if len(words) >= 3:
            parsed = _http_version(words[-1])
            if parsed is None:
                return self._refuse(400, f"bad request version {words[-1][:40]!r}")
            if parsed >= (2, 0):
                return self._refuse(505, f"HTTP/{parsed[0]}.{parsed[1]} is not supported")
            version = parsed
        keep_alive = version >= (1, 1)
        if not 2 <= len(words) <= 3:
            return self._refuse(400, "bad request line")
        method, target = words[0], words[1]
        if len(words) == 2 and method != "GET":
            return self._refuse(400, "bad HTTP/0.9 request type")
        if not _TOKEN_RE.match(method):
            return self._refuse(400, "the request method is not a valid token")
        headers = self._read_headers()
        if headers is None:
            return False
        if isinstance(headers, _Refusal):
            return self._refuse(headers.status, headers.message)
        if len(words) == 2:  # "GET /path" and nothing else: HTTP/0.9
            return self._refuse(505, "HTTP/0.9 is not supported")
        connection = headers.get("connection", "").lower()
        if connection == "close":
            keep_alive = False
        elif connection == "keep-alive":
            keep_alive = True
        try:
            body = self._read_body(headers, continue_=version >= (1, 1))
            if target.startswith("//"):  # a path, never an authority (an open redirect otherwise)
                target = "/" + target.lstrip("/")
            request = to_request(method, target, headers, body)
        except _Refusal as refusal:
            return self._refuse(refusal.status, refusal.message)
        except ValueError:  # more query parameters than max_num_fields
            return self._refuse(400, "too many query parameters")
        response = self.server.app.handle(request)
        if self.server.has_waiting_connections():
            keep_alive = False  # a kept-alive connection must not starve queued ones
        self._write(response, keep_alive, head=method == "HEAD")
        return keep_alive

    def _read_headers(self) -> _Headers | _Refusal | None:
        """The header lines, names lower-cased (a refusal when malformed; None when the client
        closed before the blank line)."""
        headers = _Headers()
        while True:
            line = self.rfile.readline(MAX_LINE_BYTES + 1)
            if line in _END_OF_HEADERS:
                return headers
            if not line:
                return None
            if len(line) > MAX_LINE_BYTES:
                return _Refusal(431, "header line too long")
            if len(headers.lines) >= MAX_HEADERS:
                return _Refusal(431, f"more than {MAX_HEADERS} header lines")
            name, colon, value = line.decode("latin-1").partition(":")
            # No space before the colon, no folded continuation line (RFC 9112 section 5).
            if not colon or not _HEADER_NAME_RE.match(name):
                return _Refusal(400, "malformed header line")
            headers.add(name.lower(), value.strip(" \t\r\n"))

    def _read_body(self, headers: _Headers, *, continue_: bool) -> bytes:
        if "transfer-encoding" in headers:
            raise _Refusal(411, "send the body with a Content-Length, not a Transfer-Encoding")
        values = headers.get_all("content-length")
        if not values:
            return b""
        if len(set(values)) != 1 or not _CONTENT_LENGTH_RE.match(values[0]):
            raise _Refusal(400, "Content-Length must be one non-negative decimal integer")
        length = int(values[0])
        if length > self.server.max_body_bytes:
            raise _Refusal(413, f"request body larger than {self.server.max_body_bytes} bytes")
        if not length:
            return b""
        if continue_ and headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # the length is acceptable: send it
        body = self.rfile.read(length)
        if len(body) != length:
            raise ConnectionError("client closed the connection before sending the whole body")
        return body

    def _refuse(self, status: int, message: str) -> bool:
        """Answer a request the framing refuses with a JSON error, then close (the rest of what
        the client sent is not read)."""
        self._write(Response.json(status, _error_body(status, message)), keep_alive=False, head=False)
        return False

    def _write(self, response: Response, keep_alive: bool, *, head: bool) -> None:
        lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}\r\n{_server_and_date()}"]
        for name, value in response.headers.items():
            if _TOKEN_RE.match(name) and name.lower() not in ("content-length", "connection"):
                text = str(value)
                if not text.isprintable():
                    text = _HEADER_VALUE_UNSAFE_RE.sub("", text)
                lines.append(f"{name}: {text}\r\n")
        lines.append(f"content-length: {len(response.body)}\r\n")
        if not keep_alive:
            lines.append("connection: close\r\n")
        lines.append("\r\n")
        head_bytes = "".join(lines).encode("latin-1", "replace")
        self.wfile.write(head_bytes if head or not response.body else head_bytes + response.body)


class _Headers:
    """A request's header lines: names lower-cased, in order, repeats kept."""

    __slots__ = ("_last", "lines")

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._last: dict[str, str] = {}  # the last value of each name, as the Request carries it

    def add(self, name: str, value: str) -> None:
        self.lines.append((name, value))
        self._last[name] = value

    def __contains__(self, name: str) -> bool:
        return name in self._last

    def get(self, name: str, default: str = "") -> str:
        return self._last.get(name, default)

    def get_all(self, name: str) -> list[str]:
        return [value for key, value in self.lines if key == name] if name in self._last else []

    def items(self) -> Any:
        return self._last.items()


def _http_version(word: str) -> tuple[int, int] | None:
    """``HTTP/major.minor`` as two integers (leading zeros ignored, RFC 2145), or None."""
    if not word.startswith("HTTP/"):
        return None
    numbers = word[5:].split(".")
    if len(numbers) != 2 or not all(n.isascii() and n.isdigit() and len(n) <= 10 for n in numbers):
        return None
    return int(numbers[0]), int(numbers[1])


_date_cache: list[Any] = [None, ""]  # (whole second, its "Server" and "Date" lines)


def _server_and_date() -> str:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, f"Server: overcast\r\nDate: {email.utils.formatdate(now, usegmt=True)}\r\n"]
    return str(_date_cache[1])


def _error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": _STATUS_CODES.get(status, "invalid_request"), "message": message[:200]}}


class LocalHttpServer(socketserver.TCPServer):
    """The app on a loopback socket, served by a fixed pool of worker threads."""

    allow_reuse_address = True
    request_queue_size = BACKLOG

    def __init__(
        self,
        app: HttpApp,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        workers: int = DEFAULT_WORKERS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.timeout_s = timeout_s
        limits = app.settings.limits
        # The largest body any route takes (replication batches); the app applies each route's own.
        self.max_body_bytes = max(limits.max_body_bytes, limits.max_batch_bytes)
        self._connections: queue.Queue[tuple[socket.socket, Any] | None] = queue.Queue(maxsize=workers)
        self._closing = threading.Event()
        self._active: set[socket.socket] = set()  # connections a worker is serving now
        self._active_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__((host, port), _Connection)
        self._workers = [
            threading.Thread(target=self._work, name=f"overcast-http-{i}", daemon=True) for i in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def has_waiting_connections(self) -> bool:
        return not self._connections.empty()

    # -- the accept loop hands connections to the pool ------------------------------------------

    def process_request(self, request: Any, client_address: Any) -> None:
        while not self._closing.is_set():
            try:
                self._connections.put((request, client_address), timeout=0.2)
                return
            except queue.Full:  # every worker busy: wait (the kernel backlog holds the rest)
                continue
        self.shutdown_request(request)

    def _work(self) -> None:
        while True:
            item = self._connections.get()
            if item is None:
                return
            request, client_address = item
            with self._active_lock:
                self._active.add(request)
            try:
                self.finish_request(request, client_address)
            except (TimeoutError, ConnectionError, OSError):
                pass  # a client that stalled or vanished mid-request: routine, nothing to answer
            except Exception:
                self.handle_error(request, client_address)
            finally:
                with self._active_lock:
                    self._active.discard(request)
                self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Logged as one JSON line, never printed as a bare traceback.
        logger.exception("connection failed", extra={"fields": {"client": str(client_address)}})

    # -- lifecycle --------------------------------------------------------------------------------

    def start_background(self) -> LocalHttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="overcast-http", daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._closing.set()
        super().shutdown()

    def server_close(self) -> None:
        """Close the listening socket, end every connection (a kept-alive one would otherwise hold
        its worker until the read timeout), then stop the workers."""
        self._closing.set()
        super().server_close()
        with self._active_lock:
            for connection in self._active:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        while True:  # connections accepted but not started: close them
            try:
                item = self._connections.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self.shutdown_request(item[0])
        for _ in self._workers:
            with contextlib.suppress(queue.Full):
                self._connections.put(None, timeout=self.timeout_s)
        for worker in self._workers:
            worker.join(timeout=self.timeout_s)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

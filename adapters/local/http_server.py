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
  the stdlib's own refusals (a malformed request line, headers too long or too many, an HTTP
  version it does not speak) are JSON errors too — never an HTML page;
* response headers are written only as tokens and values without control characters, so no
  value can split a header.
"""

from __future__ import annotations

import contextlib
import queue
import re
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
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
_TOKEN_RE = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}\Z")  # RFC 9110 token (methods, header names)
_CONTENT_LENGTH_RE = re.compile(r"\A[0-9]{1,12}\Z")
_HEADER_VALUE_UNSAFE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: The stdlib's own refusals, as stable codes.
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
    parts = urlsplit(target)
    return Request(
        method=method,
        path=unquote(parts.path) or "/",
        query=dict(parse_qsl(parts.query, keep_blank_values=True, max_num_fields=100)),
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
    )


class _Refusal(Exception):
    """A request the server answers itself, then closes the connection (its body is unread)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    server: LocalHttpServer
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API front door
    server_version = "overcast"
    sys_version = ""
    # Headers and body go out in separate writes; without TCP_NODELAY, delayed ACKs add ~40 ms.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.timeout_s)  # every read and write is bounded

    def __getattr__(self, name: str) -> Any:
        # The stdlib answers a method without a do_<METHOD> with an HTML 501; every method goes to
        # the app instead, which knows which routes take which methods (a JSON 405 with Allow).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def _serve(self) -> None:
        if self.request_version == "HTTP/0.9":  # "GET /path" and nothing else: no headers to answer with
            self.send_error(505, "HTTP/0.9 is not supported")
            return
        try:
            if not _TOKEN_RE.match(self.command or ""):
                raise _Refusal(400, "the request method is not a valid token")
            body = self._read_body()
            request = to_request(self.command, self.path, self.headers, body)
        except _Refusal as refusal:
            self.close_connection = True
            self._write(Response.json(refusal.status, _error_body(refusal.status, refusal.message)))
            return
        except ValueError:  # more query parameters than max_num_fields
            self.close_connection = True
            self._write(Response.json(400, _error_body(400, "too many query parameters")))
            return
        except (TimeoutError, ConnectionError):  # a client that stopped sending or went away
            self.close_connection = True
            return
        response = self.server.app.handle(request)
        if self.server.has_waiting_connections():
            self.close_connection = True  # a kept-alive connection must not starve queued ones
        self._write(response)

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding") is not None:
            raise _Refusal(411, "send the body with a Content-Length, not a Transfer-Encoding")
        values = self.headers.get_all("content-length") or []
        if not values:
            return b""
        if len(set(values)) != 1 or not _CONTENT_LENGTH_RE.match(values[0].strip()):
            raise _Refusal(400, "Content-Length must be one non-negative decimal integer")
        length = int(values[0])
        if length > self.server.max_body_bytes:
            raise _Refusal(413, f"request body larger than {self.server.max_body_bytes} bytes")
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise ConnectionError("client closed the connection before sending the whole body")
        return body

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                if _TOKEN_RE.match(name) and name.lower() not in ("content-length", "connection"):
                    self.send_header(name, _HEADER_VALUE_UNSAFE_RE.sub("", str(value)))
            self.send_header("content-length", str(len(response.body)))
            if self.close_connection:
                self.send_header("connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (TimeoutError, ConnectionError):
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The stdlib's own refusals (malformed request line, headers too long or too many,
        unsupported HTTP version, a timeout) as JSON errors, then close."""
        self.close_connection = True
        self.request_version = "HTTP/1.1"  # never answer as HTTP/0.9 (a bare body, no status line)
        text = f"{message or explain or 'request refused'}"
        self._write(Response.json(code, _error_body(code, text)))

    def log_message(self, format: str, *args: Any) -> None:  # the app logs each request as JSON
        pass


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
        super().__init__((host, port), _Handler)
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

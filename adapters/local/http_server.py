"""A local HTTP server that serves core's HttpApp: stdlib only, threaded, bound to loopback."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from core.app import HttpApp
from core.http import Request, Response

_MAX_READ = 8 * 1024 * 1024  # hard cap on what we read off the socket; the app enforces the real limit


def to_request(method: str, target: str, headers: Any, body: bytes) -> Request:
    parts = urlsplit(target)
    return Request(
        method=method,
        path=parts.path or "/",
        query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
    )


class _Handler(BaseHTTPRequestHandler):
    server: LocalHttpServer
    protocol_version = "HTTP/1.1"  # keep-alive, like a real API front door
    # Headers and body go out in separate writes; without TCP_NODELAY, delayed ACKs add ~40 ms.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > _MAX_READ:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        response = self.server.app.handle(to_request(self.command, self.path, self.headers, body))
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:  # the app logs each request as JSON
        pass


class LocalHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: HttpApp, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.app = app
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"

    def start_background(self) -> LocalHttpServer:
        self._thread = threading.Thread(target=self.serve_forever, name="overcast-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

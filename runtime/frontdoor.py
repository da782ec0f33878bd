"""The loopback front door every local stand-in serves HTTP through.

A platform's gateway reads the request, turns it into the function's event, invokes the function
and turns its result back into an HTTP answer. The middle part is the stand-in's own
(``answer(Incoming) -> Answer``: an API Gateway event, a ``func.HttpRequest``, web action
parameters); the rest is the same everywhere and lives here: binding loopback only, the body
size limit (answered before the body is read), what the gateway answers when the function
crashes, hop-by-hop headers, ``Set-Cookie`` lines, ``HEAD``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

_HOP_BY_HOP = {"content-length", "connection", "transfer-encoding"}


@dataclass(frozen=True)
class Incoming:
    method: str
    target: str  # path and query, as sent
    headers: Sequence[tuple[str, str]]
    body: bytes
    client_ip: str
    host: str  # the Host header, else the server's own address


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    cookies: Sequence[str] = ()


class FrontDoor(ThreadingHTTPServer):
    """``answer`` turns each request into the platform's answer. ``too_large`` is what the gateway
    says to a body over ``max_body``; ``crashed`` what it says when ``answer`` raises."""

    daemon_threads = True

    def __init__(
        self,
        host: str,
        port: int,
        answer: Callable[[Incoming], Answer],
        *,
        max_body: int,
        too_large: Answer,
        crashed: Answer,
        logger: logging.Logger,
    ) -> None:
        if not host.startswith("127."):
            raise ValueError(f"the local front door binds loopback (127.x) only, not {host}")
        self.answer = answer
        self.max_body = max_body
        self.too_large = too_large
        self.crashed = crashed
        self.logger = logger
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: FrontDoor
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no delayed-ACK stalls

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length > self.server.max_body:
            self.close_connection = True
            self._reply(self.server.too_large)
            return
        body = self.rfile.read(length) if length else b""
        incoming = Incoming(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            client_ip=self.client_address[0],
            host=self.headers.get("host") or self.server.url.removeprefix("http://"),
        )
        try:
            answer = self.server.answer(incoming)
        except Exception:  # what the platform's gateway answers when the function itself fails
            self.server.logger.exception("http function failed")
            answer = self.server.crashed
        self._reply(answer)

    def _reply(self, answer: Answer) -> None:
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        for cookie in answer.cookies:
            self.send_header("set-cookie", cookie)
        self.send_header("content-length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:  # the app logs every request as JSON
        pass


class Serving(Protocol):
    @property
    def url(self) -> str: ...

    def serve_forever(self) -> None: ...

    def shutdown(self) -> None: ...

    def server_close(self) -> None: ...


def serve_until_stopped(server: Serving, workers: Sequence[tuple[threading.Thread, threading.Event]]) -> None:
    """A stand-in's life: start ``workers`` (a thread each, stopped by setting its event), print
    ``ready URL``, serve until SIGTERM or SIGINT, then join the workers and close the server."""

    def stop(*_: Any) -> None:
        for _thread, event in workers:
            event.set()
        threading.Thread(target=server.shutdown, daemon=True).start()  # shutdown() waits for serve_forever

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for thread, _event in workers:
        thread.start()
    print(f"ready {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        for thread, _event in workers:
            thread.join(timeout=5)
        server.server_close()

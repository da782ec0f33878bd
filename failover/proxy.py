"""A tiny reverse proxy in front of the primary that the drill can switch to answer 503.

Used by the ``http503`` fault only: it needs no change to production code. The proxy listens on
its own loopback address (the primary's address + 10 in the last octet, e.g. 127.0.0.12) and the
same port; in an http503 drill the PRIMARY record and the health check point at the proxy.
"""

from __future__ import annotations

import http.client
import ipaddress
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


def proxy_address(primary_address: str) -> str:
    address = ipaddress.ip_address(primary_address)
    candidate = ipaddress.ip_address(int(address) + 10)
    if not candidate.is_loopback:
        raise ValueError(f"no loopback address for the fault proxy next to {primary_address}")
    return str(candidate)


class _Handler(BaseHTTPRequestHandler):
    server: FaultProxy
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.server.failing:
            payload = b'{"error":{"code":"injected_503","message":"fault injected by the drill"}}'
            self._reply(503, [("content-type", "application/json"), ("retry-after", "1")], payload)
            return
        upstream = http.client.HTTPConnection(self.server.upstream_host, self.server.upstream_port, timeout=10)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}]
            self._reply(response.status, kept, data)
        except (OSError, http.client.HTTPException):
            self._reply(
                502, [("content-type", "application/json")], b'{"error":{"code":"bad_gateway","message":"upstream"}}'
            )
        finally:
            upstream.close()

    def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs under load: 1 s retransmits skew the timings

    def __init__(self, address: str, port: int, upstream_host: str, upstream_port: int) -> None:
        if not address.startswith("127."):
            raise ValueError(f"the fault proxy binds loopback only, not {address}")
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.failing = False
        super().__init__((address, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return str(self.server_address[0])

    def set_failing(self, failing: bool) -> None:
        self.failing = failing

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

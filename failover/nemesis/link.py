"""A replication link the nemesis controls: a reverse proxy on loopback in front of one cloud,
which its peers use as that cloud's URL (so only replication traffic passes through it).

Modes, switched at any time: ``partitioned`` (the connection is closed without an answer, as a
dropped link looks to the sender, whose stream retries), ``max_delay_s`` (each request waits a
random time first, so concurrent batches arrive out of order), ``duplicate`` (each request is
forwarded twice: a re-delivery). Clients' API traffic goes to the cloud directly.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class _Handler(BaseHTTPRequestHandler):
    server: LinkProxy
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        link = self.server
        link.requests += 1
        if link.partitioned:
            link.dropped += 1
            self.close_connection = True
            return
        if link.max_delay_s > 0:
            time.sleep(link.random.uniform(0, link.max_delay_s))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        copies = 2 if link.duplicate else 1
        status, kept, data = 502, [("content-type", "application/json")], b'{"error":{"code":"bad_gateway"}}'
        for _ in range(copies):
            upstream = http.client.HTTPConnection(link.upstream_host, link.upstream_port, timeout=30)
            try:
                upstream.request("POST", self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                status = response.status
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP | {"content-length"}]
            except (OSError, http.client.HTTPException):
                pass
            finally:
                upstream.close()
        link.duplicated += copies - 1
        self.send_response(status)
        for name, value in kept:
            self.send_header(name, value)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LinkProxy(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: str, upstream_host: str, upstream_port: int, seed: int = 0) -> None:
        if not address.startswith("127."):
            raise ValueError(f"a link proxy binds loopback only, not {address}")
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.partitioned = False
        self.max_delay_s = 0.0
        self.duplicate = False
        self.random = random.Random(seed)
        self.requests = self.dropped = self.duplicated = 0
        super().__init__((address, 0), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a sender that gave up (its timeout) while the link delayed it: nothing to report

    def clear(self) -> None:
        self.partitioned, self.max_delay_s, self.duplicate = False, 0.0, False

    def start(self) -> LinkProxy:
        self._thread = threading.Thread(target=self.serve_forever, name="link-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)

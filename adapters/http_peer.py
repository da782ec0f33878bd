"""PeerTransport over HTTP(S) with the standard library, so no deployment needs an extra SDK.

Connections are kept alive and reused, one per peer per thread: a stream delivery pushes batch
after batch to the same peers, and a new connection per batch costs a TCP and TLS handshake
each time (several round trips between clouds). A reused connection that the peer closed
meanwhile (idle timeout) fails before any answer; that one request is sent again on a new
connection (every replication request is safe to repeat: applying a batch is idempotent, the
others only read). A timeout is never retried. With a proxy configured for the peer's URL
(``HTTPS_PROXY``/``HTTP_PROXY``, not bypassed by ``NO_PROXY``) requests go through urllib, which
honours it, one connection each.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

from core.errors import Unavailable
from core.ports import PeerResponse, PeerTransport

#: Errors by which a kept-alive connection turns out to have been closed by the peer.
_DROPPED = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class UrllibPeerTransport(PeerTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context
        self._local = threading.local()

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or _proxied(url, parts.hostname):
            return self._post_urllib(url, body, headers, timeout)
        key = (parts.scheme, parts.hostname, parts.port)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        connections: dict[tuple[str, str, int | None], http.client.HTTPConnection] = self._connections()
        for attempt in (1, 2):
            connection = connections.get(key)
            reused = connection is not None
            if connection is None:
                connection = connections[key] = self._connect(parts.scheme, parts.hostname, parts.port, timeout)
            connection.timeout = timeout
            if connection.sock is not None:
                connection.sock.settimeout(timeout)
            try:
                connection.request("POST", target, body=body, headers=dict(headers))
                response = connection.getresponse()
                payload = response.read()
            except _DROPPED as exc:
                self._drop(connections, key)
                if reused and attempt == 1:
                    continue  # the peer closed the idle connection: once more on a new one
                raise Unavailable(f"{url}: {exc!r}", retry_after=5, code="peer_unavailable") from exc
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                self._drop(connections, key)
                raise Unavailable(f"{url}: {exc!r}", retry_after=5, code="peer_unavailable") from exc
            if response.will_close:
                self._drop(connections, key)
            return PeerResponse(response.status, payload)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _connections(self) -> dict[tuple[str, str, int | None], http.client.HTTPConnection]:
        connections = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        return connections

    def _connect(self, scheme: str, host: str, port: int | None, timeout: float) -> http.client.HTTPConnection:
        if scheme == "https":
            context = self._ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
        return http.client.HTTPConnection(host, port, timeout=timeout)

    @staticmethod
    def _drop(connections: dict[tuple[str, str, int | None], http.client.HTTPConnection], key: tuple) -> None:
        connection = connections.pop(key, None)
        if connection is not None:
            connection.close()

    def _post_urllib(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._ssl_context) as response:
                return PeerResponse(response.status, response.read())
        except urllib.error.HTTPError as exc:  # a status answer: the caller decides what it means
            return PeerResponse(exc.code, exc.read())
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
            raise Unavailable(f"{url}: {exc}", retry_after=5, code="peer_unavailable") from exc


def _proxied(url: str, host: str) -> bool:
    scheme = urlsplit(url).scheme
    return bool(urllib.request.getproxies().get(scheme)) and not urllib.request.proxy_bypass(host)

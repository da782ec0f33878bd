"""PeerTransport over HTTP(S) with the standard library, so no deployment needs an extra SDK."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping

from core.errors import Unavailable
from core.ports import PeerResponse, PeerTransport


class UrllibPeerTransport(PeerTransport):
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl_context = ssl_context

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._ssl_context) as response:
                return PeerResponse(response.status, response.read())
        except urllib.error.HTTPError as exc:  # a status answer: the caller decides what it means
            return PeerResponse(exc.code, exc.read())
        except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as exc:
            raise Unavailable(f"{url}: {exc}", retry_after=5, code="peer_unavailable") from exc

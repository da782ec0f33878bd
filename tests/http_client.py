"""A tiny HTTP client for e2e tests: real sockets, no retries, every response captured."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass
class HttpResult:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class HttpClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> HttpResult:
        if json_body is not None:
            body = json.dumps(json_body).encode()
        target = self.prefix + path + (("?" + urlencode(query)) if query else "")
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            send_headers = (
                {"content-type": "application/json", **(headers or {})} if body is not None else (headers or {})
            )
            connection.request(method, target, body=body, headers=send_headers)
            response = connection.getresponse()
            return HttpResult(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

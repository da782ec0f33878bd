"""Neutral HTTP request/response and a tiny router.

Every provider's event shape is turned into a ``Request`` by its adapter and gets a ``Response``
back; core never sees a vendor event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import MethodNotAllowed, NotFound, OvercastError, Unavailable, ValidationError


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # keys lower-case
    body: bytes = b""
    request_id: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValidationError(f"request body is not valid JSON: {exc}", code="invalid_json") from exc


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return cls(status, {"content-type": "application/json", **(headers or {})}, body)

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status, {}, b"")

    @classmethod
    def from_error(cls, error: OvercastError, request_id: str = "") -> Response:
        headers: dict[str, str] = {}
        if isinstance(error, Unavailable):
            headers["retry-after"] = str(max(1, round(error.retry_after)))
        if isinstance(error, MethodNotAllowed) and error.allow:
            headers["allow"] = ", ".join(error.allow)
        payload: dict[str, Any] = {"code": error.code, "message": error.message}
        if request_id:
            payload["request_id"] = request_id
        return cls.json(error.status, {"error": payload}, headers)

    def json_body(self) -> Any:
        return json.loads(self.body) if self.body else None


Handler = Callable[..., Response]
_PARAM_RE = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Handler


class Router:
    """Matches ``/channels/{channel}/messages``-style templates; path parameters become kwargs."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        regex = "^" + _PARAM_RE.sub(r"(?P<\1>[^/]+)", template) + "$"
        self._routes.append(Route(method.upper(), template, re.compile(regex), handler))

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str], str]:
        allowed: list[str] = []
        for route in self._routes:
            match = route.pattern.match(path)
            if not match:
                continue
            if route.method == method.upper():
                return route.handler, match.groupdict(), route.template
            allowed.append(route.method)
        if allowed:
            raise MethodNotAllowed(f"{method} is not allowed on {path}", allow=tuple(sorted(set(allowed))))
        raise NotFound(f"no route for {method} {path}", code="route_not_found")

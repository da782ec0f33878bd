"""Neutral HTTP request/response and a tiny router.

Every provider's event shape is turned into a ``Request`` by its adapter and gets a ``Response``
back; core never sees a vendor event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from core import json_text
from core.errors import (
    ClockSkew,
    ConfigurationError,
    MethodNotAllowed,
    NotFound,
    OvercastError,
    Unavailable,
    ValidationError,
)
from core.model import is_well_formed, quote


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # keys lower-case
    body: bytes = b""
    request_id: str = ""

    def __post_init__(self) -> None:
        """An adapter that read a wrong-typed field out of a platform event (a direct invocation
        can hold anything) fails here, as the caller's 4xx, not later inside the app."""
        if not (
            isinstance(self.method, str)
            and isinstance(self.path, str)
            and isinstance(self.body, bytes)
            and isinstance(self.request_id, str)
            and _all_str(self.query)
            and _all_str(self.headers)
        ):
            raise ValidationError("the request event has fields of the wrong type", code="invalid_event")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def with_request_id(self, request_id: str) -> Request:
        """A copy carrying ``request_id``: the other fields were checked when this one was built,
        so they are not walked again (``dataclasses.replace`` would, on every request)."""
        if not isinstance(request_id, str):
            raise ValidationError("the request id must be a string", code="invalid_event")
        copy = object.__new__(Request)
        copy.__dict__.update(self.__dict__)
        object.__setattr__(copy, "request_id", request_id)
        return copy

    def json(self) -> Any:
        return parse_json(self.body)


#: Deepest nesting of arrays and objects a JSON body may have. The API's bodies are two levels
#: deep; the bound keeps a hostile body from exhausting the parser's recursion.
MAX_JSON_DEPTH = 32
# Strings removed before counting brackets (a bracket inside a string does not nest).
_JSON_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_BRACKET_RE = re.compile(r"[\[\]{}]")


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON body or raise ValidationError (and nothing else).

    Strict where ``json.loads`` is lenient: only UTF-8, nesting at most ``max_depth`` deep
    (checked before parsing, so no RecursionError), no NaN/Infinity literals, and every string
    and key well-formed Unicode (``"\\ud800"`` parses to a lone surrogate that no store can hold
    and no response can encode). Messages never quote the body.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("request body is not UTF-8 JSON", code="invalid_json") from None
    # Nesting cannot exceed the number of opening brackets: count them before scanning.
    if text.count("[") + text.count("{") > max_depth:
        depth = deepest = 0
        for bracket in _JSON_BRACKET_RE.findall(_JSON_STRING_RE.sub("", text)):
            depth += 1 if bracket in "[{" else -1
            deepest = max(deepest, depth)
        if deepest > max_depth:
            raise ValidationError(f"JSON nested deeper than {max_depth} levels", code="json_too_deep")
    try:
        if text.startswith("\ufeff"):  # what json.loads refuses before decoding
            raise json.JSONDecodeError("Unexpected UTF-8 BOM", text, 0)
        value = _DECODER.decode(text)
    except ValidationError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, and ints over 4300 digits
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ValidationError(f"request body is not valid JSON{where}", code="invalid_json") from None
    # Text decoded as strict UTF-8 holds no surrogate: only a JSON \u escape can make one.
    if "\\u" in text and not _well_formed(value):
        raise ValidationError("request body holds a lone surrogate (not valid Unicode)", code="invalid_unicode")
    return value


def is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """``isinstance(value, Mapping)``; a dict (every platform event) skips ABCMeta's check."""
    return type(value) is dict or isinstance(value, Mapping)


def _all_str(mapping: Any) -> bool:
    if not is_mapping(mapping):
        return False
    return all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items())


def _reject_constant(name: str) -> Any:
    raise ValidationError(f"{name} is not a JSON number", code="invalid_json")


# Built once: json.loads with any option builds a decoder (and its scanner) on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _well_formed(value: Any) -> bool:
    """Every string and key in a parsed JSON value is valid Unicode; iterative (depth is bounded
    already, but this runs on every body)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not is_well_formed(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Fields the route adds to the request's access log line (what it created, say), so one
    #: line per request says everything.
    log_fields: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        text = json_text.compact(payload)
        try:
            body = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate from old data: escape it rather than fail
            body = json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        return cls(status, {"content-type": "application/json", **(headers or {})}, body)

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status, {}, b"")

    @classmethod
    def from_error(cls, error: OvercastError, request_id: str = "") -> Response:
        """The JSON error response. A 4xx says what was wrong with the request; a 5xx carries
        only its stable code and a generic sentence, because its message may hold a vendor's
        words (ARNs, hostnames, an emulator's HTML error page): that goes to the log, under the
        request id, and never to the caller."""
        headers: dict[str, str] = {}
        if isinstance(error, Unavailable):
            headers["retry-after"] = str(max(1, round(error.retry_after)))
        if isinstance(error, MethodNotAllowed) and error.allow:
            headers["allow"] = ", ".join(error.allow)
        payload: dict[str, Any] = {"code": error.code, "message": public_message(error)}
        if isinstance(error, ClockSkew):  # the sender's offset, so the sender can report it too
            payload["offset_s"] = error.offset_s
        if request_id:
            payload["request_id"] = request_id
        return cls.json(error.status, {"error": payload}, headers)

    def json_body(self) -> Any:
        return json.loads(self.body) if self.body else None


#: What a caller reads for each 5xx code; the detail is in the log line with the request id.
PUBLIC_MESSAGES = {
    "store_timeout": "the store did not answer in time; retry after the Retry-After seconds",
    "internal": "internal error; the logs have the details under this request_id",
}
_GENERIC_UNAVAILABLE = "a dependency is unavailable; retry after the Retry-After seconds"


# The name of one of our settings (OVERCAST_PEERS, COSMOS_ENDPOINT, CLOUDANT_APIKEY, AWS_REGION...):
# only these prefixes, and not inside a path or an ARN (a role may be named in capitals too).
_SETTING_NAME_RE = re.compile(
    r"(?<![A-Za-z0-9_/:.-])(?:OVERCAST|COSMOS|CLOUDANT|AWS|GOOGLE|FIRESTORE)_[A-Z0-9_]*[A-Z0-9](?![A-Za-z0-9_/-])"
)


def public_message(error: OvercastError) -> str:
    """The part of an error's message that may leave the service. A misconfiguration still says
    which settings to check — their names only, never their values or the vendor's words."""
    if error.status < 500:
        return error.message
    if isinstance(error, ConfigurationError):
        names = list(dict.fromkeys(_SETTING_NAME_RE.findall(error.message)))[:3]
        hint = f"; check {', '.join(names)}" if names else ""
        return f"the service is misconfigured{hint} (the details are in the logs under this request_id)"
    return PUBLIC_MESSAGES.get(error.code, _GENERIC_UNAVAILABLE if isinstance(error, Unavailable) else "internal error")


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
        # Routes by their number of "/": a parameter matches one segment, so a path can only
        # match templates with as many (one or two patterns tried a request, not all of them).
        self._by_depth: dict[int, list[Route]] = {}

    def add(self, method: str, template: str, handler: Handler) -> None:
        regex = r"\A" + _PARAM_RE.sub(r"(?P<\1>[^/]+)", template) + r"\Z"
        route = Route(method.upper(), template, re.compile(regex), handler)
        self._routes.append(route)
        self._by_depth.setdefault(template.count("/"), []).append(route)

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str], str]:
        allowed: list[str] = []
        for route in self._by_depth.get(path.count("/"), ()):
            match = route.pattern.match(path)
            if not match:
                continue
            if route.method == method.upper():
                return route.handler, match.groupdict(), route.template
            allowed.append(route.method)
        if allowed:
            raise MethodNotAllowed(
                f"{quote(method, 20)} is not allowed on {quote(path, 80)}", allow=tuple(sorted(set(allowed)))
            )
        raise NotFound(f"no route for {quote(method, 20)} {quote(path, 80)}", code="route_not_found")

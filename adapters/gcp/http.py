"""functions-framework's request (a ``flask.Request``) → core ``Request``; core ``Response`` → the
``(body, status, headers)`` tuple a Flask view may return.

Duck-typed on purpose: functions-framework has already imported Flask when it calls us, and not
importing it here keeps ``import handlers.gcp`` as cheap as the Firestore SDK it needs anyway.
"""

from __future__ import annotations

from typing import Any, Protocol

from core.errors import PayloadTooLarge
from core.http import Request, Response

#: Hard cap on what we read off the wire; the app enforces the real (smaller) limits.
MAX_READ_BYTES = 8 * 1024 * 1024


class FlaskRequest(Protocol):
    """The part of ``flask.Request`` we read."""

    method: str
    path: str
    content_length: int | None

    @property
    def args(self) -> Any: ...

    @property
    def headers(self) -> Any: ...

    def get_data(self, cache: bool = ..., as_text: bool = ..., parse_form_data: bool = ...) -> Any: ...


def to_request(request: FlaskRequest) -> Request:
    """Raises ``PayloadTooLarge`` before reading a body larger than ``MAX_READ_BYTES``."""
    if (request.content_length or 0) > MAX_READ_BYTES:
        raise PayloadTooLarge(f"request body larger than {MAX_READ_BYTES} bytes")
    headers = {str(name).lower(): str(value) for name, value in request.headers.items()}
    return Request(
        method=request.method.upper(),
        path=request.path or "/",
        # First value of each query parameter, like the other providers' mappings.
        query={str(k): str(v) for k, v in request.args.items()},
        headers=headers,
        body=request.get_data(cache=False) or b"",
        request_id=_request_id(headers),
    )


def to_response(response: Response) -> tuple[bytes, int, dict[str, str]]:
    return response.body, response.status, dict(response.headers)


def _request_id(headers: dict[str, str]) -> str:
    """The Cloud Trace id when the request carries one (it joins the platform's request log and
    any service the trace passes through), else the execution id functions-framework or the 1st
    gen runtime sets. Empty when neither is there: the app then makes one up."""
    trace = headers.get("x-cloud-trace-context", "")  # "TRACE_ID/SPAN_ID;o=1"
    trace_id = trace.split("/", 1)[0].split(";", 1)[0]
    return trace_id or headers.get("function-execution-id", "")

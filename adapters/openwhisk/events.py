"""Openwhisk event shapes <-> core.

    to_request(event)    the platform's HTTP event -> core Request
    to_response(resp)    core Response -> what the platform expects back from an HTTP function
    to_messages(event)   a change-feed / stream payload -> the changed Messages

Record real payloads under tests/events/openwhisk/ (see its README.md): the readiness check
(``python -m tools.provider check openwhisk``) runs every recorded event through these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.http import Request, Response
from core.model import Message


def to_request(event: Mapping[str, Any]) -> Request:
    raise NotImplementedError(
        "TODO(scaffold): map the HTTP event: method, path (without any platform prefix), query (first value), "
        "headers (lower-case names), body bytes (decode base64 if the platform encodes it), request id"
    )


def to_response(response: Response) -> Any:
    raise NotImplementedError("TODO(scaffold): status, headers and body in the platform's response shape")


def to_messages(event: Mapping[str, Any]) -> list[Message]:
    raise NotImplementedError(
        "TODO(scaffold): each changed record -> Message.from_record(...); a record that is not a message is "
        "logged and left out (no retry can fix it)"
    )

"""Firestore document-change events as Cloud Functions receive them over HTTP.

Each fixture is one HTTP delivery: ``{"mode", "headers", "body" | "body_base64"}``. ``request()``
turns it back into (headers, body bytes) to POST to functions-framework, or to hand to
``cloudevents.http.from_http`` exactly as functions-framework does. Regenerate with
``python -m tests.events.gcp.record`` (see that module for how they are made).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.events import load_event


def request(name: str) -> tuple[dict[str, str], bytes]:
    fixture = load_event("gcp", name)
    return headers_and_body(fixture)


def headers_and_body(fixture: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    headers = dict(fixture["headers"])
    if "body_base64" in fixture:
        return headers, base64.b64decode(fixture["body_base64"])
    body = fixture["body"]
    return headers, (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")

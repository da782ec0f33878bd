"""Google Cloud: both functions are reached over HTTP through functions-framework (the recorded
files are those HTTP requests); a failed event delivery is a non-2xx answer."""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.events.gcp import headers_and_body
from tests.events.replay import EVENTS_DIR, Replay, Undeliverable

MAIN = str(Path(__file__).resolve().parents[3] / "main.py")


@functools.cache
def _client(target: str, signature: str) -> Any:
    import functions_framework

    return functions_framework.create_app(target, MAIN, signature).test_client()


class GcpReplay(Replay):
    provider = "gcp"

    def changes_files(self) -> list[Path]:
        folder = EVENTS_DIR / "gcp"
        return sorted([*folder.glob("firestore_*.json"), *folder.glob("legacy_*.json")])

    def http_event(self, payload: Any) -> Any:
        from werkzeug.test import EnvironBuilder

        try:  # what functions-framework's Flask app hands the function
            builder = EnvironBuilder(
                method=payload["method"],
                path=payload["path"],
                query_string=payload["query_string"],
                headers=payload["headers"],
                data=payload["body"],
            )
            return builder.get_request()
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise Undeliverable(str(exc)) from exc

    def call_http(self, handler: ModuleType, payload: Any) -> int:
        request = self.http_event(payload)
        answer = _client("http", "http").open(
            request.full_path.rstrip("?"),
            method=request.method,
            headers=list(request.headers.items()),
            data=request.get_data(),
        )
        return int(answer.status_code)

    def changes_event(self, payload: Any) -> tuple[Any, ...]:
        if payload.get("mode") == "background":
            return payload["body"]["data"], payload["body"]["context"]
        from cloudevents.http import from_http

        return (from_http(*headers_and_body(payload)),)

    def call_changes(self, handler: ModuleType, payload: Any) -> Any:
        return int(
            _client("changes", "cloudevent")
            .post("/", headers=payload["headers"], data=headers_and_body(payload)[1])
            .status_code
        )

    def retried(self, outcome: Any) -> bool:
        return isinstance(outcome, BaseException) or not 200 <= int(outcome) < 300

    def poison_delivery(self) -> tuple[Any, int]:
        from tests.events import load_event

        event = load_event("gcp", "firestore_written_created_binary")
        return {**event, "body_base64": "bm90IGEgcHJvdG9idWY="}, 0  # "not a protobuf"


REPLAY = GcpReplay()

"""AWS: Lambda hands both functions the event dict; a partial batch failure is ``batchItemFailures``."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tests.events import load_event
from tests.events.replay import Replay


class AwsReplay(Replay):
    provider = "aws"
    http_glob = "apigw_*.json"
    changes_glob = "dynamodb_stream_*.json"

    def call_http(self, handler: ModuleType, payload: Any) -> int:
        return self.status(handler.http(payload, None))

    def call_changes(self, handler: ModuleType, payload: Any) -> Any:
        return handler.changes(payload, None)

    def retried(self, outcome: Any) -> bool:
        return isinstance(outcome, BaseException) or bool(outcome.get("batchItemFailures"))

    def poison_delivery(self) -> tuple[Any, int]:
        return load_event("aws", "dynamodb_stream_unparseable_record"), 2


REPLAY = AwsReplay()

"""OpenWhisk: actions get one params dict; a failed activation is a result with ``error``."""

from __future__ import annotations

from typing import Any

from tests.events import load_event
from tests.events.replay import Replay


class OpenWhiskReplay(Replay):
    provider = "openwhisk"

    def retried(self, outcome: Any) -> bool:
        return isinstance(outcome, BaseException) or "error" in outcome

    def poison_delivery(self) -> tuple[Any, int]:
        batch = load_event("openwhisk", "changes_feed_batch")
        rows = list(batch["results"])
        good = sum(1 for row in rows if isinstance(row.get("doc"), dict) and row["doc"].get("origin") == "openwhisk")
        poison = {"id": "london:not-a-message", "seq": "9-x", "changes": [{"rev": "1-a"}], "doc": {"text": 7}}
        return {**batch, "results": [poison, *rows]}, good


REPLAY = OpenWhiskReplay()

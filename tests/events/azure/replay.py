"""Azure: the host builds ``func.HttpRequest`` / ``func.DocumentList`` from its RPC payloads (the
recorded files), through the library's own converters; a failed change batch is a raise."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

from tests.events import load_event
from tests.events.replay import Replay, Undeliverable


class AzureReplay(Replay):
    provider = "azure"
    changes_glob = "cosmos_*.json"

    def http_event(self, payload: Any) -> Any:
        from azure.functions.http import HttpRequestConverter
        from azure.functions.meta import Datum

        try:  # the host only ever sends strings here: other types cannot reach a function
            value = {
                "method": Datum(payload["method"], "string"),
                "url": Datum(payload["url"], "string"),
                "headers": {k: Datum(v, "string") for k, v in payload["headers"].items()},
                "query": {k: Datum(v, "string") for k, v in payload["query"].items()},
                "params": {k: Datum(v, "string") for k, v in payload["params"].items()},
                "body": Datum(payload["body"]["value"].encode(), payload["body"]["type"]),
            }
            if not all(isinstance(d.value, str) for d in (value["method"], value["url"])):
                raise TypeError("method and url are strings")
            return HttpRequestConverter.decode(Datum(value, "http"), trigger_metadata={})
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise Undeliverable(str(exc)) from exc

    def changes_event(self, payload: Any) -> tuple[Any, ...]:
        from azure.functions.cosmosdb import CosmosDBTriggerConverter
        from azure.functions.meta import Datum

        return (CosmosDBTriggerConverter.decode(Datum(json.dumps(payload), "json"), trigger_metadata={}),)

    def call_http(self, handler: ModuleType, payload: Any) -> int:
        from runtime.azure import LocalContext

        return int(handler.http(self.http_event(payload), LocalContext("http")).status_code)

    def call_changes(self, handler: ModuleType, payload: Any) -> Any:
        from runtime.azure import LocalContext

        (documents,) = self.changes_event(payload)
        return handler.changes(documents, LocalContext("changes"))

    def poison_delivery(self) -> tuple[Any, int]:
        documents = load_event("azure", "cosmos_change_feed")
        good = sum(1 for d in documents if d.get("origin") == "azure")
        return [{"id": "junk", "text": 7}, *documents], good


REPLAY = AzureReplay()

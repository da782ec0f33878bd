"""How a provider's recorded events reach its entrypoints, for the event conformance suite.

Each provider's events folder has a ``replay.py`` with ``REPLAY``, a ``Replay`` subclass: which
recorded files are HTTP requests and which change deliveries, how a recorded payload becomes
what the platform hands the function (a dict, a ``func.HttpRequest``, an HTTP delivery to
functions-framework), how the platform reads the function's answer, and one delivery with a
poison record. tests/events/test_conformance.py runs every registered provider through it.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

EVENTS_DIR = Path(__file__).parent


class Undeliverable(Exception):
    """A mutated payload the platform could never hand a function (the host builds typed objects)."""


class Replay:
    provider = ""
    http_glob = "http_*.json"
    changes_glob = "changes_*.json"

    # -- what the platform hands the functions ---------------------------------------------------

    def http_event(self, payload: Any) -> Any:
        """The recorded HTTP payload as the HTTP function receives it (what ``to_request`` takes)."""
        return payload

    def changes_event(self, payload: Any) -> tuple[Any, ...]:
        """The recorded change delivery as the change function's arguments (and ``to_changes``')."""
        return (payload,)

    def call_http(self, handler: ModuleType, payload: Any) -> int:
        """Invoke the HTTP function with the payload; the status the platform answers with."""
        return self.status(handler.http(self.http_event(payload)))

    def call_changes(self, handler: ModuleType, payload: Any) -> Any:
        """Invoke the change function; what it returned (an exception is raised through)."""
        return handler.changes(*self.changes_event(payload))

    # -- how the platform reads the answers -------------------------------------------------------

    def status(self, response: Any) -> int:
        return int(response["statusCode"])

    def retried(self, outcome: Any) -> bool:
        """Whether the platform delivers (part of) the batch again after this outcome: the
        function's result, or the exception it raised."""
        return isinstance(outcome, BaseException)

    # -- cases ------------------------------------------------------------------------------------

    def poison_delivery(self) -> tuple[Any, int]:
        """A change delivery holding one record no retry can read beside good ones, and how many
        good records it carries."""
        raise NotImplementedError

    def http_files(self) -> list[Path]:
        return sorted((EVENTS_DIR / self.provider).glob(self.http_glob))

    def changes_files(self) -> list[Path]:
        return sorted((EVENTS_DIR / self.provider).glob(self.changes_glob))


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def replay_for(provider: str) -> Replay:
    module = importlib.import_module(f"tests.events.{provider}.replay")
    replay: Replay = module.REPLAY
    return replay

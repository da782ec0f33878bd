"""In-memory fakes for unit tests of core. The memory store passes the same conformance suite
as the real stores (tests/contract/test_memory_store.py), so tests on it mean something."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from core.errors import AlreadyExists, Unavailable
from core.model import Message
from core.ports import Clock, MessageStore, PeerResponse, PeerTransport


class InMemoryMessageStore(MessageStore):
    kind = "memory"

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], Message] = {}
        self._lock = threading.Lock()
        self.available = True  # flip to simulate an outage

    def _check(self) -> None:
        if not self.available:
            raise Unavailable("memory store switched off", retry_after=1)

    def _create(self, message: Message) -> None:
        self._check()
        with self._lock:
            key = (message.channel, message.id)
            if key in self._records:
                raise AlreadyExists(f"{key} exists")
            self._records[key] = message

    def _put_if_newer(self, message: Message) -> bool:
        self._check()
        with self._lock:
            key = (message.channel, message.id)
            current = self._records.get(key)
            if current is not None and current.version >= message.version:
                return False
            self._records[key] = message
            return True

    def _get(self, channel: str, message_id: str) -> Message | None:
        self._check()
        return self._records.get((channel, message_id))

    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        self._check()
        with self._lock:
            rows = [
                m for (c, _), m in self._records.items() if c == channel and (before is None or m.sort_key < before)
            ]
        yield from sorted(rows, key=lambda m: m.sort_key, reverse=True)

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        self._check()
        with self._lock:
            rows = [m for m in self._records.values() if str(m.version) > (since or "")]
        return sorted(rows, key=lambda m: str(m.version))[:limit]

    def _ping(self) -> None:
        self._check()


class ManualClock(Clock):
    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def advance(self, ms: int) -> None:
        self.ms += ms


class RecordingTransport(PeerTransport):
    """Records pushes; answers with a status, or raises Unavailable when ``down``."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.down = False
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        if self.down:
            raise Unavailable(f"{url} down")
        self.calls.append((url, body, dict(headers)))
        return PeerResponse(self.status, b"{}")

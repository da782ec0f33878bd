"""OpenwhiskMessageStore: the message store on TODO(scaffold) <service>, via TODO(scaffold) <SDK package>.

TODO(scaffold): document the data layout (one record per (channel, id): Message.to_record()), the native
conditional write put_if_newer uses (a condition, an etag, a revision, a transaction), the indexes
listing and changes_since need, and the error translation table.

Every vendor exception is translated at this boundary (``raise ... from exc``): conditional
failure → AlreadyExists / retry; throttling, outages, timeouts → Unavailable(retry_after=...);
missing database/table or bad credentials → ConfigurationError.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.model import Message
from core.ports import MessageStore


class OpenwhiskMessageStore(MessageStore):
    """MessageStore on <service>. ``client`` is a prebuilt SDK client: tests point it at an emulator,
    a handler builds one per process and reuses it on warm invocations."""

    kind = "openwhisk"

    def __init__(self, client: Any, *, timeout_s: float = 5.0, ping_timeout_s: float = 1.5) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.ping_timeout_s = ping_timeout_s

    def _create(self, message: Message) -> None:
        raise NotImplementedError(
            "TODO(scaffold): insert message.to_record() only if (channel, id) is absent (tombstones count); "
            "the service's 'already exists' answer -> raise AlreadyExists"
        )

    def _put_if_newer(self, message: Message) -> bool:
        raise NotImplementedError(
            "TODO(scaffold): write only if no record exists or the stored version string < str(message.version), "
            "atomically (native condition/etag/revision, bounded retry); return whether it wrote"
        )

    def _get(self, channel: str, message_id: str) -> Message | None:
        raise NotImplementedError("TODO(scaffold): point read; Message.from_record(record), None when missing")

    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        raise NotImplementedError(
            "TODO(scaffold): the channel's records (tombstones too) with sort_key < before, sort_key descending, "
            "fetched lazily in batches of about page_hint"
        )

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        raise NotImplementedError("TODO(scaffold): up to limit records with version > since, ascending by version")

    def _ping(self) -> None:
        raise NotImplementedError("TODO(scaffold): one real round trip within ping_timeout_s; Unavailable otherwise")

"""The event adapter every provider's ``adapters/<name>/events.py`` is (a module satisfying it).

    to_request(event)    the platform's HTTP event → core Request (raises ValidationError when the
                         event is not one)
    to_response(resp)    core Response → what the platform expects back from an HTTP function
    to_changes(event)    a change delivery → one ``ChangeRecord`` per record, in delivery order
    to_messages(event)   the readable messages of a change delivery (``to_changes`` read eagerly;
                         records that need the store or are poison are left out)

``handlers.kit`` drives these; the event conformance suite (tests/events/test_conformance.py)
holds every registered provider to them over its recorded events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from core.bootstrap import Overcast
    from core.http import Request, Response
    from core.model import Message


@dataclass(frozen=True)
class ChangeRecord:
    """One record of a change delivery: its identity in the platform's terms (a sequence number, a
    document id) and how to read the message it carries. ``read(app)`` — ``app`` builds or returns
    the process's app, for a record that names a document the store must be asked for — returns
    None for a record with nothing to replicate (a hard delete: this app writes tombstones), raises
    ``ValidationError`` for poison (no retry can fix it), and any other error for a failure that
    passes (the store did not answer, the app could not be built: the record is retried)."""

    ident: str
    read: Callable[[Callable[[], Overcast]], Message | None]


@runtime_checkable
class EventAdapter(Protocol):
    def to_request(self, event: Any, /) -> Request: ...

    def to_response(self, response: Response, /) -> Any: ...

    def to_changes(self, event: Any, /) -> list[ChangeRecord]: ...

    def to_messages(self, event: Any, /) -> list[Message]: ...


def from_delivery(read: Callable[[Any], Message | None]) -> Callable[[Any], Message | None]:
    """A reader that reads only the delivery (never the store): whatever it raises is a flaw of
    the record itself — a field nested too deep to print, a number out of range — so no retry can
    fix it: it becomes ``ValidationError`` (poison), never an error that would be retried forever."""
    from core.errors import ValidationError

    def parse(app: Any) -> Message | None:
        try:
            return read(app)
        except ValidationError:
            raise
        except Exception as exc:
            raise ValidationError(f"unreadable record: {type(exc).__name__}", code="invalid_record") from exc

    return parse


def unreadable(ident: str, reason: str) -> ChangeRecord:
    """A record (or a whole delivery) that cannot be read at all: poison when read, so the kit logs
    it with its identity and acknowledges it. ``to_changes`` returns this rather than raising, so a
    malformed delivery never escapes a change entrypoint."""
    from core.errors import ValidationError

    def read(_app: object) -> Message | None:
        raise ValidationError(reason, code="invalid_event")

    return ChangeRecord(ident, read)


def messages_of(records: list[ChangeRecord]) -> list[Message]:
    """``to_messages``: every message the records carry themselves; poison and records that name a
    document to read from the store are left out."""
    from core.errors import ConfigurationError, ValidationError

    def no_app() -> Overcast:
        raise ConfigurationError("reading this record needs the store")

    messages = []
    for record in records:
        try:
            message = record.read(no_app)
        except (ValidationError, ConfigurationError):
            continue
        if message is not None:
            messages.append(message)
    return messages

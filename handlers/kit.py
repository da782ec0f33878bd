"""What every provider's handler shares, so a handler is ``build()`` plus three thin entrypoints.

* ``LazyApp``: the process-wide app, built on the first invocation (never at import, so importing
  a handler stays cheap and touches no network), once, under a lock; a failed build raises and is
  tried again on the next invocation, so fixing a setting needs no redeploy of code.
* ``serve_http``: the HTTP entrypoint's error handling. An event that cannot be read is a 4xx in
  the platform's own response shape; a misconfiguration is a 503 JSON error saying what to fix;
  anything unexpected is a generic JSON error with the details in the log. Never a traceback,
  never an exception out of the entrypoint.
* ``deliver_changes``: one change batch to the peers. A record that cannot be parsed, or that the
  app refuses (``ValidationError``), is poison: logged with its identity and acknowledged, so it
  never blocks the records behind it. Only records whose push failed for a reason that passes
  (a peer down, the store unavailable, the app not built) come back as ``undelivered``, which
  each handler reports the way its platform retries (AWS ``batchItemFailures``, an Azure or GCP
  raise, an OpenWhisk error result).

Vendor-free: handlers import it; it imports only core.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from adapters.protocols import ChangeRecord
from core.bootstrap import Overcast
from core.errors import OvercastError, ValidationError
from core.http import Request, Response
from core.logs import log
from core.model import Message

T = TypeVar("T")


class LazyApp:
    """One app per process, built by ``build(*args)`` on first use (thread-safe)."""

    def __init__(self, build: Callable[..., Overcast]) -> None:
        self._build = build
        self._app: Overcast | None = None
        self._lock = threading.Lock()

    def __call__(self, *args: object) -> Overcast:
        app = self._app
        if app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._build(*args)  # raises: nothing is kept, the next call retries
                app = self._app
        return app

    @property
    def built(self) -> Overcast | None:
        return self._app

    def install(self, app: Overcast | None) -> None:
        """Use a prebuilt app (a local runtime, tests), or forget it with None."""
        with self._lock:
            self._app = app

    def reset(self, close: bool = False) -> None:
        """Forget the built app (tests; a runtime that changed the environment); ``close`` closes its store."""
        with self._lock:
            built, self._app = self._app, None
        if close and built is not None:
            built.store.close()


def serve_http(
    logger: logging.Logger,
    parse: Callable[[], tuple[Request, Callable[[Response], T]]],
    unreadable: Callable[[Response], T],
    app: Callable[[], Overcast],
) -> T:
    """``parse()`` → the request and how to answer in the event's own shape; ``unreadable`` answers
    when the event cannot be read at all; ``app()`` is the (lazily built) app."""
    try:
        request, respond = parse()
    except OvercastError as error:  # the platform's event says what is wrong with it
        log(logger, logging.WARNING, "unusable http event", code=error.code, error=error.message)
        return unreadable(Response.from_error(error))
    except Exception as exc:  # a field of the wrong type: still the caller's event, still a 4xx
        log(logger, logging.WARNING, "unreadable http event", error=f"{type(exc).__name__}: {exc}")
        return unreadable(Response.from_error(ValidationError("the request event is malformed", code="invalid_event")))
    try:
        built = app()
    except OvercastError as error:  # misconfiguration: a 503 that says what to fix
        log(logger, logging.ERROR, "cannot build the app", code=error.code, error=error.message)
        return respond(Response.from_error(error, request.request_id))
    except Exception:
        logger.exception("cannot build the app")
        return respond(Response.from_error(OvercastError("internal error; see logs"), request.request_id))
    try:
        return respond(built.app.handle(request))
    except Exception:  # the app answers every error itself; this is a bug, answered as JSON all the same
        logger.exception("request failed")
        return respond(Response.from_error(OvercastError("internal error; see logs"), request.request_id))


@dataclass
class DeliveryReport:
    """What became of a batch, by record identity, in batch order."""

    records: int = 0
    sent: int = 0
    #: Pushed to every peer (or nothing to push: arrived from a peer).
    delivered: list[str] = field(default_factory=list)
    #: Failed for a reason that passes: the platform must deliver these again.
    undelivered: list[str] = field(default_factory=list)
    #: Unreadable or refused for good: logged and acknowledged, never retried.
    poison: list[str] = field(default_factory=list)
    #: Nothing to replicate (a hard delete: this app writes tombstones).
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.undelivered

    def summary(self) -> str:
        detail = f": {'; '.join(self.errors[:3])}" if self.errors else ""
        return f"{len(self.undelivered)} of {self.records} changes not delivered{detail}"


def deliver_changes(
    logger: logging.Logger, records: Sequence[ChangeRecord], app: Callable[[], Overcast]
) -> DeliveryReport:
    """Read every record, forward the messages to every peer, and sort the records by outcome."""
    report = DeliveryReport(records=len(records))
    pending: list[tuple[str, Message]] = []
    for record in records:
        try:
            message = record.read(app)
        except ValidationError as error:
            log(logger, logging.ERROR, "poison change record acknowledged", id=record.ident, error=error.message)
            report.poison.append(record.ident)
            continue
        except Exception as exc:  # the store did not answer, the app is not built: retry this record
            log(logger, logging.WARNING, "change record not read", id=record.ident, error=_describe(exc))
            report.undelivered.append(record.ident)
            report.errors.append(_describe(exc))
            continue
        if message is None:
            log(logger, logging.WARNING, "hard delete ignored (deletes are tombstones)", id=record.ident)
            report.skipped.append(record.ident)
        else:
            pending.append((record.ident, message))
    if pending:
        _forward(logger, app, pending, report)
        _note(logger, app, pending, report)
    order = {r.ident: i for i, r in enumerate(records)}
    report.undelivered.sort(key=order.__getitem__)
    if report.undelivered:
        log(
            logger,
            logging.WARNING,
            "change batch not delivered",
            failed=len(report.undelivered),
            records=report.records,
            errors=report.errors[:5],
        )
    return report


def _forward(
    logger: logging.Logger, app: Callable[[], Overcast], pending: list[tuple[str, Message]], report: DeliveryReport
) -> None:
    try:
        result = app().replicator.forward([message for _, message in pending])
    except Exception as exc:  # no app, or nothing confirmed delivered (bad settings, a bug): retry all
        log(logger, logging.ERROR, "replication forward failed", error=_describe(exc))
        report.undelivered += [ident for ident, _ in pending]
        report.errors.append(_describe(exc))
        return
    report.sent += result.sent
    report.errors += result.errors
    undelivered = {_key(m) for m in result.failed}
    poison = {_key(m) for m in result.poison}
    for ident, message in pending:
        key = _key(message)
        if key in undelivered:
            report.undelivered.append(ident)
        elif key in poison:  # refused for good by a peer: core.replication logged it
            report.poison.append(ident)
        else:
            report.delivered.append(ident)


def _note(
    logger: logging.Logger, app: Callable[[], Overcast], pending: list[tuple[str, Message]], report: DeliveryReport
) -> None:
    """Hand the batch to the store's own bookkeeping (``MessageStore.note_changes``: DynamoDB keeps
    its digest tree from it), after forwarding, so it never delays replication. If it fails, the
    records come back undelivered: the retry forwards them again (a no-op at the peers) and notes
    them again (idempotent)."""
    try:
        app().store.note_changes([message for _, message in pending])
    except Exception as exc:
        log(logger, logging.WARNING, "change batch not noted by the store", error=_describe(exc))
        settled = set(report.undelivered) | set(report.poison)  # poison stays acknowledged
        report.undelivered += [ident for ident, _ in pending if ident not in settled]
        report.delivered = []  # every delivered record was pending: each now comes back
        report.errors.append(_describe(exc))


def _key(message: Message) -> tuple[str, str, str]:
    return (message.channel, message.id, str(message.version))


def _describe(exc: BaseException) -> str:
    return f"{exc.code}: {exc.message}" if isinstance(exc, OvercastError) else f"{type(exc).__name__}: {exc}"

"""FirestoreMessageStore: messages as Firestore documents, conditional writes done natively.

Layout (one database per deployment; see docs/gcp.md):

    channels/{channel}/messages/{id}   one document per message or tombstone, the record's fields

* listing newest first = a query on the channel's ``messages`` collection ordered by ``sort_key``
  descending with ``sort_key < cursor`` (a single-field index Firestore keeps automatically);
* changes since a version = a collection-group query on ``messages`` with ``version > since``
  ordered by ``version`` (needs the collection-group scope of the ``version`` index enabled:
  docs/gcp.md has the ``gcloud firestore indexes fields update`` line);
* ``create`` = ``DocumentReference.create`` (the server's exists=false precondition);
* ``put_if_newer`` = a transaction: read the stored version, compare, set.

Every call runs with an explicit timeout and a short retry deadline, and every Google exception is
translated into core's taxonomy here, so a sick Firestore turns into a prompt 503, never a hang.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.auth import exceptions as auth_exc
from google.cloud import firestore

from core.errors import AlreadyExists, ConfigurationError, OvercastError, Unavailable
from core.logs import get_logger
from core.model import Message
from core.ports import MessageStore

T = TypeVar("T")
logger = get_logger("firestore")
_DESCENDING = firestore.Query.DESCENDING
_PING_DOCUMENT = "_ping"  # never a channel: channel names start with [a-z0-9]
_MAX_BATCH = 300


class FirestoreMessageStore(MessageStore):
    """A ``MessageStore`` on a prebuilt ``google.cloud.firestore.Client`` (tests pass an emulator's).

    ``timeout_s`` bounds each operation (retries included); ``ping_timeout_s`` bounds the health
    round trip; ``max_attempts`` bounds how often a transaction that Firestore aborted for
    contention is run again before the caller gets a 503.
    """

    kind = "firestore"

    def __init__(
        self,
        client: firestore.Client,
        *,
        collection: str = "channels",
        messages: str = "messages",
        timeout_s: float = 5.0,
        ping_timeout_s: float = 1.5,
        max_attempts: int = 5,
    ) -> None:
        if not collection or "/" in collection or not messages or "/" in messages:
            raise ConfigurationError(
                f"Firestore collection names must be single path segments: {collection!r}, {messages!r}"
            )
        self.client = client
        self.collection = collection
        self.messages = messages
        self.timeout_s = timeout_s
        self.ping_timeout_s = ping_timeout_s
        self.max_attempts = max(1, max_attempts)
        # Transient errors (UNAVAILABLE, INTERNAL, RESOURCE_EXHAUSTED) are retried briefly; the
        # library's own default would keep retrying for 60 s.
        self._retry = gretry.Retry(
            predicate=gretry.if_transient_error, initial=0.05, maximum=1.0, multiplier=2.0, timeout=timeout_s
        )
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # -- references ---------------------------------------------------------------------------

    def _channel_messages(self, channel: str) -> firestore.CollectionReference:
        return self.client.collection(self.collection, channel, self.messages)

    def _document(self, channel: str, message_id: str) -> firestore.DocumentReference:
        return self.client.document(self.collection, channel, self.messages, message_id)

    # -- the port -----------------------------------------------------------------------------

    def _create(self, message: Message) -> None:
        with _translated("create"):
            self._document(message.channel, message.id).create(
                message.to_record(), retry=self._retry, timeout=self.timeout_s
            )

    def _put_if_newer(self, message: Message) -> bool:
        reference = self._document(message.channel, message.id)
        record = message.to_record()
        for attempt in range(1, self.max_attempts + 1):
            try:
                with _translated("put_if_newer"):
                    return self._bounded(lambda: self._write_if_newer(reference, record))
            except _Contention as exc:
                if attempt == self.max_attempts:
                    raise Unavailable(
                        f"Firestore transaction aborted {attempt} times by contention on {message.channel}/{message.id}",
                        retry_after=1,
                        code="store_contention",
                    ) from exc.__cause__
                # Jittered exponential backoff: writers that collided should not collide again.
                time.sleep(random.uniform(0, min(2.0, 0.1 * 2**attempt)))
        raise AssertionError("unreachable")

    def _write_if_newer(self, reference: firestore.DocumentReference, record: dict[str, Any]) -> bool:
        def body(transaction: firestore.Transaction) -> bool:
            snapshot = reference.get(transaction=transaction, retry=self._retry, timeout=self.timeout_s)
            if snapshot.exists and str(snapshot.get("version")) >= record["version"]:
                return False  # versions are fixed-width strings: string order is version order
            transaction.set(reference, record)
            return True

        # One attempt per transaction object: the loop in _put_if_newer owns retries (with backoff),
        # and a fresh decorator per call because _Transactional keeps per-call state on itself.
        transaction = self.client.transaction(max_attempts=1)
        try:
            return bool(firestore.transactional(body)(transaction))
        except gexc.Aborted as exc:
            raise _Contention() from exc
        except ValueError as exc:  # "Failed to commit transaction in 1 attempts", caused by Aborted
            if isinstance(exc.__cause__, gexc.Aborted):
                raise _Contention() from exc.__cause__
            raise

    def _get(self, channel: str, message_id: str) -> Message | None:
        with _translated("get"):
            snapshot = self._document(channel, message_id).get(retry=self._retry, timeout=self.timeout_s)
        data = snapshot.to_dict() if snapshot.exists else None
        return Message.from_record(data) if data else None

    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        batch = min(max(page_hint, 10), _MAX_BATCH)
        bound = before
        while True:
            query = self._channel_messages(channel).order_by("sort_key", direction=_DESCENDING).limit(batch)
            if bound is not None:
                query = query.where(filter=firestore.FieldFilter("sort_key", "<", bound))
            with _translated("list"):
                records = [
                    snapshot.to_dict() or {} for snapshot in query.get(retry=self._retry, timeout=self.timeout_s)
                ]
            yield from (Message.from_record(record) for record in records)
            if len(records) < batch:
                return
            bound = str(records[-1]["sort_key"])

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        query = (
            self.client.collection_group(self.messages)
            .where(filter=firestore.FieldFilter("version", ">", since or ""))
            .order_by("version")
            .limit(limit)
        )
        with _translated("changes_since"):
            records = [snapshot.to_dict() or {} for snapshot in query.get(retry=self._retry, timeout=self.timeout_s)]
        return [Message.from_record(record) for record in records]

    def _ping(self) -> None:
        # A real read (of a document that never exists), no retries: a health check measures.
        with _translated("ping"):
            self.client.document(self.collection, _PING_DOCUMENT).get(retry=None, timeout=self.ping_timeout_s)

    def close(self) -> None:
        """Stops the transaction worker threads. The client belongs to whoever built it."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    # -- helpers ------------------------------------------------------------------------------

    def _bounded(self, work: Callable[[], T]) -> T:
        """Run ``work`` with a wall-clock bound of ``timeout_s``.

        The client library's transaction calls (BeginTransaction, Commit, Rollback) take no timeout
        or retry arguments and retry UNAVAILABLE for up to 60 s, which would hold a request (and the
        peer pushing a replication batch) far past any useful answer. They run on a worker thread;
        if it has not answered in time the caller gets a 503 and the thread finishes on its own —
        harmlessly, because a late commit is still a valid last-writer-wins write.
        """
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="firestore-tx")
            pool = self._pool
        future = pool.submit(work)
        try:
            return future.result(timeout=self.timeout_s + self.ping_timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise Unavailable(
                f"Firestore did not finish a transaction within {self.timeout_s:.1f} s",
                retry_after=5,
                code="store_timeout",
            ) from None


class _Contention(Exception):
    """A transaction attempt that Firestore aborted because another one touched the document."""


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    """Translate every Google exception into core's taxonomy (``raise ... from``)."""
    try:
        yield
    except (OvercastError, _Contention):
        raise
    except gexc.AlreadyExists as exc:
        raise AlreadyExists(f"Firestore {action}: document exists") from exc
    except gexc.Aborted as exc:  # outside put_if_newer's loop: still contention, still retryable
        raise Unavailable(f"Firestore {action}: aborted by contention", retry_after=1, code="store_contention") from exc
    except (gexc.NotFound, gexc.FailedPrecondition, gexc.PermissionDenied, gexc.Unauthenticated) as exc:
        # A missing database, a Datastore-mode database, a missing collection-group index, a
        # service account without roles/datastore.user: nothing a retry fixes.
        raise ConfigurationError(f"Firestore {action}: {type(exc).__name__}: {exc.message}") from exc
    except gexc.TooManyRequests as exc:
        raise Unavailable(
            f"Firestore {action}: throttled: {exc.message}", retry_after=2, code="store_throttled"
        ) from exc
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.Cancelled) as exc:
        raise Unavailable(f"Firestore {action}: {type(exc).__name__}: {exc.message}", retry_after=1) from exc
    except gexc.RetryError as exc:  # our short retry deadline ran out on transient errors
        raise Unavailable(f"Firestore {action}: gave up after retrying: {exc.cause}", retry_after=1) from exc
    except gexc.GoogleAPIError as exc:  # InvalidArgument and other answers we do not expect
        raise Unavailable(
            f"Firestore {action}: {type(exc).__name__}: {exc}", retry_after=5, code="store_error"
        ) from exc
    except auth_exc.TransportError as exc:  # the metadata server (credentials) did not answer
        raise Unavailable(f"Firestore {action}: credentials unavailable: {exc}", retry_after=2) from exc
    except auth_exc.GoogleAuthError as exc:
        raise ConfigurationError(f"Firestore {action}: credentials: {exc}") from exc

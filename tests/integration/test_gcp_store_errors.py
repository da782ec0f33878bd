"""FirestoreMessageStore under failure: every Google error becomes core's taxonomy, promptly.

An unreachable endpoint, an endpoint that accepts TCP and never answers (a hung service), and a
document held by another transaction (contention past the retry bound) — all against real
sockets and the real emulator, no mocks.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google.cloud import firestore

from adapters.gcp.store import FirestoreMessageStore
from core.errors import ConfigurationError, Unavailable
from core.model import Message
from emulators.base import free_port
from emulators.firestore import emulator_env
from tests.contract.store_suite import make_message, newer

pytestmark = pytest.mark.emulator("firestore")


def _client_for(host_port: str) -> firestore.Client:
    with emulator_env(host_port):
        return firestore.Client(project="demo-overcast")


@pytest.fixture
def unreachable_store() -> Iterator[FirestoreMessageStore]:
    client = _client_for(f"127.0.0.1:{free_port()}")  # nothing listens there
    store = FirestoreMessageStore(client, timeout_s=1.0, ping_timeout_s=0.5)
    yield store
    store.close()
    client.close()


@pytest.fixture
def hung_store() -> Iterator[FirestoreMessageStore]:
    """A socket that completes the TCP handshake (the kernel's backlog) but never speaks HTTP/2."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    client = _client_for(f"127.0.0.1:{listener.getsockname()[1]}")
    store = FirestoreMessageStore(client, timeout_s=1.0, ping_timeout_s=0.5)
    yield store
    store.close()
    client.close()
    listener.close()


OPERATIONS: dict[str, Callable[[FirestoreMessageStore, Message], Any]] = {
    "ping": lambda store, m: store.ping(),
    "get": lambda store, m: store.get(m.channel, m.id),
    "create": lambda store, m: store.create(m),
    "put_if_newer": lambda store, m: store.put_if_newer(m),
    "list": lambda store, m: store.list(m.channel, 10),
    "changes_since": lambda store, m: store.changes_since(None, 10),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_unreachable_firestore_is_a_prompt_unavailable(
    unreachable_store: FirestoreMessageStore, operation: str
) -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable) as caught:
        OPERATIONS[operation](unreachable_store, make_message())
    assert not isinstance(caught.value, ConfigurationError)
    if operation == "put_if_newer":  # the library's transaction calls retry for 60 s: cut off on our bound
        assert caught.value.code == "store_timeout"
    else:
        assert caught.value.__cause__ is not None  # translated with `raise ... from`
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("operation", ["ping", "get", "put_if_newer"])
def test_hung_firestore_is_a_prompt_unavailable(hung_store: FirestoreMessageStore, operation: str) -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable):
        OPERATIONS[operation](hung_store, make_message())
    # ping is what /health/deep runs: Route 53 gives it 2 s.
    assert time.monotonic() - started < (1.0 if operation == "ping" else 3.0)


def test_contention_past_the_retry_bound_is_unavailable_and_writes_nothing(firestore_db: Any) -> None:
    store = FirestoreMessageStore(firestore_db, max_attempts=2, timeout_s=10)
    message = make_message()
    store.create(message)
    reference = firestore_db.document("channels", message.channel, "messages", message.id)
    # Another writer holds the document: a transaction that has read it and not committed yet.
    held = firestore_db.transaction()
    held._begin()  # the public API only offers the decorator, which cannot be held open
    reference.get(transaction=held)
    try:
        with pytest.raises(Unavailable) as caught:
            store.put_if_newer(newer(message, text="blocked"))
        assert caught.value.code == "store_contention"
    finally:
        held._rollback()
    assert store.get(message.channel, message.id) == message
    assert store.put_if_newer(newer(message, text="free again")) is True


def test_bad_collection_names_are_configuration_errors(firestore_db: Any) -> None:
    with pytest.raises(ConfigurationError):
        FirestoreMessageStore(firestore_db, collection="a/b")

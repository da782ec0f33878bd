"""The conformance suite against the official Cloud Firestore emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.gcp.store import FirestoreMessageStore
from tests.contract.store_suite import MessageStoreConformance

pytestmark = pytest.mark.emulator("firestore")


class TestFirestoreStore(MessageStoreConformance):
    @pytest.fixture
    def store(self, firestore_db: Any) -> Iterator[FirestoreMessageStore]:
        # Emulator deviation: its transactions take read locks and resolve the resulting deadlocks
        # only by a 2 s lock timeout that can abort every writer of a round, where Firestore's
        # wound-wait lets the oldest through. On a loaded machine the race tests' 8 writers can
        # need more rounds than the production default of 5 attempts, so the suite allows 10.
        store = FirestoreMessageStore(firestore_db, max_attempts=10)
        yield store
        store.close()

"""The conformance suite against the official Cloud Firestore emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from adapters.gcp.firestore_store import FirestoreMessageStore
from tests.contract.store_suite import MessageStoreConformance

pytestmark = pytest.mark.emulator("firestore")


class TestFirestoreStore(MessageStoreConformance):
    @pytest.fixture
    def store(self, firestore_db: Any) -> Iterator[FirestoreMessageStore]:
        store = FirestoreMessageStore(firestore_db)
        yield store
        store.close()

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.local.store import SqliteMessageStore
from tests.contract.store_suite import MessageStoreConformance


class TestSqliteStore(MessageStoreConformance):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqliteMessageStore]:
        store = SqliteMessageStore(tmp_path / "messages.sqlite")
        yield store
        store.close()

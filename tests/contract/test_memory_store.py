import pytest

from tests.contract.store_suite import MessageStoreConformance
from tests.fakes import InMemoryMessageStore


class TestInMemoryStore(MessageStoreConformance):
    @pytest.fixture
    def store(self) -> InMemoryMessageStore:
        return InMemoryMessageStore()

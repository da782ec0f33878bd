"""The conformance suite on CosmosMessageStore, against the Cosmos DB emulator over real HTTPS."""

from typing import Any

import pytest

from adapters.azure.store import CosmosMessageStore
from tests.contract.store_suite import MessageStoreConformance

pytestmark = pytest.mark.emulator("cosmos")


class TestCosmosStore(MessageStoreConformance):
    @pytest.fixture
    def store(self, cosmos_container: Any) -> CosmosMessageStore:
        return CosmosMessageStore(cosmos_container)

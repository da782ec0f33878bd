"""The conformance suite on OpenwhiskMessageStore, against a local openwhisk emulator over a real socket."""

from typing import Any

import pytest

from adapters.openwhisk.store import OpenwhiskMessageStore
from tests.contract.store_suite import MessageStoreConformance

pytestmark = pytest.mark.emulator("openwhisk")


class TestOpenwhiskStore(MessageStoreConformance):
    @pytest.fixture
    def store(self, openwhisk_client: Any) -> OpenwhiskMessageStore:
        return OpenwhiskMessageStore(openwhisk_client)

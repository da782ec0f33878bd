"""The conformance suite on CloudantMessageStore, against pouchdb-server (CouchDB protocol) over a real socket."""

from typing import Any

import pytest

from adapters.openwhisk.store import CloudantMessageStore
from tests.contract.store_suite import MessageStoreConformance

pytestmark = pytest.mark.emulator("pouchdb")


class TestCloudantStore(MessageStoreConformance):
    @pytest.fixture
    def store(self, cloudant_client: Any, cloudant_db: str) -> CloudantMessageStore:
        return CloudantMessageStore(cloudant_client, cloudant_db)

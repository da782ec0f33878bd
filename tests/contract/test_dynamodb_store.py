"""The conformance suite on DynamoDB over a real socket: moto server and DynamoDB Local."""

from typing import Any

import pytest

from adapters.aws.store import DynamoDBMessageStore
from tests.contract.store_suite import MessageStoreConformance


class TestDynamoDBStore(MessageStoreConformance):
    @pytest.fixture
    def store(self, dynamodb_client: Any, dynamodb_table: str) -> DynamoDBMessageStore:
        return DynamoDBMessageStore(dynamodb_client, dynamodb_table)

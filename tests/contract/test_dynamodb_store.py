"""The conformance suite on DynamoDB over a real socket: moto server and DynamoDB Local."""

from typing import Any

import pytest

from adapters.aws.store import DynamoDBMessageStore
from tests.contract.store_suite import MessageStoreConformance


class TestDynamoDBStore(MessageStoreConformance):
    @pytest.fixture
    def store(self, dynamodb_client: Any, dynamodb_table: str) -> DynamoDBMessageStore:
        return DynamoDBMessageStore(dynamodb_client, dynamodb_table)


class _FollowingItsStream(DynamoDBMessageStore):
    """Test infrastructure: the kept tree brought up to date right after each write, as the
    stream consumer (handlers.aws.changes → note_changes) does a moment later in a deployment, so
    the conformance suite's tree questions see every write. tests/integration/test_aws_runtime.py
    keeps it from the real stream instead."""

    def _create(self, message: Any) -> None:
        super()._create(message)
        self.note_changes([message])

    def _put_if_newer(self, message: Any) -> bool:
        wrote = super()._put_if_newer(message)
        if wrote:
            self.note_changes([message])
        return wrote


class TestDynamoDBStoreKeptDigests(MessageStoreConformance):
    """The whole suite again with the digest tree kept in the table (adapters/aws/digests.py)."""

    @pytest.fixture
    def store(self, dynamodb_client: Any, dynamodb_table: str) -> DynamoDBMessageStore:
        return _FollowingItsStream(dynamodb_client, dynamodb_table, digests="kept")

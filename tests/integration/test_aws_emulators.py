"""The local DynamoDB servers themselves: loopback only, resettable, Streams on."""

from __future__ import annotations

import pytest

from adapters.aws.table import create_table
from emulators.dynamodb_local import DynamoDBLocal, listening_addresses
from emulators.moto import MotoServer
from tests.fixtures.dynamodb import DynamoDBServer


@pytest.mark.emulator("moto")
def test_moto_listens_on_loopback_only_and_resets(moto_server: MotoServer) -> None:
    assert listening_addresses(moto_server.port) == {"127.0.0.1"}
    client = moto_server.client("dynamodb")
    create_table(client, "reset-me")
    moto_server.reset()
    assert "reset-me" not in client.list_tables()["TableNames"]


@pytest.mark.emulator("dynamodb-local")
def test_dynamodb_local_listens_on_loopback_only_despite_having_no_host_option(dynamodb_local: DynamoDBLocal) -> None:
    # Without the bind shim its Jetty would listen on 0.0.0.0 (every interface).
    assert listening_addresses(dynamodb_local.port) == {"127.0.0.1"}


def test_table_has_a_stream_on_both_servers(
    dynamodb_server: DynamoDBServer, dynamodb_client: object, dynamodb_table: str
) -> None:
    table = dynamodb_client.describe_table(TableName=dynamodb_table)["Table"]  # type: ignore[attr-defined]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["LatestStreamArn"]
    assert {i["IndexName"] for i in table["LocalSecondaryIndexes"]} == {"by_sort_key"}
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"by_version"}

"""The AWS provider's registration (see ``adapters.registry``); importing it imports no SDK."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.registry import ProviderSpec, is_loopback

if TYPE_CHECKING:
    from core.ports import MessageStore

SPEC = ProviderSpec(
    name="aws",
    vendor_modules=("boto3", "botocore"),
    handler="handlers.aws",
    events="adapters.aws.events",
    store_class="adapters.aws.store:DynamoDBMessageStore",
    store_scheme="dynamodb",
    store_opener="adapters.aws.provider:open_store",
    cloud="runtime.aws:AwsCloud",
    address="127.0.0.2",
    emulator="emulators.moto:MotoServer",
    fixtures=("tests.fixtures.dynamodb",),
    colour="#ff9900",
)


def open_store(target: str, query: Mapping[str, str]) -> MessageStore:
    """``dynamodb://TABLE?region=eu-west-1[&endpoint=http://127.0.0.1:8000][&digests=kept]``:
    credentials come from the SDK's usual chain; a loopback endpoint is a local emulator (any
    credentials); ``digests`` as OVERCAST_DYNAMODB_DIGESTS (adapters/aws/store.py)."""
    from adapters.aws.store import DynamoDBMessageStore, make_client

    table = target.strip("/")
    endpoint = query.get("endpoint") or None
    region = query.get("region") or os.environ.get("AWS_REGION") or "us-east-1"
    extra: dict[str, str] = {}
    if endpoint and is_loopback(endpoint):  # a local emulator accepts any credentials
        extra = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    digests = query.get("digests") or os.environ.get("OVERCAST_DYNAMODB_DIGESTS") or "scan"
    return DynamoDBMessageStore(make_client(region, endpoint, **extra), table, digests=digests)

"""The DynamoDB table design and the item codec. No SDK import: events.py and tests use it too.

Table (one per stage)::

    base table  pk = channel (S)    sk = message id (S)       get, create, put_if_newer
    LSI by_sort_key   pk, sort_key (S)                        newest-first listing per channel
    GSI by_version    vshard (N), version (S)                 changes since a version, all channels

* Listing uses a local secondary index so it can read strongly consistently (a client sees its
  own POST in the next GET). The price of an LSI is DynamoDB's 10 GB limit per item collection
  (one channel's items plus their index copies); a channel that outgrows it would need a GSI
  (eventually consistent) or time-bucketed partitions.
* Changes-since must order every channel by version. One GSI partition key for all items would
  cap writes at one partition's throughput (~1,000 writes/s), so items spread over
  ``VERSION_SHARDS`` fixed shards (crc32 of channel/id); a read queries each shard in version
  order and merges. GSIs are eventually consistent, which suits anti-entropy: a record missed by
  one pass is found by the next, because passes overlap in time.
* Both indexes project ALL attributes so a query answers without a second read per item.

``TABLE_PROPERTIES`` is written in CloudFormation's property names (which are also the
CreateTable parameter names): serverless.aws.yml declares the same table, and a packaging test
holds the two to each other.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from core.errors import ValidationError
from core.model import Message, Version, record_int

LISTING_INDEX = "by_sort_key"
VERSION_INDEX = "by_version"
#: Fixed at table design time: items carry their shard, so changing it needs a backfill.
VERSION_SHARDS = 4
#: Partition keys of the kept digest tree's items (adapters/aws/digests.py); never a channel's,
#: since channels start [a-z0-9].
TREE_PREFIX = "_tree#"


def is_tree_key(pk: str) -> bool:
    """Whether a partition key is one of the digest tree's (the stream consumer skips them)."""
    return pk.startswith(TREE_PREFIX)


TABLE_PROPERTIES: dict[str, Any] = {
    "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
        {"AttributeName": "sort_key", "AttributeType": "S"},
        {"AttributeName": "vshard", "AttributeType": "N"},
        {"AttributeName": "version", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "LocalSecondaryIndexes": [
        {
            "IndexName": LISTING_INDEX,
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sort_key", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    "GlobalSecondaryIndexes": [
        {
            "IndexName": VERSION_INDEX,
            "KeySchema": [
                {"AttributeName": "vshard", "KeyType": "HASH"},
                {"AttributeName": "version", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ],
    # NEW_AND_OLD_IMAGES: the replication hook needs the new image; the old one makes stream
    # records self-explanatory in logs and lets a consumer see what a write replaced.
    "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
}


def create_table_request(name: str) -> dict[str, Any]:
    """CreateTable parameters for the table serverless.aws.yml declares (minus point-in-time
    recovery, which is a separate UpdateContinuousBackups call on real AWS)."""
    request = {"TableName": name, **TABLE_PROPERTIES}
    request["StreamSpecification"] = {"StreamEnabled": True, **TABLE_PROPERTIES["StreamSpecification"]}
    return request


def create_table(client: Any, name: str, *, wait: bool = True) -> None:
    """Create the table (for emulators and local runs; deployments get it from CloudFormation).
    An existing table is left as it is."""
    try:
        client.create_table(**create_table_request(name))
    except client.exceptions.ResourceInUseException:
        return
    if wait:
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})


def version_shard(channel: str, message_id: str) -> int:
    return zlib.crc32(f"{channel}/{message_id}".encode()) % VERSION_SHARDS


def message_to_item(message: Message) -> dict[str, dict[str, Any]]:
    """Message → DynamoDB item in the low-level wire form (typed attribute values).

    Empty strings (a tombstone's author and text, a message posted without an Idempotency-Key
    has no request digest) are left out rather than stored: items stay smaller and every
    DynamoDB implementation accepts them (empty non-key strings are a 2020 addition)."""
    item: dict[str, dict[str, Any]] = {
        "pk": {"S": message.channel},
        "sk": {"S": message.id},
        "created_ms": {"N": str(message.created_ms)},
        "sort_key": {"S": message.sort_key},
        "version": {"S": str(message.version)},
        "deleted": {"BOOL": message.deleted},
        "vshard": {"N": str(version_shard(message.channel, message.id))},
    }
    if message.author:
        item["author"] = {"S": message.author}
    if message.text:
        item["text"] = {"S": message.text}
    if message.request_digest:
        item["request_digest"] = {"S": message.request_digest}
    return item


def item_to_message(item: Mapping[str, Any]) -> Message:
    """DynamoDB item (typed attribute values, as GetItem/Query or a stream image give it) →
    Message. Raises ValidationError for an item that is not a valid message record."""
    try:
        message = Message(
            channel=item["pk"]["S"],
            id=item["sk"]["S"],
            author=item["author"]["S"] if "author" in item else "",
            text=item["text"]["S"] if "text" in item else "",
            created_ms=record_int(item["created_ms"]["N"], "created_ms"),
            version=Version.parse(item["version"]["S"]),
            deleted=item["deleted"]["BOOL"],
            request_digest=item["request_digest"]["S"] if "request_digest" in item else "",
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValidationError(f"not a message item: {type(exc).__name__} {exc}", code="invalid_item") from exc
    return message  # Message checks its channel, id and every other field itself


def main(argv: list[str] | None = None) -> int:
    """``python -m adapters.aws.table --endpoint-url URL --table NAME``: create the table on a
    local DynamoDB (moto server, DynamoDB Local) with the definition serverless.aws.yml deploys."""
    import argparse
    import os

    from adapters.aws.store import make_client

    parser = argparse.ArgumentParser(prog="python -m adapters.aws.table", description=main.__doc__)
    parser.add_argument("--endpoint-url", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--table", default="overcast-dev-messages")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    args = parser.parse_args(argv)
    client = make_client(
        args.region,
        args.endpoint_url,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )
    create_table(client, args.table)
    described = client.describe_table(TableName=args.table)["Table"]
    print(f"table {args.table} ready (stream {described.get('LatestStreamArn', 'none')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""DynamoDBMessageStore: the message store on DynamoDB (table design in adapters/aws/table.py).

Every operation is one native DynamoDB call: conditional PutItem for create and put_if_newer,
consistent GetItem, Query on the listing LSI, Query per shard on the version GSI. Every botocore
exception is translated here, at the boundary, into core's error taxonomy.

With ``digests="kept"`` the anti-entropy digest tree lives in the table too (adapters/aws/digests.py),
kept by the stream consumer through ``note_changes``; with ``"scan"`` (no consumer keeps it) a
full pass computes it by scanning the version index, as every window pass does.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Any, Literal

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, PartialCredentialsError

from adapters.aws.digests import KeptTree, TreeConflict
from adapters.aws.table import LISTING_INDEX, VERSION_INDEX, VERSION_SHARDS, item_to_message, message_to_item
from core.digest import Digest, Entry, Position
from core.errors import AlreadyExists, ConfigurationError, OvercastError, Unavailable
from core.model import Message
from core.ports import MessageStore

#: How a full anti-entropy pass gets the store's digest tree (OVERCAST_DYNAMODB_DIGESTS).
DIGEST_MODES = ("scan", "kept")

#: Timeouts sized for Route 53: /health/deep must answer within 2 s, so one store call may take
#: ~1 s to connect and ~2 s to read, and botocore's standard retry mode (jittered backoff,
#: throttling-aware) makes at most 3 attempts before we report Unavailable.
CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 3},
    tcp_keepalive=True,
    max_pool_connections=16,
)

_THROTTLED = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
}
_TRANSIENT = {
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "TransactionConflictException",
    "TransactionInProgressException",
}
_MISCONFIGURED = {
    "AccessDeniedException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "ExpiredTokenException",
    "IncompleteSignatureException",
    "ValidationException",  # only reachable with a table whose schema is not ours
}
_PING_KEY = {"pk": {"S": "_overcast"}, "sk": {"S": "_ping"}}  # never a message: channels start [a-z0-9]


def make_client(region: str | None = None, endpoint_url: str | None = None, **kwargs: Any) -> Any:
    """A low-level DynamoDB client with the timeouts and retries above — the same client
    ``boto3.client("dynamodb")`` returns, built through botocore directly: the adapter uses no
    boto3 resource or transfer layer, and not importing them saves ~25 ms of every cold start.
    ``endpoint_url`` points it at an emulator (moto server, DynamoDB Local); extra kwargs
    (credentials) go to ``botocore.session.Session.create_client``."""
    try:
        return botocore.session.get_session().create_client(
            "dynamodb", region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG, **kwargs
        )
    except (NoRegionError, ValueError) as exc:
        raise ConfigurationError(f"DynamoDB client: {exc} (set AWS_REGION)") from exc


class DynamoDBMessageStore(MessageStore):
    kind = "dynamodb"

    def __init__(self, client: Any, table: str, *, digests: str = "scan") -> None:
        """``client`` is a prebuilt ``boto3.client("dynamodb")`` (see ``make_client``);
        ``digests`` is "kept" when the table's stream consumer keeps the digest tree."""
        if not table:
            raise ConfigurationError("DynamoDB table name is empty (set OVERCAST_DYNAMODB_TABLE)")
        if digests not in DIGEST_MODES:
            raise ConfigurationError(
                f"DynamoDB digests must be one of {', '.join(DIGEST_MODES)}, not {digests!r} "
                "(OVERCAST_DYNAMODB_DIGESTS)"
            )
        self.client = client
        self.table = table
        self.maintains_digests = digests == "kept"
        self.tree = KeptTree(client, table, self)
        self._translator = _Translated(self)

    # -- MessageStore steps ---------------------------------------------------------------------

    def _create(self, message: Message) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item=message_to_item(message),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                raise AlreadyExists(f"message {message.channel}/{message.id} exists") from exc
            raise self._translate(exc) from exc
        except BotoCoreError as exc:
            raise self._translate(exc) from exc

    def _put_if_newer(self, message: Message) -> bool:
        try:
            self.client.put_item(
                TableName=self.table,
                Item=message_to_item(message),
                # Versions are fixed-width strings whose order is version order (core.model).
                ConditionExpression="attribute_not_exists(pk) OR #v < :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": {"S": str(message.version)}},
            )
        except ClientError as exc:
            if _code(exc) == "ConditionalCheckFailedException":
                return False
            raise self._translate(exc) from exc
        except BotoCoreError as exc:
            raise self._translate(exc) from exc
        return True

    def _get(self, channel: str, message_id: str) -> Message | None:
        with self._translated():
            answer = self.client.get_item(
                TableName=self.table, Key={"pk": {"S": channel}, "sk": {"S": message_id}}, ConsistentRead=True
            )
        item = answer.get("Item")
        return item_to_message(item) if item else None

    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": LISTING_INDEX,
            "ScanIndexForward": False,
            "ConsistentRead": True,  # an LSI can: a client sees its own write in the next listing
            "Limit": max(page_hint, 1),
            "ExpressionAttributeNames": {"#pk": "pk"},
            "ExpressionAttributeValues": {":pk": {"S": channel}},
            "KeyConditionExpression": "#pk = :pk",
        }
        if before is not None:
            request["KeyConditionExpression"] = "#pk = :pk AND #sk < :before"
            request["ExpressionAttributeNames"]["#sk"] = "sort_key"
            request["ExpressionAttributeValues"][":before"] = {"S": before}
        yield from self._query_pages(request)

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        # Each shard is version-ordered; a lazy k-way merge reads at most what it returns plus
        # one page per shard. Pages of a shard's share of ``limit`` (the shards are filled
        # evenly by a key hash): a page of ``limit`` from each would read up to 4x what is kept.
        page = min(limit // VERSION_SHARDS + 16, limit, 1000)
        shards = [self._shard_changes(shard, since, page) for shard in range(VERSION_SHARDS)]
        merged = heapq.merge(*shards, key=lambda m: str(m.version))
        return list(itertools.islice(merged, limit))

    def _ping(self) -> None:
        # A real data-plane round trip (GetItem of a key no message can have): it proves the
        # table exists, the credentials work and the store answers. DescribeTable would hit the
        # control plane, whose rate limits are far lower than Route 53's probe rate.
        with self._translated():
            self.client.get_item(TableName=self.table, Key=_PING_KEY, ProjectionExpression="pk")

    # -- the kept digest tree (adapters/aws/digests.py) --------------------------------------------

    def _tree_digests(self, depth: int, start: int, stop: int, since: str | None) -> dict[int, Digest]:
        if since is not None or not self.maintains_digests:  # a window: scan it
            return super()._tree_digests(depth, start, stop, since)
        with self._translated():
            return self.tree.digests(depth, start, stop)

    def _tree_entries(
        self, start: int, stop: int, after: Position | None, limit: int, since: str | None
    ) -> list[Entry]:
        if since is not None or not self.maintains_digests:
            return super()._tree_entries(start, stop, after, limit, since)
        with self._translated():
            return self.tree.entries(start, stop, after, limit)

    def note_changes(self, messages: list[Message]) -> None:
        if self.maintains_digests:
            with self._translated():
                self.tree.apply(messages)

    def reindex(self, keys: list[tuple[str, str]]) -> None:
        if self.maintains_digests:
            held = [m for m in (self._get(channel, message_id) for channel, message_id in keys) if m is not None]
            self.note_changes(held)

    # -- helpers --------------------------------------------------------------------------------

    def _shard_changes(self, shard: int, since: str | None, page: int) -> Iterator[Message]:
        request: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": VERSION_INDEX,
            "Limit": page,
            "ReturnConsumedCapacity": "TOTAL",  # read units, for anti-entropy's figures
            "ExpressionAttributeNames": {"#s": "vshard"},
            "ExpressionAttributeValues": {":s": {"N": str(shard)}},
            "KeyConditionExpression": "#s = :s",
        }
        if since:
            request["KeyConditionExpression"] = "#s = :s AND #v > :since"
            request["ExpressionAttributeNames"]["#v"] = "version"
            request["ExpressionAttributeValues"][":since"] = {"S": since}
        return self._query_pages(request)

    def _query_pages(self, request: dict[str, Any]) -> Iterator[Message]:
        """Yield query results lazily, one page (one round trip) at a time."""
        while True:
            with self._translated():
                answer = self.client.query(**request)
            self.read_units += answer.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)
            for item in answer.get("Items", ()):
                yield item_to_message(item)
            last = answer.get("LastEvaluatedKey")
            if not last:
                return
            request = {**request, "ExclusiveStartKey": last}

    def _translated(self) -> _Translated:
        """``with self._translated():`` around SDK calls: botocore's exceptions leave as core's."""
        return self._translator

    def _translate(self, exc: Exception) -> OvercastError:
        """botocore exception → core error. Callers ``raise ... from exc``."""
        where = f"DynamoDB table {self.table!r}"
        if isinstance(exc, ClientError):
            code = _code(exc)
            message = exc.response.get("Error", {}).get("Message", "")
            if code == "ResourceNotFoundException":
                return ConfigurationError(
                    f"{where} does not exist in this account/region ({message}); check OVERCAST_DYNAMODB_TABLE"
                )
            if code in _THROTTLED:
                return Unavailable(f"{where} is throttling requests ({code})", retry_after=2, code="store_throttled")
            if code in _MISCONFIGURED:
                return ConfigurationError(f"{where}: {code}: {message}")
            if code == "ItemCollectionSizeLimitExceededException":
                return Unavailable(
                    f"{where}: a channel outgrew its 10 GB item collection", retry_after=60, code="store_full"
                )
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code in _TRANSIENT or status >= 500:
                return Unavailable(f"{where}: {code or status}: {message}", retry_after=1)
            return ConfigurationError(f"{where}: unexpected {code or status}: {message}")
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return ConfigurationError(f"{where}: no AWS credentials ({exc})")
        if isinstance(exc, NoRegionError):
            return ConfigurationError(f"{where}: no AWS region (set AWS_REGION)")
        # Connection refused/reset, DNS failure, connect or read timeout: the store is unreachable.
        return Unavailable(f"{where} unreachable: {type(exc).__name__}: {exc}", retry_after=1)


class _Translated:
    """The context of every SDK call: ClientError and BotoCoreError become core's errors
    (``DynamoDBMessageStore._translate``), a digest-tree conflict a retryable 503. One reusable
    object per store, not a generator per call: it wraps the SDK call of every request."""

    __slots__ = ("store",)

    def __init__(self, store: DynamoDBMessageStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> Literal[False]:
        if isinstance(exc, ClientError | BotoCoreError):
            raise self.store._translate(exc) from exc
        if isinstance(exc, TreeConflict):
            table = self.store.table
            raise Unavailable(f"DynamoDB table {table!r}: {exc}", retry_after=1, code="store_contention") from exc
        return False


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))

"""CosmosMessageStore: the message store on Azure Cosmos DB (NoSQL API), via azure-cosmos.

Data layout: one container, partition key ``/channel``, one item per message whose ``id`` is the
message id and whose body is ``Message.to_record()``. A channel's listing is a single-partition
query; a point read needs (channel, id), which every caller has.

Native operations, as the port asks:

- ``create``: ``create_item``; the service's 409 means the id exists (tombstone or not).
- ``put_if_newer``: optimistic concurrency on the item's etag. Read (with etag) → if missing,
  create (409: someone else created it first → loop); if the stored version is not older → False;
  else ``replace_item`` with ``If-Match: <etag>`` (412: someone wrote in between → loop). The loop
  is bounded; a key that stays contended past it answers Unavailable (clients and the change-feed
  retry policy try again).
- listing and ``changes_since``: parameterized queries only — user input never becomes SQL text.
  Every per-channel query also filters on ``c.channel`` and passes ``partition_key``, so it stays a
  single-partition query. ``changes_since`` is a cross-partition ``ORDER BY c.version``.

Every SDK exception is translated here (``raise ... from exc``): 409 → AlreadyExists, 412 →
retry, 404 on a point read → None, 404 elsewhere (container or database missing) and 401/403 (bad
key) → ConfigurationError, 429 → Unavailable with the service's ``x-ms-retry-after-ms``, 408/410/
449/5xx and connection errors/timeouts → Unavailable.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any, NoReturn

from azure.core import MatchConditions
from azure.core.exceptions import AzureError
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey
from azure.cosmos import exceptions as cosmos_errors

from core.errors import AlreadyExists, ConfigurationError, Unavailable
from core.model import RECORD_FIELDS, Message
from core.ports import RevisionedMessageStore

PARTITION_KEY_PATH = "/channel"
_PROJECTION = ", ".join(f"c.{name}" for name in RECORD_FIELDS)  # built from constants, never from input
_LIST_QUERY = f"SELECT {_PROJECTION} FROM c WHERE c.channel = @channel ORDER BY c.sort_key DESC"
_LIST_BEFORE_QUERY = (
    f"SELECT {_PROJECTION} FROM c WHERE c.channel = @channel AND c.sort_key < @before ORDER BY c.sort_key DESC"
)
_CHANGES_QUERY = f"SELECT TOP @limit {_PROJECTION} FROM c WHERE c.version > @since ORDER BY c.version ASC"
# The ping partition can never hold a message: channels are [a-z0-9_-] only.
_PING_CHANNEL = "~health"
_PING_QUERY = "SELECT TOP 1 c.id FROM c WHERE c.channel = @channel"
# Large free-text fields are never filtered or sorted on: keep them out of the index (fewer RUs
# per write). sort_key and version stay range-indexed for ORDER BY.
INDEXING_POLICY: dict[str, Any] = {
    "indexingMode": "consistent",
    "automatic": True,
    "includedPaths": [{"path": "/*"}],
    "excludedPaths": [
        {"path": "/text/?"},
        {"path": "/author/?"},
        {"path": "/request_digest/?"},
        {"path": '/"_etag"/?'},
    ],
}
_SUBSTATUS_OWNER_MISSING = 1003  # 404 sub-status: the container or database does not exist

_TRANSIENT = {408, 410, 449, 500, 502, 503, 504}


class CosmosMessageStore(RevisionedMessageStore):
    """MessageStore on a Cosmos DB container (partition key ``/channel``).

    ``container`` is a prebuilt ``ContainerProxy``, so tests point it at an emulator and a
    Function reuses one client across warm invocations. ``timeout_s`` bounds each SDK operation.
    """

    kind = "cosmos"

    def __init__(
        self,
        container: ContainerProxy,
        *,
        timeout_s: float = 5.0,
        ping_timeout_s: float = 1.5,
        max_write_attempts: int = 10,
    ) -> None:
        self.container = container
        self.timeout_s = timeout_s
        self.ping_timeout_s = ping_timeout_s
        self.max_write_attempts = max_write_attempts

    # -- port steps ---------------------------------------------------------------------------

    def _create(self, message: Message) -> None:
        try:
            self.container.create_item(message.to_record(), timeout=self.timeout_s)
        except cosmos_errors.CosmosResourceExistsError as exc:
            raise AlreadyExists(f"message {message.channel}/{message.id} exists") from exc
        except AzureError as exc:
            _translate(exc, "create")

    def _read_revision(self, channel: str, message_id: str) -> tuple[str | None, str | None]:
        item = self._read(channel, message_id)
        return (None, None) if item is None else (str(item.get("version", "")), str(item["_etag"]))

    def _write_if_revision(self, message: Message, revision: str | None) -> bool:
        record = message.to_record()
        try:
            if revision is None:
                self.container.create_item(record, timeout=self.timeout_s)
            else:
                self.container.replace_item(
                    message.id,
                    record,
                    etag=revision,
                    match_condition=MatchConditions.IfNotModified,
                    timeout=self.timeout_s,
                )
            return True
        except cosmos_errors.CosmosResourceExistsError:
            return False  # another writer created it between our read and create: compare again
        except cosmos_errors.CosmosAccessConditionFailedError:
            return False  # the etag moved: another writer replaced it, compare again
        except cosmos_errors.CosmosResourceNotFoundError as exc:
            if revision is None:  # a create cannot miss the item: the container is gone
                _translate(exc, "put_if_newer")
            return False  # replace found no item (removed out of band): start over
        except AzureError as exc:
            _translate(exc, "put_if_newer")

    def _get(self, channel: str, message_id: str) -> Message | None:
        item = self._read(channel, message_id)
        return Message.from_record(item) if item is not None else None

    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        parameters: list[dict[str, Any]] = [{"name": "@channel", "value": channel}]
        if before is not None:
            parameters.append({"name": "@before", "value": before})
        try:
            pages = self.container.query_items(
                _LIST_BEFORE_QUERY if before is not None else _LIST_QUERY,
                parameters=parameters,
                partition_key=channel,
                max_item_count=max(page_hint, 10),
                timeout=self.timeout_s,
            )
            # The pager fetches the next page only when this generator is advanced past the last.
            for item in pages:
                yield Message.from_record(item)
        except AzureError as exc:
            _translate(exc, "list")

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        try:
            items = self.container.query_items(
                _CHANGES_QUERY,
                parameters=[{"name": "@since", "value": since or ""}, {"name": "@limit", "value": limit}],
                enable_cross_partition_query=True,
                max_item_count=min(limit, 1000),
                timeout=self.timeout_s,
            )
            return [Message.from_record(item) for item in islice(items, limit)]
        except AzureError as exc:
            _translate(exc, "changes_since")

    def _ping(self) -> None:
        """A data-plane round trip (an empty single-partition query): it proves the account,
        key, database and container all answer, unlike a metadata read."""
        try:
            list(
                self.container.query_items(
                    _PING_QUERY,
                    parameters=[{"name": "@channel", "value": _PING_CHANNEL}],
                    partition_key=_PING_CHANNEL,
                    timeout=self.ping_timeout_s,
                    read_timeout=self.ping_timeout_s,  # `timeout` alone is checked only between attempts
                )
            )
        except AzureError as exc:
            _translate(exc, "ping")

    # -- helpers ------------------------------------------------------------------------------

    def _read(self, channel: str, message_id: str) -> dict[str, Any] | None:
        """Point read (1 RU) with the etag, or None when the item does not exist."""
        try:
            item: dict[str, Any] = self.container.read_item(message_id, partition_key=channel, timeout=self.timeout_s)
            return item
        except cosmos_errors.CosmosResourceNotFoundError as exc:
            if exc.sub_status == _SUBSTATUS_OWNER_MISSING:
                _translate(exc, "read")
            return None
        except AzureError as exc:
            _translate(exc, "read")


def _translate(exc: AzureError, operation: str) -> NoReturn:
    """Raise the core error for an SDK exception (the caller handled the expected ones)."""
    if isinstance(exc, cosmos_errors.CosmosHttpResponseError):
        status = exc.status_code or 0
        if status == 404:
            raise ConfigurationError(
                f"Cosmos DB {operation}: database or container not found (check COSMOS_DATABASE/COSMOS_CONTAINER)"
            ) from exc
        if status in (401, 403):
            raise ConfigurationError(f"Cosmos DB {operation}: access denied ({status}); check COSMOS_KEY") from exc
        if status == 429:
            raise Unavailable(
                f"Cosmos DB {operation}: request rate too large",
                retry_after=_retry_after_s(exc.headers),
                code="store_throttled",
            ) from exc
        if status in _TRANSIENT:
            raise Unavailable(f"Cosmos DB {operation}: service answered {status}", retry_after=2) from exc
        raise Unavailable(
            f"Cosmos DB {operation}: unexpected status {status}", retry_after=5, code="store_error"
        ) from exc
    # No HTTP answer at all: connection refused/reset, TLS failure, timeout.
    raise Unavailable(
        f"Cosmos DB {operation}: unreachable ({type(exc).__name__})", retry_after=2, code="store_unreachable"
    ) from exc


def _retry_after_s(headers: Mapping[str, Any] | None) -> float:
    try:
        return max(float((headers or {}).get("x-ms-retry-after-ms", 1000)) / 1000, 0.001)
    except (TypeError, ValueError):
        return 1.0


#: Connections the client keeps open to the account. One worker process uses the client from
#: its concurrent HTTP invocations (host.json maxConcurrentRequests, 10), the 8 workers that
#: apply a replicated batch (core.replication), the change-feed function and the deep-health
#: pings. The SDK's default pool (requests: 10) is smaller than that, so under load every
#: request past the tenth opened a new TLS connection and the pool then threw one away: a TLS
#: handshake and a certificate-store load per request (about a sixth of the Azure runtime's CPU
#: at 50 replicated writes/s, measured with py-spy; docs/replication.md "Throughput").
POOL_CONNECTIONS = 32


@functools.cache
def pooled_transport_class() -> type:
    """azure-core's requests transport with a connection pool of ``pool_size`` per host
    (otherwise exactly its own session set-up: the same adapter type, retries left to the SDK).
    Defined on first use: requests and the transport then load when the first client is built,
    as the SDK would load them anyway, and importing the handler (a cold start's first step)
    stays without them."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    class PooledRequestsTransport(RequestsTransport):
        def __init__(self, pool_size: int = POOL_CONNECTIONS, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.pool_size = pool_size

        def _init_session(self, session: requests.Session) -> None:
            super()._init_session(session)
            for prefix in ("http://", "https://"):
                default = session.get_adapter(prefix)
                if not isinstance(default, requests.adapters.HTTPAdapter):
                    continue
                adapter = type(default)(
                    max_retries=default.max_retries, pool_connections=self.pool_size, pool_maxsize=self.pool_size
                )
                session.mount(prefix, adapter)

    return PooledRequestsTransport


def cosmos_client(
    endpoint: str,
    key: str,
    *,
    timeout_s: float = 5.0,
    connection_timeout_s: float = 2.0,
    throttle_retries: int = 3,
    pool_size: int = POOL_CONNECTIONS,
    **client_options: Any,
) -> CosmosClient:
    """A CosmosClient with bounds that suit a Function: short connect timeout, few throttling
    retries (the caller gets a 503 with Retry-After rather than a request that hangs), and a
    connection pool as large as the process's concurrency (``POOL_CONNECTIONS``).

    Building the client reads the account (its regions), so an unreachable or refusing account
    fails here, translated like any other call."""
    if "transport" not in client_options:
        client_options["transport"] = pooled_transport_class()(pool_size)
    try:
        return CosmosClient(
            endpoint,
            credential=key,
            connection_timeout=connection_timeout_s,
            read_timeout=timeout_s,
            retry_throttle_total=max(throttle_retries, 1),  # the SDK reads 0 as "unset" (its default, 9)
            retry_throttle_backoff_max=2,
            **client_options,
        )
    except AzureError as exc:
        _translate(exc, "connect")
    except ValueError as exc:  # a malformed key (not base64) or endpoint
        raise ConfigurationError(f"Cosmos DB client: {exc} (check COSMOS_ENDPOINT/COSMOS_KEY)") from exc


def ensure_container(client: CosmosClient, database: str, container: str) -> ContainerProxy:
    """Create the database and container if missing (local set-up, tests). Deployed apps get them
    from infrastructure; they only call ``client.get_database_client(...).get_container_client``."""
    try:
        db = client.create_database_if_not_exists(database)
        return db.create_container_if_not_exists(
            container, partition_key=PartitionKey(PARTITION_KEY_PATH), indexing_policy=INDEXING_POLICY
        )
    except AzureError as exc:
        _translate(exc, "create container")

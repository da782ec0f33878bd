"""CloudantMessageStore: the message store on IBM Cloudant (Apache CouchDB API), via ``ibmcloudant``.

Data layout: one database, one JSON document per message whose ``_id`` is ``"<channel>:<id>"``
(channels are ``[a-z0-9_-]`` and ids ``[0-9a-z]``, so the colon is unambiguous) and whose body is
``Message.to_record()``. A partitioned database (partition key = channel) would make listings
single-partition queries on the real service; it is not used because the local CouchDB-protocol
server (pouchdb-server) has no partitioned databases, and a per-channel JSON index serves the same
queries on both.

Native operations, as the port asks:

- ``create``: ``PUT /{db}/{_id}`` without a ``_rev``; CouchDB answers 409 when the document
  exists (tombstone or not) → AlreadyExists.
- ``put_if_newer``: optimistic concurrency on the document revision (MVCC). Read the document and
  its ``_rev`` → if missing, PUT without ``_rev`` (409: created meanwhile → loop); if the stored
  version is not older → False; else PUT with ``_rev`` (409: another writer moved the revision →
  loop). Bounded; a document that stays contended answers Unavailable (``store_contention``).
- ``list``: Mango ``_find`` on the json index ``[channel, sort_key]`` (``ensure_indexes``),
  ``sort_key < before``, sorted descending, fetched in batches.
- ``changes_since``: Mango ``_find`` on the json index ``[version]``, ``version > since``, sorted
  ascending. ``_changes`` is in sequence order, not version order, and cannot start "after a
  version", so it feeds the replication trigger (runtime/openwhisk.py) but not this method.
- Paging: a short ``_find`` page is not taken as the end of the results; only an empty page is.
  CouchDB does not promise full pages (and pouchdb-server applies ``limit`` before an exclusive
  bound); the cost is one extra round trip when a scan runs out.

Version and sort-key strings use only ``[0-9a-z~-]`` at fixed positions, so CouchDB's ICU collation
of index keys orders them exactly like Python's string comparison.

Every SDK exception is translated here (``raise ... from exc``): 409/412 on writes → conflict
(AlreadyExists or a retry), 404 on a point read → None, 404 for the database (``no_db_file`` /
"Database does not exist.") and 401/403 → ConfigurationError, 429 → Unavailable with the service's
Retry-After, 5xx and connection errors/timeouts → Unavailable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NoReturn

import requests
from ibm_cloud_sdk_core import ApiException
from ibmcloudant.cloudant_v1 import CloudantV1, Document

from core.errors import AlreadyExists, ConfigurationError, Unavailable
from core.model import RECORD_FIELDS, Message
from core.ports import RevisionedMessageStore

DESIGN_DOC = "overcast"
LIST_INDEX = "by-channel-sort-key"
VERSION_INDEX = "by-version"
#: The json indexes the queries use: created by ``ensure_indexes`` (tests, local runs, deployment).
INDEXES: dict[str, list[dict[str, str]]] = {
    LIST_INDEX: [{"channel": "desc"}, {"sort_key": "desc"}],
    VERSION_INDEX: [{"version": "asc"}],
}
_MISSING_DOC_REASONS = {"missing", "deleted"}
_TRANSIENT = {408, 500, 502, 503, 504}


def doc_id(channel: str, message_id: str) -> str:
    return f"{channel}:{message_id}"


class CloudantMessageStore(RevisionedMessageStore):
    """MessageStore on one Cloudant/CouchDB database.

    ``client`` is a prebuilt ``CloudantV1`` (its service URL and authenticator set), so tests point
    it at a local server and an action reuses one client across warm invocations.
    """

    kind = "cloudant"

    def __init__(
        self,
        client: CloudantV1,
        database: str,
        *,
        max_write_attempts: int = 12,
    ) -> None:
        self.client = client
        self.database = database
        self.max_write_attempts = max_write_attempts

    # -- port steps ---------------------------------------------------------------------------

    def _create(self, message: Message) -> None:
        try:
            self._put(message, rev=None)
        except ApiException as exc:
            if exc.status_code in (409, 412):
                raise AlreadyExists(f"message {message.channel}/{message.id} exists") from exc
            _translate(exc, "create")
        except requests.exceptions.RequestException as exc:
            _unreachable(exc, "create")

    def _read_revision(self, channel: str, message_id: str) -> tuple[str | None, str | None]:
        document = self._read(channel, message_id)
        return (None, None) if document is None else (str(document.get("version", "")), str(document["_rev"]))

    def _write_if_revision(self, message: Message, revision: str | None) -> bool:
        try:
            self._put(message, rev=revision)
            return True
        except ApiException as exc:
            if exc.status_code in (409, 412):
                return False  # created or updated meanwhile: read the new revision and compare again
            _translate(exc, "put_if_newer")
        except requests.exceptions.RequestException as exc:
            _unreachable(exc, "put_if_newer")

    def _get(self, channel: str, message_id: str) -> Message | None:
        document = self._read(channel, message_id)
        return Message.from_record(document) if document is not None else None

    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        batch = max(page_hint, 10)
        while True:
            selector: dict[str, Any] = {"channel": channel}
            if before is not None:
                selector["sort_key"] = {"$lt": before}
            else:
                selector["sort_key"] = {"$gt": None}  # every document with a sort_key (in the index)
            docs = self._find(selector, [{"channel": "desc"}, {"sort_key": "desc"}], batch, LIST_INDEX, "list")
            if not docs:
                return
            for document in docs:
                yield Message.from_record(document)
            before = str(docs[-1]["sort_key"])

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        found: list[Message] = []
        cursor = since
        while len(found) < limit:
            selector = {"version": {"$gt": cursor}} if cursor is not None else {"version": {"$gt": None}}
            docs = self._find(selector, [{"version": "asc"}], limit - len(found), VERSION_INDEX, "changes_since")
            if not docs:
                break
            found.extend(Message.from_record(document) for document in docs)
            cursor = str(docs[-1]["version"])
        return found

    def _ping(self) -> None:
        """A round trip that proves the URL, the credentials and the database: GET /{db}."""
        try:
            self.client.get_database_information(db=self.database)
        except ApiException as exc:
            _translate(exc, "ping")
        except requests.exceptions.RequestException as exc:
            _unreachable(exc, "ping")

    # -- helpers ------------------------------------------------------------------------------

    def _put(self, message: Message, rev: str | None) -> None:
        record = message.to_record()
        ident = doc_id(message.channel, message.id)
        # The SDK's Document takes the underscore fields as keyword arguments (_id, _rev); a dict
        # key "_rev" in the body is not sent.
        document = Document(_id=ident, _rev=rev, **record) if rev else Document(_id=ident, **record)
        self.client.put_document(db=self.database, doc_id=ident, document=document)

    def _read(self, channel: str, message_id: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.client.get_document(
                db=self.database, doc_id=doc_id(channel, message_id)
            ).get_result()
            return result
        except ApiException as exc:
            if exc.status_code == 404 and _reason(exc) in _MISSING_DOC_REASONS:
                return None
            _translate(exc, "read")
        except requests.exceptions.RequestException as exc:
            _unreachable(exc, "read")

    def _find(
        self, selector: dict[str, Any], sort: list[dict[str, str]], limit: int, index: str, operation: str
    ) -> list[dict[str, Any]]:
        try:
            result = self.client.post_find(
                db=self.database,
                selector=selector,
                sort=sort,
                limit=limit,
                fields=[*RECORD_FIELDS],
                use_index=[DESIGN_DOC, index],
            ).get_result()
        except ApiException as exc:
            _translate(exc, operation)
        except requests.exceptions.RequestException as exc:
            _unreachable(exc, operation)
        docs: list[dict[str, Any]] = result.get("docs", [])
        return docs


def _reason(exc: ApiException) -> str:
    try:
        body = exc.http_response.json() if exc.http_response is not None else {}
    except ValueError:
        return ""
    return str(body.get("reason", "")) if isinstance(body, Mapping) else ""


def _translate(exc: ApiException, operation: str) -> NoReturn:
    """Raise the core error for an SDK exception (the caller handled the expected ones)."""
    status = exc.status_code or 0
    if status == 404:
        raise ConfigurationError(
            f"Cloudant {operation}: database not found ({_reason(exc) or exc.message}); check CLOUDANT_DB"
        ) from exc
    if status in (401, 403):
        raise ConfigurationError(
            f"Cloudant {operation}: access denied ({status}); check CLOUDANT_APIKEY or CLOUDANT_USERNAME/PASSWORD"
        ) from exc
    if status == 429:
        raise Unavailable(
            f"Cloudant {operation}: too many requests", retry_after=_retry_after_s(exc), code="store_throttled"
        ) from exc
    if status == 400 and "index" in (exc.message or "").lower():
        raise ConfigurationError(
            f"Cloudant {operation}: {exc.message} (create the indexes: adapters.openwhisk.store.ensure_indexes)"
        ) from exc
    if status in _TRANSIENT or status >= 500:
        raise Unavailable(f"Cloudant {operation}: service answered {status}", retry_after=2) from exc
    raise Unavailable(
        f"Cloudant {operation}: unexpected status {status}: {exc.message}", retry_after=5, code="store_error"
    ) from exc


def _unreachable(exc: requests.exceptions.RequestException, operation: str) -> NoReturn:
    # No HTTP answer at all: connection refused/reset, DNS, TLS failure, timeout.
    raise Unavailable(
        f"Cloudant {operation}: unreachable ({type(exc).__name__})", retry_after=2, code="store_unreachable"
    ) from exc


def _retry_after_s(exc: ApiException) -> float:
    try:
        headers = exc.http_response.headers if exc.http_response is not None else {}
        return max(float(headers.get("retry-after", 1)), 0.001)
    except (TypeError, ValueError):
        return 1.0


def cloudant_client(
    url: str,
    *,
    apikey: str = "",
    username: str = "",
    password: str = "",
    connect_timeout_s: float = 2.0,
    read_timeout_s: float = 5.0,
) -> CloudantV1:
    """A CloudantV1 client with bounds that suit an action (short connect timeout, bounded reads).

    IAM API key → IAM tokens; username/password → basic auth (legacy credentials, and CouchDB);
    neither → no authentication, accepted for a loopback URL only (a local CouchDB-protocol
    server). Building the client does no I/O.
    """
    from ibm_cloud_sdk_core.authenticators import (
        Authenticator,
        BasicAuthenticator,
        IAMAuthenticator,
        NoAuthAuthenticator,
    )

    if not url.startswith(("https://", "http://")):
        raise ConfigurationError("CLOUDANT_URL must be the instance's https:// URL")
    try:
        authenticator: Authenticator
        if apikey:
            authenticator = IAMAuthenticator(apikey)
        elif username:
            authenticator = BasicAuthenticator(username, password)
        else:
            host = requests.utils.urlparse(url).hostname or ""
            if not host.startswith("127."):
                raise ConfigurationError(
                    "Cloudant credentials missing: set CLOUDANT_APIKEY (IAM) or CLOUDANT_USERNAME/CLOUDANT_PASSWORD"
                )
            authenticator = NoAuthAuthenticator()
        client = CloudantV1(authenticator=authenticator)
        client.set_service_url(url)
    except ValueError as exc:  # the SDK validates credentials and URLs with ValueError
        raise ConfigurationError(f"Cloudant client: {exc}") from exc
    client.set_http_config({"timeout": (connect_timeout_s, read_timeout_s)})
    return client


def ensure_indexes(client: CloudantV1, database: str, *, create_database: bool = False) -> None:
    """Create the database (optionally) and the json indexes the store queries use. Idempotent.
    Run once per deployment (docs/openwhisk.md) and by tests and the local runtime."""
    try:
        if create_database:
            try:
                client.put_database(db=database)
            except ApiException as exc:
                if exc.status_code != 412:  # 412 file_exists: already there
                    raise
        for name, fields in INDEXES.items():
            client.post_index(db=database, ddoc=DESIGN_DOC, name=name, type="json", index={"fields": fields})
    except ApiException as exc:
        _translate(exc, "ensure_indexes")
    except requests.exceptions.RequestException as exc:
        _unreachable(exc, "ensure_indexes")


def open_spec(target: str, query: Mapping[str, str]) -> CloudantMessageStore:
    """The ``cloudant://DATABASE?url=...`` store spec of tools.replication (verify, repair, the mesh).

    Secrets never go in a spec: the IAM API key is read from the variable named by ``apikey_env``
    (default CLOUDANT_APIKEY), or basic credentials from CLOUDANT_USERNAME/CLOUDANT_PASSWORD; a
    loopback URL (a local CouchDB-protocol server) needs none.
    """
    import os

    database = target.strip("/")
    url = query.get("url", "")
    if not (database and url):
        raise ConfigurationError("cloudant spec: cloudant://DATABASE?url=https://...&apikey_env=VAR")
    client = cloudant_client(
        url,
        apikey=os.environ.get(query.get("apikey_env", "CLOUDANT_APIKEY"), ""),
        username=os.environ.get("CLOUDANT_USERNAME", ""),
        password=os.environ.get("CLOUDANT_PASSWORD", ""),
    )
    return CloudantMessageStore(client, database)

"""Azure Functions event shapes ↔ core: HTTP trigger request/response and the Cosmos DB trigger's
change-feed batch.

The HTTP function is bound to the catch-all route ``{*path}`` under the host's route prefix
(``/api`` unless host.json says otherwise), so the route parameter ``path`` is the API path
without the prefix: ``/api/channels/london/messages`` arrives as ``path=channels/london/messages``.
When the parameter is absent (a request to the bare prefix, or a host that does not fill route
parameters) the path is taken from the URL with the prefix stripped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import azure.functions as func

from adapters.protocols import ChangeRecord, from_delivery, messages_of, unreadable
from core.errors import ValidationError
from core.http import Request, Response
from core.logs import get_logger, log
from core.model import Message

logger = get_logger("azure")

DEFAULT_ROUTE_PREFIX = "api"  # host.json extensions.http.routePrefix
ROUTE_PARAM = "path"  # the function.json route is "{*path}"


def to_request(req: func.HttpRequest, *, route_prefix: str = DEFAULT_ROUTE_PREFIX, invocation_id: str = "") -> Request:
    """A core Request from the Functions HTTP request. The client's ``x-request-id`` wins over the
    invocation id, so a caller can follow its own id through the logs."""
    headers = {name.lower(): value for name, value in req.headers.items()}
    return Request(
        method=req.method,
        path=api_path(req, route_prefix),
        query=dict(req.params),
        headers=headers,
        body=req.get_body() or b"",
        request_id="" if headers.get("x-request-id") else invocation_id,
    )


def api_path(req: func.HttpRequest, route_prefix: str = DEFAULT_ROUTE_PREFIX) -> str:
    routed = req.route_params.get(ROUTE_PARAM)
    if routed is not None:
        return "/" + routed.lstrip("/")
    return strip_route_prefix(unquote(urlsplit(req.url).path) or "/", route_prefix)


def strip_route_prefix(path: str, route_prefix: str) -> str:
    """``/api/health`` → ``/health`` for prefix "api"; a path outside the prefix is unchanged."""
    prefix = "/" + route_prefix.strip("/") if route_prefix.strip("/") else ""
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        return path[len(prefix) :] or "/"
    return path


def to_response(response: Response) -> func.HttpResponse:
    content_type = response.headers.get("content-type")
    return func.HttpResponse(
        body=response.body,
        status_code=response.status,
        headers=response.headers,
        mimetype=content_type.split(";", 1)[0].strip() if content_type else None,
    )


@dataclass
class ChangeFeedBatch:
    """The Cosmos DB trigger's batch (``func.DocumentList``) as messages.

    A document that is not a valid message record cannot become one by retrying, so it is logged
    and left out (``unreadable``) instead of blocking the lease forever; anything else in the
    batch still replicates.
    """

    messages: list[Message] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # ids of documents that are not messages

    @classmethod
    def from_documents(cls, documents: Iterable[Mapping[str, Any]]) -> ChangeFeedBatch:
        batch = cls()
        for document in documents:
            record = dict(document)
            try:
                batch.messages.append(Message.from_record(record))
            except ValidationError as error:
                ident = str(record.get("id", "?"))
                batch.unreadable.append(ident)
                log(logger, logging.ERROR, "unreadable change-feed document", id=ident, error=error.message)
        return batch


def to_documents(records: Iterable[Mapping[str, Any]]) -> func.DocumentList:
    """Records (as the change feed delivers them) → the trigger's ``func.DocumentList``. Used by
    the local host's change-feed emulation and by tests."""
    return func.DocumentList([func.Document.from_dict(dict(record)) for record in records])


# -- the event adapter (adapters.protocols.EventAdapter) -------------------------------------------


def to_changes(documents: Iterable[Mapping[str, Any]]) -> list[ChangeRecord]:
    """The Cosmos DB trigger's batch → one record per document, named by its id. A document that
    is not a message record is poison (logged and acknowledged by handlers.kit)."""
    if isinstance(documents, str | bytes | Mapping) or not isinstance(documents, Iterable):
        return [unreadable("(batch)", f"the change feed delivered a {type(documents).__name__}, not documents")]
    records = []
    for index, doc in enumerate(documents):
        if not isinstance(doc, Mapping):
            records.append(unreadable(f"#{index}", f"change-feed item {index} is a {type(doc).__name__}"))
            continue
        ident = doc.get("id")
        records.append(ChangeRecord(ident if isinstance(ident, str) and ident else f"#{index}", _reader(dict(doc))))
    return records


def to_messages(documents: Iterable[Mapping[str, Any]]) -> list[Message]:
    return messages_of(to_changes(documents))


def _reader(record: dict[str, Any]) -> Callable[[Callable[[], Any]], Message | None]:
    return from_delivery(lambda _app: Message.from_record(record))

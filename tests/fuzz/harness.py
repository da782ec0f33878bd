"""Every provider's entrypoints, driven in-process with hostile events.

Each ``Target`` is one entrypoint of one ``handlers.<provider>`` module and the recorded events it
takes (tests/events/<provider>/). ``call`` turns a (mutated) recorded event into the entrypoint's
argument the way the platform would — the Functions worker's own converters for Azure, the
CloudEvents parser functions-framework uses for GCP, a Werkzeug request for Flask — and when
that conversion itself fails (the platform could not have built it), the raw value is passed as
it is: a wrong-typed direct invocation, which must be answered all the same.

The app behind each handler is the real core over the in-memory store (the conformance suite
holds it to the same contract as the vendor stores): what is under test here is each
provider's event-shape mapping and its handler, not a vendor's store, and it keeps thousands of
events a run within seconds.
"""

from __future__ import annotations

import base64
import json
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.bootstrap import Overcast, bootstrap
from core.errors import Unavailable
from core.model import HybridLogicalClock
from core.ports import PeerResponse, PeerTransport
from core.settings import Settings
from tests.events import EVENTS_DIR, load_event
from tests.fakes import InMemoryMessageStore


class PeerStub(PeerTransport):
    """The peer cloud: takes every push (``accept``), refuses every push for good (``refuse``,
    HTTP 400 — the peer finds the record invalid), or cannot be reached (``down``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.pushes = 0

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        self.pushes += 1
        if self.mode == "down":
            raise Unavailable("peer unreachable", code="peer_unavailable")
        return PeerResponse(400 if self.mode == "refuse" else 200, b'{"applied":0,"ignored":0}')


def make_app(provider: str, transport: PeerTransport) -> Overcast:
    env = {
        "OVERCAST_PROVIDER": provider,
        "OVERCAST_ORIGIN": provider,
        "OVERCAST_PEERS": json.dumps([{"name": "peer", "url": "https://peer.example.net", "secret_env": "PEER_KEY"}]),
        "PEER_KEY": "pair-secret",
        "OVERCAST_AUTH_DISABLED": "true",
        "OVERCAST_LOG_LEVEL": "ERROR",
    }
    settings = Settings.from_env(env)
    return bootstrap(settings, InMemoryMessageStore(), transport, HybridLogicalClock(provider))


def install(module: types.ModuleType, app: Overcast | None) -> None:
    """Make ``module``'s entrypoints use ``app`` (None: forget it)."""
    holder = getattr(module, "overcast", None)
    if holder is not None and hasattr(holder, "install"):
        holder.install(app)
    elif hasattr(module, "install"):
        module.install(app)
    else:
        module._overcast = app  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class ChangeAnswer:
    """``retried``: what the platform is told to deliver again (AWS item identifiers; for a
    raise or an error result, every record: ``["*"]``)."""

    retried: list[str]
    raised: BaseException | None = None


@dataclass
class Target:
    provider: str
    kind: str  # "http" or "changes"
    module_name: str
    events: dict[str, Any]
    call: Callable[[types.ModuleType, Any], HttpAnswer | ChangeAnswer]
    #: The ids a change event's records carry (the AWS sequence numbers), to check what is retried.
    idents: Callable[[Any], set[str]] = field(default=lambda _event: set())

    @property
    def id(self) -> str:
        return f"{self.provider}-{self.kind}"


def recorded(provider: str, prefix: str) -> dict[str, Any]:
    return {
        path.stem: load_event(provider, path.stem) for path in sorted((EVENTS_DIR / provider).glob(f"{prefix}*.json"))
    }


# -- AWS -----------------------------------------------------------------------------------------


def _aws_http(module: types.ModuleType, event: Any) -> HttpAnswer:
    result = module.http(event, None)
    assert isinstance(result, dict) and type(result["statusCode"]) is int, result
    headers = result["headers"]
    assert isinstance(headers, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    body = result.get("body", "")
    assert isinstance(body, str) and isinstance(result.get("isBase64Encoded", False), bool)
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode("utf-8")
    return HttpAnswer(result["statusCode"], headers, raw)


def _aws_changes(module: types.ModuleType, event: Any) -> ChangeAnswer:
    result = module.changes(event, None)
    failures = result["batchItemFailures"]
    assert isinstance(failures, list)
    idents = [failure["itemIdentifier"] for failure in failures]
    assert all(isinstance(i, str) and i for i in idents), f"an empty itemIdentifier fails the whole batch: {idents}"
    return ChangeAnswer(idents)


def _aws_idents(event: Any) -> set[str]:
    records = event.get("Records") if isinstance(event, dict) else None
    found = set()
    for record in records if isinstance(records, list) else []:
        stream = record.get("dynamodb") if isinstance(record, dict) else None
        if isinstance(stream, dict) and isinstance(stream.get("SequenceNumber"), str | int):
            found.add(str(stream["SequenceNumber"]))
    return found


# -- Azure ---------------------------------------------------------------------------------------


class _AzureContext:
    invocation_id = "fuzz-invocation"
    retry_context = None


def _azure_request(raw: Any) -> Any:
    from azure.functions.http import HttpRequestConverter
    from azure.functions.meta import Datum

    try:
        value = {
            "method": Datum(raw["method"], "string"),
            "url": Datum(raw["url"], "string"),
            "headers": {k: Datum(v, "string") for k, v in raw["headers"].items()},
            "query": {k: Datum(v, "string") for k, v in raw["query"].items()},
            "params": {k: Datum(v, "string") for k, v in raw["params"].items()},
            "body": Datum(raw["body"]["value"].encode(), raw["body"]["type"]),
        }
        return HttpRequestConverter.decode(Datum(value, "http"), trigger_metadata={})
    except Exception:
        return raw  # the worker could not have built it: a wrong-typed direct invocation


def _azure_http(module: types.ModuleType, raw: Any) -> HttpAnswer:
    import azure.functions as func

    response = module.http(_azure_request(raw), _AzureContext())
    assert isinstance(response, func.HttpResponse)
    headers = dict(response.headers)
    return HttpAnswer(response.status_code, headers, response.get_body())


def _azure_documents(raw: Any) -> Any:
    from azure.functions.cosmosdb import CosmosDBTriggerConverter
    from azure.functions.meta import Datum

    try:
        return CosmosDBTriggerConverter.decode(Datum(json.dumps(raw), "json"), trigger_metadata={})
    except Exception:
        return raw


def _raised_retry(call: Callable[[], Any]) -> ChangeAnswer:
    try:
        result = call()
    except Unavailable as error:  # the documented retry signal (Functions retry policy, Cloud Functions retry)
        return ChangeAnswer(["*"], error)
    assert result is None or isinstance(result, dict), result
    return ChangeAnswer([])


def _azure_changes(module: types.ModuleType, raw: Any) -> ChangeAnswer:
    return _raised_retry(lambda: module.changes(_azure_documents(raw), _AzureContext()))


# -- Google Cloud -------------------------------------------------------------------------------


def _flask_request(raw: Any) -> Any:
    from flask import Request
    from werkzeug.test import EnvironBuilder

    try:
        body = raw["body"]
        environ = EnvironBuilder(
            method=raw["method"],
            path=raw["path"],
            query_string=raw["query_string"],
            headers=raw["headers"],
            data=body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body,
        ).get_environ()
        return Request(environ)
    except Exception:
        return raw


def _gcp_http(module: types.ModuleType, raw: Any) -> HttpAnswer:
    result = module.http(_flask_request(raw))
    assert isinstance(result, tuple) and len(result) == 3, result
    body, status, headers = result
    assert isinstance(body, bytes) and type(status) is int and isinstance(headers, dict)
    return HttpAnswer(status, dict(headers), body)


def _gcp_changes(module: types.ModuleType, fixture: Any) -> ChangeAnswer:
    from cloudevents.http import from_http

    from tests.events.gcp import headers_and_body

    if isinstance(fixture, dict) and fixture.get("mode") == "background":
        body = fixture.get("body")
        data = body.get("data") if isinstance(body, dict) else body
        context = body.get("context") if isinstance(body, dict) else None
        return _raised_retry(lambda: module.changes(data, context if context is not None else {}))
    try:
        event = from_http(*headers_and_body(fixture))
    except Exception:
        event = fixture
    return _raised_retry(lambda: module.changes(event))


# -- OpenWhisk ---------------------------------------------------------------------------------


def _openwhisk_http(module: types.ModuleType, params: Any) -> HttpAnswer:
    result = module.http(params)
    assert isinstance(result, dict) and type(result["statusCode"]) is int, result
    headers, body = result["headers"], result["body"]
    assert isinstance(headers, dict) and isinstance(body, str)
    content_type = str(headers.get("content-type", ""))
    raw = body.encode("utf-8") if content_type.startswith(("application/json", "text/")) or not body else b""
    return HttpAnswer(result["statusCode"], {str(k): str(v) for k, v in headers.items()}, raw)


def _openwhisk_changes(module: types.ModuleType, params: Any) -> ChangeAnswer:
    result = module.changes(params)
    assert isinstance(result, dict), result
    return ChangeAnswer(["*"] if "error" in result else [])


TARGETS = [
    Target("aws", "http", "handlers.aws", recorded("aws", "apigw_"), _aws_http),
    Target("aws", "changes", "handlers.aws", recorded("aws", "dynamodb_stream_"), _aws_changes, _aws_idents),
    Target("azure", "http", "handlers.azure", recorded("azure", "http_"), _azure_http),
    Target(
        "azure",
        "changes",
        "handlers.azure",
        {"cosmos_change_feed": load_event("azure", "cosmos_change_feed")},
        _azure_changes,
    ),
    Target("gcp", "http", "handlers.gcp", recorded("gcp", "http_"), _gcp_http),
    Target(
        "gcp", "changes", "handlers.gcp", {**recorded("gcp", "firestore_"), **recorded("gcp", "legacy_")}, _gcp_changes
    ),
    Target("openwhisk", "http", "handlers.openwhisk", recorded("openwhisk", "http_"), _openwhisk_http),
    Target(
        "openwhisk",
        "changes",
        "handlers.openwhisk",
        {**recorded("openwhisk", "changes_"), **recorded("openwhisk", "trigger_")},
        _openwhisk_changes,
    ),
]

"""The event/handler conformance suite, written once, run for every registered provider with
platform events (adapters/<name>/provider.py) over its recorded events (tests/events/<name>/, read
through its replay.py):

* every recorded HTTP event maps to a core Request, a Response maps back, and the HTTP
  entrypoint answers it below 500;
* every field of every recorded HTTP event, set to a value of each other JSON type, still gets
  an answer from the entrypoint, never a 5xx or an exception (an event that is no request at
  all gets a 4xx); where the host builds typed objects (Azure, functions-framework) only the
  mutations it could deliver are sent;
* every recorded change delivery maps to records; with the peer down, a delivery carrying a
  locally-originated change is reported so the platform retries it, one without is not;
* a delivery with a poison record (that no retry can read) is acknowledged.

The app behind the handler is real except its store (in memory: the stores have their own
suite), and the peer is a real HTTP push to a loopback port nobody listens on.
"""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from adapters.http_peer import UrllibPeerTransport
from adapters.protocols import EventAdapter
from adapters.registry import ProviderSpec, load, providers
from core.bootstrap import Overcast, bootstrap
from core.http import Request, Response
from core.settings import Settings
from tests.events.replay import Replay, Undeliverable, replay_for
from tests.events.replay import load as load_payload
from tests.fakes import InMemoryMessageStore

WITH_EVENTS = {name: spec for name, spec in providers().items() if spec.events}
WRONG_TYPES: list[Any] = [None, 0, 1.5, True, "", "x", [], ["x"], {}, {"x": 1}]


def _cases(kind: str) -> list[Any]:
    cases = []
    for name in WITH_EVENTS:
        replay = replay_for(name)
        files = replay.http_files() if kind == "http" else replay.changes_files()
        cases += [pytest.param(name, path, id=f"{name}-{path.stem}") for path in files]
    return cases


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed when the block ends: connections are refused


def _app(provider: str, peers: list[dict[str, str]]) -> Overcast:
    env = {
        "OVERCAST_PROVIDER": provider,
        "OVERCAST_ORIGIN": provider,  # the recorded changes that originated here get forwarded
        "OVERCAST_REGION": "local",
        "OVERCAST_PEERS": json.dumps(peers),
        "PEER_KEY": "pair-secret",
        "OVERCAST_AUTH_DISABLED": "true",
        "OVERCAST_REPLICATION_TIMEOUT_S": "1",
        "OVERCAST_LOG_LEVEL": "ERROR",
    }
    return bootstrap(Settings.from_env(env), InMemoryMessageStore(), UrllibPeerTransport())


@pytest.fixture
def installed(request: pytest.FixtureRequest) -> Iterator[tuple[ModuleType, Any]]:
    """``(handler, install)``: the provider's handler with ``install(app)`` putting an app in place."""
    provider = request.node.callspec.params["provider"]
    handler = load(WITH_EVENTS[provider].handler)

    def install(app: Overcast | None) -> None:
        handler.overcast.install(app)

    try:
        yield handler, install
    finally:
        install(None)


def _events(spec: ProviderSpec) -> EventAdapter:
    module = load(spec.events)
    assert isinstance(module, EventAdapter), f"{spec.events} does not define the EventAdapter functions"
    return module


# -- HTTP -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "path"), _cases("http"))
def test_recorded_http_events_map_to_a_request_and_back(provider: str, path: Path, installed: Any) -> None:
    handler, install = installed
    replay, events = replay_for(provider), _events(WITH_EVENTS[provider])
    payload = load_payload(path)
    request = events.to_request(replay.http_event(payload))
    assert isinstance(request, Request) and request.method and request.path.startswith("/")
    assert events.to_response(Response.json(201, {"ok": True}, {"x-probe": "1"})) is not None
    install(_app(provider, []))
    status = replay.call_http(handler, payload)
    assert 200 <= status < 500, f"{path.name} answered {status}"


def _mutations(payload: Any) -> Iterator[tuple[str, Any]]:
    """Every field (and every field of a nested object) set to each value of another type."""
    for key, value in payload.items():
        for wrong in WRONG_TYPES:
            if type(wrong) is not type(value):
                mutated = copy.deepcopy(payload)
                mutated[key] = wrong
                yield key, mutated
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                for wrong in WRONG_TYPES:
                    if type(wrong) is not type(inner_value):
                        mutated = copy.deepcopy(payload)
                        mutated[key][inner] = wrong
                        yield f"{key}.{inner}", mutated
    yield "<not an object>", []
    yield "<empty>", {}


@pytest.mark.parametrize(("provider", "path"), _cases("http"))
def test_malformed_http_events_never_get_a_5xx_or_an_exception(provider: str, path: Path, installed: Any) -> None:
    handler, install = installed
    replay = replay_for(provider)
    install(_app(provider, []))
    answered: dict[str, int] = {}
    for field, mutated in _mutations(load_payload(path)):
        try:
            status = replay.call_http(handler, mutated)
        except Undeliverable:
            continue  # the host builds typed objects: it can never hand the function this
        assert status < 500, f"{path.name}: {field} malformed → {status}"
        answered[field] = status
    assert answered, "no malformed event could be delivered"
    for field in ("<empty>", "<not an object>"):  # nothing to route: the caller's fault
        if field in answered:
            assert 400 <= answered[field] < 500, f"{field} → {answered[field]}"


# -- change deliveries -----------------------------------------------------------------------------


def _outcome(replay: Replay, handler: ModuleType, payload: Any) -> Any:
    try:
        return replay.call_changes(handler, payload)
    except Exception as exc:  # what a raising function looks like to its platform
        return exc


@pytest.mark.parametrize(("provider", "path"), _cases("changes"))
def test_change_batches_report_failures_so_the_platform_retries(provider: str, path: Path, installed: Any) -> None:
    handler, install = installed
    replay, events = replay_for(provider), _events(WITH_EVENTS[provider])
    payload = load_payload(path)
    records = events.to_changes(*replay.changes_event(payload))
    assert records, f"{path.name} maps to no change record"
    local = [m for m in events.to_messages(*replay.changes_event(payload)) if m.version.origin == provider]
    install(_app(provider, [{"name": "peer", "url": f"http://127.0.0.1:{_dead_port()}", "secret_env": "PEER_KEY"}]))
    outcome = _outcome(replay, handler, payload)
    if local:
        assert replay.retried(outcome), f"{path.name}: a push to a peer that is down was acknowledged"
    else:
        assert not replay.retried(outcome), f"{path.name}: nothing to push, yet the platform would retry"


@pytest.mark.parametrize("provider", list(WITH_EVENTS))
def test_poison_records_are_acknowledged(provider: str, installed: Any) -> None:
    handler, install = installed
    replay = replay_for(provider)
    payload, _good = replay.poison_delivery()
    install(_app(provider, []))
    outcome = _outcome(replay, handler, payload)
    assert not isinstance(outcome, BaseException) or not replay.retried(outcome), outcome
    assert not replay.retried(outcome), f"{provider}: a poison record would be retried"


def test_every_provider_with_events_has_recorded_events_of_both_kinds() -> None:
    for name in WITH_EVENTS:
        replay = replay_for(name)
        assert replay.http_files() and replay.changes_files(), name

"""The fuzz suite: every provider's HTTP and change entrypoints against mutated recorded events.

Held for every event: no exception escapes an entrypoint (the one exception allowed is a change
entrypoint's documented retry signal, an ``Unavailable`` raised when a push failed for a reason
that passes); the answer is the platform's well-formed response; no 5xx but a 503 with
Retry-After; every error body is JSON with a documented code; no header value can split; a
rejected request changes nothing in the store; and a change record that a peer takes, or refuses
for good, is never reported for retry — poison is acknowledged. With the peer down, only ids the
batch carries are reported, never an empty one.

``OVERCAST_FUZZ_EXAMPLES`` (default 600) is the number of events per entrypoint; each provider has
two entrypoints, so a run feeds each provider at least 1,200. Runs are derandomized (the same
events every run, so CI is reproducible); ``OVERCAST_FUZZ_RANDOM=1`` explores new ones.
"""

from __future__ import annotations

import importlib
import json
import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import TARGETS, ChangeAnswer, HttpAnswer, PeerStub, Target, install, make_app
from tests.fuzz.mutations import Hostile, mutated
from tests.openapi import spec

EXAMPLES = int(os.environ.get("OVERCAST_FUZZ_EXAMPLES", "600"))
COUNTS: Counter[str] = Counter()
ERROR_CODES = set(spec()["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"])


def snapshot(app: object) -> list[dict]:
    store = app.store  # type: ignore[attr-defined]
    return [m.to_record() for m in store.changes_since(None, 10_000)]


def check_http(answer: HttpAnswer, before: list[dict], after: list[dict]) -> None:
    assert 200 <= answer.status <= 599, answer
    lowered = {k.lower(): v for k, v in answer.headers.items()}
    if answer.status >= 500:
        assert answer.status == 503 and int(lowered["retry-after"]) >= 1, answer
    for name, value in answer.headers.items():
        assert "\r" not in name + value and "\n" not in name + value, (name, value)
    if answer.body:
        payload = json.loads(answer.body.decode("utf-8"))  # strict UTF-8, valid JSON
        if answer.status >= 400:
            assert payload["error"]["code"] in ERROR_CODES, payload
    if answer.status >= 400:
        assert after == before, "a rejected request changed the store"


def check_changes(target: Target, event: object, mode: str, answer: ChangeAnswer) -> None:
    if mode in ("accept", "refuse"):  # nothing failed for a reason that passes: nothing to retry
        assert answer.retried == [] and answer.raised is None, (mode, answer)
    elif target.provider == "aws":
        assert set(answer.retried) <= target.idents(event), answer.retried


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.id)
def test_hostile_events_never_break_an_entrypoint(target: Target) -> None:
    module = importlib.import_module(target.module_name)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=os.environ.get("OVERCAST_FUZZ_RANDOM") != "1",
        suppress_health_check=list(HealthCheck),
    )
    @given(case=mutated(target.events), mode=st.sampled_from(["accept", "refuse", "down"]))
    def run(case: Hostile, mode: str) -> None:
        event = case.event
        app = make_app(target.provider, PeerStub(mode))
        install(module, app)
        before = snapshot(app)
        try:
            answer = target.call(module, event)
        finally:
            install(module, None)
        COUNTS[target.id] += 1
        if isinstance(answer, HttpAnswer):
            check_http(answer, before, snapshot(app))
        else:
            check_changes(target, event, mode, answer)

    run()


@pytest.mark.parametrize("target", [t for t in TARGETS if t.kind == "changes"], ids=lambda t: t.id)
def test_the_recorded_change_events_reach_the_peer(target: Target) -> None:
    """The fuzz means something only if the unmutated events are delivered: at least one pushes."""
    module = importlib.import_module(target.module_name)
    pushed = 0
    for event in target.events.values():
        transport = PeerStub("accept")
        install(module, make_app(target.provider, transport))
        try:
            answer = target.call(module, json.loads(json.dumps(event)))
        finally:
            install(module, None)
        assert isinstance(answer, ChangeAnswer) and answer.retried == []
        pushed += transport.pushes
    assert pushed >= 1

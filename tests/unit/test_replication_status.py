"""Replication status and clock skew between two apps pushing to each other in process.

A cloud whose clock runs 600 s ahead: its first push is refused BY NAME (``clock_skew`` with the
offset), both sides' ``GET /replication/status`` name the offset and say degraded, the metric
line an alarm watches carries it — all within that one exchange. Every answer is held to
openapi.yaml."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from core import replication
from core.bootstrap import Overcast, bootstrap
from core.http import Request, Response
from core.metrics import MetricsEmitter
from core.model import HybridLogicalClock, Message, Version, new_message_id
from core.ports import PeerResponse, PeerTransport
from core.replication import signed_headers
from core.settings import Settings
from tests.fakes import InMemoryMessageStore
from tests.openapi import assert_response_conforms

ROOT = Path(__file__).resolve().parents[2]
SECRET = "pair-secret-aws-azure"


class AppTransport(PeerTransport):
    """Delivers a signed POST to another in-process app (what HTTPS between clouds carries)."""

    def __init__(self) -> None:
        self.apps: dict[str, Overcast] = {}

    def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> PeerResponse:
        name, _, path = url.removeprefix("https://").partition(".example.net")
        request = Request("POST", path, {}, {k.lower(): v for k, v in headers.items()}, body)
        response = self.apps[name].app.handle(request)
        assert_response_conforms("POST", path, response.status, response.headers, response.body)
        return PeerResponse(response.status, response.body)


def cloud(origin: str, peer: str, transport: AppTransport, lines: list[dict[str, Any]]) -> Overcast:
    env = {
        "OVERCAST_PROVIDER": "aws" if origin == "aws" else "azure",
        "OVERCAST_ORIGIN": origin,
        "OVERCAST_PEERS": json.dumps([{"name": peer, "url": f"https://{peer}.example.net", "secret_env": "S"}]),
        "S": SECRET,
        "OVERCAST_LOG_LEVEL": "ERROR",
    }
    overcast = bootstrap(Settings.from_env(env), InMemoryMessageStore(), transport, HybridLogicalClock(origin))
    overcast.status.metrics = MetricsEmitter("emf", origin, write=lambda line: lines.append(json.loads(line)))
    transport.apps[origin] = overcast
    return overcast


@pytest.fixture
def pair() -> tuple[Overcast, Overcast, list[dict[str, Any]]]:
    transport, lines = AppTransport(), []
    return cloud("aws", "azure", transport, lines), cloud("azure", "aws", transport, lines), lines


def status_of(overcast: Overcast, asker: str, *, headers: Mapping[str, str] | None = None) -> Response:
    now = int(time.time())
    signed = headers if headers is not None else signed_headers(asker, SECRET, now, b"")
    request = Request("GET", replication.STATUS_PATH, {}, {k.lower(): v for k, v in signed.items()}, b"")
    response = overcast.app.handle(request)
    assert_response_conforms("GET", replication.STATUS_PATH, response.status, response.headers, response.body)
    return response


def message(origin: str) -> Message:
    ms = time.time_ns() // 1_000_000
    return Message("london", new_message_id(ms), "ada", "hi", ms, Version(ms, 0, origin))


def peer_status(overcast: Overcast, asker: str) -> dict[str, Any]:
    response = status_of(overcast, asker)
    assert response.status == 200
    body = response.json_body()
    (peer,) = body["peers"]
    return {**peer, "degraded": body["degraded"], "all_reasons": body["reasons"]}


def test_a_healthy_exchange_reports_offset_lag_and_last_push(pair: tuple[Overcast, Overcast, list]) -> None:
    aws, azure, _ = pair
    result = aws.replicator.forward([message("aws")])
    assert result.ok and result.sent == 1
    sender, receiver = peer_status(aws, "azure"), peer_status(azure, "aws")
    assert sender["last_push_ok_ms"] is not None and sender["pending"] == 0 and sender["failed_pushes"] == 0
    assert receiver["last_received_ms"] is not None and receiver["applied_records"] == 1
    assert receiver["clock_offset_s"] in (-1, 0, 1)  # the same clock, at 1 s resolution
    assert receiver["lag_ms"]["samples"] == 1 and receiver["lag_ms"]["p99"] is not None
    assert not sender["degraded"] and not receiver["degraded"]


def test_a_clock_600_s_ahead_is_named_on_both_sides_within_one_exchange(pair: tuple[Overcast, Overcast, list]) -> None:
    aws, azure, lines = pair
    aws.replicator.now_s = lambda: int(time.time()) + 600  # aws's clock runs 10 minutes ahead
    result = aws.replicator.forward([message("aws")])  # the one exchange
    assert not result.ok and "clock_skew" in result.errors[0]

    receiver = peer_status(azure, "aws")
    assert receiver["clock_offset_s"] in (599, 600, 601) and receiver["clock_skew_rejections"] == 1
    assert receiver["degraded"] and "clock_skew" in receiver["all_reasons"][0]
    assert f"{receiver['clock_offset_s']:+d} s" in receiver["all_reasons"][0]  # the offset, in words too

    sender = peer_status(aws, "azure")
    assert sender["clock_offset_s"] in (-601, -600, -599)  # azure's clock seen from aws
    assert sender["pending"] == 1 and sender["failed_pushes"] == 1
    assert any("clock_skew" in reason for reason in sender["reasons"])

    # Deep health stays about each cloud's own store: a peer's trouble never moves DNS.
    for overcast in (aws, azure):
        assert overcast.app.handle(Request("GET", "/health/deep", {}, {}, b"")).status == 200

    # The alarm on ClockOffsetSeconds (serverless.aws.yml) would fire on the metric just emitted.
    alarm = aws_alarm("ClockOffsetSeconds")
    offsets = [line for line in lines if "ClockOffsetSeconds" in line and line["Origin"] == "azure"]
    assert offsets and offsets[-1]["ClockOffsetSeconds"] > alarm["Threshold"]
    (directive,) = offsets[-1]["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == alarm["Namespace"]
    assert {d["Name"] for d in alarm.get("Dimensions", [])} <= set(directive["Dimensions"][0])


def test_a_forged_stale_request_is_a_bad_signature_and_moves_no_offset(pair: tuple[Overcast, Overcast, list]) -> None:
    aws, azure, _ = pair
    assert aws.replicator.forward([message("aws")]).ok  # a genuine exchange: offset about 0
    forged = signed_headers("aws", "not-the-secret", int(time.time()) + 600, b"")
    response = status_of(azure, "aws", headers=forged)
    assert response.status == 401 and response.json_body()["error"]["code"] == "signature_invalid"
    receiver = peer_status(azure, "aws")
    assert receiver["clock_offset_s"] in (-1, 0, 1) and receiver["clock_skew_rejections"] == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"}],
    ids=["unsigned", "user-token"],
)
def test_the_status_route_answers_peers_only(pair: tuple[Overcast, Overcast, list], headers: dict) -> None:
    aws, _, _ = pair
    response = status_of(aws, "azure", headers=headers)
    assert response.status == 401 and response.json_body()["error"]["code"] == "signature_missing"


def test_a_failing_peer_shows_pending_and_the_reason(pair: tuple[Overcast, Overcast, list]) -> None:
    aws, azure, lines = pair
    azure.app.handle = lambda request: Response.json(503, {"error": {"code": "unavailable", "message": "x"}})
    result = aws.replicator.forward([message("aws"), message("aws")])
    assert not result.ok
    sender = peer_status(aws, "azure")
    assert sender["pending"] == 2 and sender["degraded"]
    assert "pushes failing (1 in a row)" in sender["reasons"][0]
    assert any(line.get("ReplicationPushFailed") == 2 for line in lines)


def aws_alarm(metric: str) -> dict[str, Any]:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)  # CloudFormation tags
    template = yaml.load((ROOT / "serverless.aws.yml").read_text(), Loader=Loader)
    for resource in template["resources"]["Resources"].values():
        if resource["Type"] == "AWS::CloudWatch::Alarm" and resource["Properties"].get("MetricName") == metric:
            return dict(resource["Properties"])
    raise AssertionError(f"no alarm on {metric} in serverless.aws.yml")


def test_lag_counts_the_last_five_minutes_and_the_offset_metric_is_not_per_request() -> None:
    from core.replication_status import ReplicationStatus

    now = [1_800_000_000_000]
    lines: list[str] = []
    status = ReplicationStatus(
        "aws",
        ["azure"],
        max_skew_s=60,
        lag_bound_s=60,
        metrics=MetricsEmitter("log", "aws", write=lines.append),
        now_ms=lambda: now[0],
    )
    status.received("azure", 1, [now[0] - 120_000])  # a backlog record two minutes late
    assert status.snapshot()["degraded"]
    now[0] += 301_000  # five minutes on, with fresh deliveries only
    status.received("azure", 1, [now[0] - 200])
    snapshot = status.snapshot()
    assert not snapshot["degraded"] and snapshot["peers"][0]["lag_ms"] == {"p50": 200, "p99": 200, "samples": 1}

    offsets = [0, -1, 0, -1, 0]  # a second of jitter, request after request
    for offset in offsets:
        status.clock_offset("azure", offset)
    assert sum('"ClockOffsetSeconds"' in line for line in lines) == 1
    status.clock_offset("azure", 5)  # it moved
    assert sum('"ClockOffsetSeconds"' in line for line in lines) == 2

"""core.metrics: one metric, each platform's native line shape."""

from __future__ import annotations

import json

import pytest

from core.errors import ConfigurationError
from core.metrics import FORMATS, MetricsEmitter
from core.settings import Settings


def line(fmt: str, name: str = "ClockOffsetSeconds", value: float = 600, peer: str = "azure") -> dict:
    out: list[str] = []
    MetricsEmitter(fmt, "aws", write=out.append, now_ms=lambda: 1_800_000_000_000).emit(name, value, peer)
    assert len(out) == 1 and "\n" not in out[0]
    parsed: dict = json.loads(out[0])
    return parsed


def test_emf_is_a_cloudwatch_embedded_metric_with_per_cloud_and_per_peer_dimensions() -> None:
    emf = line("emf")
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert emf["_aws"]["Timestamp"] == 1_800_000_000_000
    assert directive["Namespace"] == "Overcast"
    assert directive["Dimensions"] == [["Origin"], ["Origin", "Peer"]]
    assert directive["Metrics"] == [{"Name": "ClockOffsetSeconds", "Unit": "Seconds"}]
    # Every dimension and the metric itself are top-level members, as the format requires.
    assert emf["Origin"] == "aws" and emf["Peer"] == "azure" and emf["ClockOffsetSeconds"] == 600


def test_emf_without_a_peer_has_only_the_cloud_dimension() -> None:
    emf = line("emf", "ReplicationPushOk", 3, peer="")
    assert emf["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Origin"]] and "Peer" not in emf


def test_application_insights_and_cloud_logging_lines() -> None:
    azure = line("appinsights")
    assert azure["metric"] == "ClockOffsetSeconds" and azure["value"] == 600
    assert azure["customDimensions"] == {"Origin": "aws", "Peer": "azure", "unit": "Seconds"}
    gcp = line("cloudlogging")
    assert gcp["severity"] == "INFO" and gcp["metric"] == "ClockOffsetSeconds" and gcp["value"] == 600
    assert gcp["logging.googleapis.com/labels"]["Peer"] == "azure"


def test_off_writes_nothing_and_unknown_formats_are_refused() -> None:
    out: list[str] = []
    MetricsEmitter("off", "aws", write=out.append).emit("ReplicationPushOk", 1)
    assert out == [] and "off" in FORMATS
    with pytest.raises(ValueError):
        MetricsEmitter("statsd", "aws")
    with pytest.raises(ConfigurationError, match="OVERCAST_METRICS_FORMAT"):
        Settings.from_env({"OVERCAST_METRICS_FORMAT": "statsd"})
    assert Settings.from_env({"OVERCAST_METRICS_FORMAT": "emf"}).metrics_format == "emf"

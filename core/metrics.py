"""Metrics in each platform's native form, from one vendor-free emitter.

Every metric is one JSON line on stdout, which each platform's log pipeline already collects;
the line's shape is what makes it a metric there (the handler's ``build`` picks the format):

* ``emf`` — AWS CloudWatch embedded metric format: CloudWatch Logs extracts the metric from the
  ``_aws`` block (namespace ``Overcast``, dimensions ``Origin`` and ``Peer``), no API call and no
  SDK; the alarms in serverless.aws.yml watch these metrics.
* ``appinsights`` — Azure: a structured line the Functions host sends to Application Insights as a
  trace with ``customDimensions``; the alarms in docs/observability.md are log alerts over them.
* ``cloudlogging`` — GCP: a structured line (``severity``, ``jsonPayload``) from which the
  log-based metrics of docs/observability.md are extracted.
* ``log`` — a plain JSON line (local runs, tests); ``off`` emits nothing.

Metric names (the same on every platform): ``ReplicationLagMs`` (origin write → apply here),
``ReplicationPushFailed`` / ``ReplicationPushOk`` (records), ``ClockOffsetSeconds`` (a peer's
clock minus ours, absolute), ``AntiEntropyFailed`` / ``AntiEntropyOk`` (passes, per peer),
``AntiEntropyRepaired`` (records a pass pushed or pulled, i.e. what the streams missed).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

FORMATS = ("emf", "appinsights", "cloudlogging", "log", "off")
NAMESPACE = "Overcast"
UNITS = {
    "ReplicationLagMs": "Milliseconds",
    "ClockOffsetSeconds": "Seconds",
}


class MetricsEmitter:
    """Writes metric lines in one platform's format; ``write`` takes the line (default: stdout)."""

    def __init__(
        self,
        fmt: str = "log",
        origin: str = "",
        write: Callable[[str], None] | None = None,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"metrics format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.fmt = fmt
        self.origin = origin
        self._write = write or _stdout
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)

    def emit(self, name: str, value: float, peer: str = "", **fields: Any) -> None:
        if self.fmt == "off":
            return
        self._write(json.dumps(self.line(name, value, peer, **fields), separators=(",", ":"), default=str))

    def line(self, name: str, value: float, peer: str = "", **fields: Any) -> dict[str, Any]:
        """The JSON object one metric becomes in this emitter's format."""
        unit = UNITS.get(name, "Count")
        dimensions = {"Origin": self.origin, **({"Peer": peer} if peer else {})}
        if self.fmt == "emf":
            return {
                "_aws": {
                    "Timestamp": self._now_ms(),
                    "CloudWatchMetrics": [
                        {
                            "Namespace": NAMESPACE,
                            # Per cloud (what the alarms watch) and per cloud and peer.
                            "Dimensions": [["Origin"], ["Origin", "Peer"]] if peer else [["Origin"]],
                            "Metrics": [{"Name": name, "Unit": unit}],
                        }
                    ],
                },
                **dimensions,
                name: value,
                **fields,
            }
        if self.fmt == "appinsights":
            return {
                "msg": "metric",
                "metric": name,
                "value": value,
                "customDimensions": {**dimensions, "unit": unit, **fields},
            }
        if self.fmt == "cloudlogging":
            return {
                "severity": "INFO",
                "message": f"metric {name}",
                "logging.googleapis.com/labels": {"metric": name, **dimensions},
                "metric": name,
                "value": value,
                "unit": unit,
                **fields,
            }
        return {"msg": "metric", "metric": name, "value": value, "unit": unit, **dimensions, **fields}


_lock = threading.Lock()


def _stdout(line: str) -> None:
    with _lock:  # whole lines only, from any thread
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

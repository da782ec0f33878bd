"""The drill's figures from a synthetic run: each definition, the pass/fail checks, the terminal
table, and the timeline picture; plus live mode's small helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from failover import report
from failover.live import _moved, parse_resolver

P, S = "127.0.0.2", "127.0.0.3"


def attempt(
    op: int, start: float, address: str | None, status: int | None, kind: str = "read_list", **extra: Any
) -> dict[str, Any]:
    served = {P: "aws", S: "azure"}.get(address or "") if status and status < 500 else None
    return {
        "op": op,
        "kind": kind,
        "attempt": 1,
        "client": 0,
        "scheduled": start,
        "start": start,
        "end": start + 0.01,
        "address": address,
        "served_by": served,
        "status": status,
        "error": None if status and status < 500 else "timeout",
        **extra,
    }


def synthetic(**convergence: Any) -> dict[str, Any]:
    attempts = [attempt(i, i * 0.5, P, 200) for i in range(20)]  # 0..9.5 s on the primary
    attempts += [attempt(100, 10.5, P, None), attempt(101, 12.0, P, 200)]  # after the fault, still primary
    attempts += [attempt(200 + i, 13 + i * 0.5, S, 200) for i in range(36)]  # 13..30.5 on the secondary
    attempts += [attempt(300, 31.0, S, 200), attempt(301, 33.5, S, 200)]  # after the restore, still secondary
    attempts += [attempt(400 + i, 34 + i * 0.5, P, 200) for i in range(10)]
    attempts += [attempt(500, 14.0, S, 404, kind="read_one")]
    return {
        "fault": "crash",
        "fault_description": "SIGKILL",
        "mode": "fast",
        "backend": "MeshClouds",
        "replicating": True,
        "timings": {
            "scale": 0.1,
            "interval_s": 1.0,
            "failure_threshold": 3,
            "ttl_s": 6,
            "connect_timeout_s": 1.0,
            "response_timeout_s": 1.0,
            "checkers": 8,
            "detect_bound_s": 3.0,
            "bound_s": 9.0,
        },
        "clouds": {
            "primary": {"name": "aws", "address": P, "port": 1},
            "secondary": {"name": "azure", "address": S, "port": 1},
        },
        "labels": {P: "aws", S: "azure"},
        "marks": {"fault": 10.0, "restored": 30.0, "load_end": 40.0},
        "events": [],
        "samples": [
            {"t": 1.0, "dns_role": "PRIMARY", "healthy": True, "healthy_checkers": 8, "checkers": 8, "inverted": False},
            {
                "t": 12.9,
                "dns_role": "SECONDARY",
                "healthy": False,
                "healthy_checkers": 1,
                "checkers": 8,
                "inverted": False,
            },
            {
                "t": 32.0,
                "dns_role": "PRIMARY",
                "healthy": True,
                "healthy_checkers": 2,
                "checkers": 8,
                "inverted": False,
            },
        ],
        "health_history": [
            {"t": 1.0, "healthy": True, "healthy_checkers": 8, "checkers": 8, "inverted": False},
            {"t": 12.8, "healthy": False, "healthy_checkers": 1, "checkers": 8, "inverted": False},
            {"t": 32.0, "healthy": True, "healthy_checkers": 2, "checkers": 8, "inverted": False},
        ],
        "dns_answers": [],
        "attempts": attempts,
        "writes": [
            {
                "op": 600,
                "key": "k",
                "text": "drill write k",
                "acked": True,
                "message_id": "m1",
                "served_by": "aws",
                "attempts": 1,
            }
        ],
        "convergence": {
            "identical": True,
            "seconds": 0.4,
            "differences_at_load_end": 0,
            "messages": {"aws": 1, "azure": 1},
            "acked": 1,
            "lost": {"aws": [], "azure": []},
            "duplicated": {"aws": [], "azure": []},
            "catch_up": {"seconds": 1.5},
            **convergence,
        },
        "cleanup": {"pids": [1, 2, 3], "alive": []},
    }


def test_figures_follow_their_definitions() -> None:
    m = report.metrics(synthetic())
    assert m["detect_s"] == pytest.approx(2.8)
    assert m["dns_switch_s"] == pytest.approx(2.9)
    assert m["all_on_secondary_s"] == pytest.approx(2.0)  # the last request to the primary started at 12.0
    assert m["failback_s"] == pytest.approx(3.5)  # the last request to the secondary started at 33.5
    assert m["recover_detect_s"] == pytest.approx(2.0)
    assert m["failed_requests"] == 1 and m["stale_reads"] == 1
    assert m["served_by"] == {"aws": 31, "azure": 39}
    assert m["catch_up_s"] == 1.5
    assert m["passed"], m["checks"]


def test_checks_fail_on_loss_duplicates_slow_moves_and_leftovers() -> None:
    run = synthetic(lost={"aws": ["m1"], "azure": []}, duplicated={"aws": [], "azure": ["k"]}, identical=False)
    run["cleanup"]["alive"] = [2]
    run["attempts"].append(attempt(900, 21.0, P, 200))  # still on the primary 11 s after the fault
    m = report.metrics(run)
    assert m["lost"] == 1 and m["duplicated"] == 1
    assert not m["checks"]["zero_lost"] and not m["checks"]["zero_duplicated"]
    assert not m["checks"]["stores_identical"] and not m["checks"]["processes_cleaned_up"]
    assert not m["checks"]["all_on_secondary_within_bound"]  # 11 s > 9 s + 1 s
    assert not m["passed"]


def test_freeze_bounds_include_the_probe_timeouts() -> None:
    run = synthetic()
    run["fault"] = "freeze"
    m = report.metrics(run)
    assert m["bound_s"] == pytest.approx(11.0) and m["detect_bound_s"] == pytest.approx(5.0)


def test_table_json_and_picture(tmp_path: Path) -> None:
    run = synthetic()
    report.write(run, tmp_path)
    text = report.render(run)
    assert "all traffic on the secondary (azure)" in text and "RESULT: PASS" in text
    assert "acknowledged writes lost" in text and "must be 0" in text
    assert (tmp_path / "report.json").exists()
    png = (tmp_path / "timeline.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000


def test_sdk_clients_are_reported_beside_the_dns_ones() -> None:
    run = synthetic()
    assert "SDK clients" not in report.render(run)
    run["sdk"] = {"clients": 2, "operations": 348, "failed_window_s": 0.022, "failed_after_retries": 0,
                  "moved_s": 0.395, "back_s": 2.268}  # fmt: skip
    text = report.render(run)
    assert "SDK clients beside the DNS-only ones" in text
    assert "failed operations window 0.02 s, failed after retries 0 of 348" in text
    assert "all moved 0.4 s after the fault, back 2.3 s after the restore" in text


def test_live_helpers() -> None:
    assert parse_resolver("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_resolver("resolver.example.com") == ("resolver.example.com", 53)
    before = {"r1": "127.0.0.2", "r2": "127.0.0.2"}
    assert _moved({"r1": "127.0.0.3", "r2": "127.0.0.3"}, before)
    assert not _moved({"r1": "127.0.0.3", "r2": "127.0.0.2"}, before)  # one resolver still caches
    assert not _moved({"r1": "error: Timeout", "r2": "127.0.0.3"}, before)  # an error is not a move

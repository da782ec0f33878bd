"""The checker fleet's Route 53 rules: threshold, the 18% rule, Inverted, Disabled, staggering,
config re-reads, and the probe's connect/response timeouts against real sockets."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from failover.healthcheck import Checker, CheckSpec, HealthCheckFleet, ProbeResult, aggregate, probe

SPEC = CheckSpec("hc-1", "HTTP", "127.0.0.1", "127.0.0.1", 1, "/health/deep", 10, 3)


def test_checker_flips_after_threshold_consecutive_observations() -> None:
    checker = Checker("us-east-1", 0.0)
    assert checker.healthy
    assert not checker.observe(False, 3)
    assert not checker.observe(False, 3)
    assert not checker.observe(True, 3)  # a success resets the streak
    assert not checker.observe(False, 3)
    assert not checker.observe(False, 3)
    assert checker.observe(False, 3) and not checker.healthy
    # and back only after threshold consecutive successes
    assert not checker.observe(True, 3)
    assert not checker.observe(True, 3)
    assert checker.observe(True, 3) and checker.healthy


def test_threshold_one_flips_at_once() -> None:
    checker = Checker("us-east-1", 0.0)
    assert checker.observe(False, 1) and not checker.healthy


@pytest.mark.parametrize(
    ("healthy", "total", "expected"),
    [
        (2, 8, True),
        (1, 8, False),
        (0, 8, False),
        (8, 8, True),
        (1, 5, True),
        (1, 6, False),
        (1, 1, True),
        (0, 1, False),
    ],
)
def test_healthy_when_more_than_18_percent_say_so(healthy: int, total: int, expected: bool) -> None:
    assert aggregate([True] * healthy + [False] * (total - healthy)) is expected


class FakeEndpoint:
    """A probe function whose answer the test controls, plus a spec the test can 'update'."""

    def __init__(self) -> None:
        self.ok = True
        self.spec = SPEC
        self.calls = 0

    def probe(self, *args: Any) -> ProbeResult:
        self.calls += 1
        return ProbeResult(self.ok, 200 if self.ok else 503, 0.001)

    def read(self) -> CheckSpec:
        return self.spec


def wait_until(condition: Any, timeout: float = 5.0) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
    return time.monotonic() - started


@pytest.fixture
def endpoint() -> FakeEndpoint:
    return FakeEndpoint()


@pytest.fixture
def fleet(endpoint: FakeEndpoint) -> Iterator[HealthCheckFleet]:
    # interval 10 s x scale 0.01 = a probe every 0.1 s per checker
    fleet = HealthCheckFleet(endpoint.read, checkers=8, scale=0.01, config_poll_s=0.02, probe_fn=endpoint.probe).start()
    try:
        yield fleet
    finally:
        fleet.stop()


def test_checkers_are_staggered_over_one_interval(endpoint: FakeEndpoint) -> None:
    fleet = HealthCheckFleet(endpoint.read, checkers=8, scale=1.0, probe_fn=endpoint.probe)
    offsets = [c.offset_s for c in fleet.state.checkers]
    assert offsets == pytest.approx([i * 10 / 8 for i in range(8)])
    assert len({c.region for c in fleet.state.checkers}) == 8


def test_outage_detected_within_interval_times_threshold(fleet: HealthCheckFleet, endpoint: FakeEndpoint) -> None:
    wait_until(lambda: fleet.probes >= 16)
    assert fleet.healthy
    endpoint.ok = False
    took = wait_until(lambda: not fleet.healthy)
    assert took <= 0.1 * 3 + 0.15  # interval x threshold (+ scheduling slack)
    assert fleet.snapshot().healthy_checkers <= 1  # 18% rule: at most 1 of 8 still healthy
    endpoint.ok = True
    wait_until(lambda: fleet.healthy)
    history = fleet.history()
    assert history[0].healthy is True and any(not h.healthy for h in history)


def test_inverted_flips_observations_and_is_read_through_the_api(
    fleet: HealthCheckFleet, endpoint: FakeEndpoint
) -> None:
    wait_until(lambda: fleet.probes >= 8)
    endpoint.spec = replace(SPEC, inverted=True)  # UpdateHealthCheck Inverted=true
    wait_until(lambda: not fleet.healthy)
    assert fleet.snapshot().inverted
    endpoint.spec = SPEC
    wait_until(lambda: fleet.healthy)


def test_inverted_unhealthy_endpoint_counts_as_healthy(fleet: HealthCheckFleet, endpoint: FakeEndpoint) -> None:
    endpoint.ok = False
    wait_until(lambda: not fleet.healthy)
    endpoint.spec = replace(SPEC, inverted=True)
    wait_until(lambda: fleet.healthy)


def test_disabled_is_healthy_whatever_the_probes_say(fleet: HealthCheckFleet, endpoint: FakeEndpoint) -> None:
    endpoint.ok = False
    wait_until(lambda: not fleet.healthy)
    endpoint.spec = replace(SPEC, disabled=True)
    wait_until(lambda: fleet.healthy)
    time.sleep(0.3)
    assert fleet.healthy


def test_config_read_errors_keep_the_last_configuration(endpoint: FakeEndpoint) -> None:
    calls = {"n": 0}

    def flaky() -> CheckSpec:
        calls["n"] += 1
        if calls["n"] > 1:
            raise ConnectionError("API down")
        return SPEC

    fleet = HealthCheckFleet(flaky, checkers=2, scale=0.01, config_poll_s=0.02, probe_fn=endpoint.probe).start()
    try:
        wait_until(lambda: fleet.config_errors >= 3)
        assert fleet.healthy and fleet.state.spec == SPEC
    finally:
        fleet.stop()


# -- the probe itself, against real sockets ------------------------------------------------------


class _Status(BaseHTTPRequestHandler):
    status = 200
    delay = 0.0

    def do_GET(self) -> None:
        time.sleep(self.delay)
        self.send_response(self.status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def _serve(status: int, delay: float = 0.0) -> ThreadingHTTPServer:
    handler = type("H", (_Status,), {"status": status, "delay": delay})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.mark.parametrize(
    ("status", "ok"), [(200, True), (204, True), (301, True), (399, True), (404, False), (503, False)]
)
def test_probe_2xx_3xx_are_healthy(status: int, ok: bool) -> None:
    server = _serve(status)
    try:
        result = probe("127.0.0.1", server.server_address[1], "/health/deep", "api.example.com", 1.0, 1.0)
    finally:
        server.shutdown()
        server.server_close()
    assert result.ok is ok and result.status == status


def test_probe_fails_on_refused_connection() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
    result = probe("127.0.0.1", port, "/", "h", 1.0, 1.0)
    assert not result.ok and result.error.startswith("connect")


def test_probe_response_timeout_after_connect() -> None:
    server = _serve(200, delay=1.0)
    try:
        result = probe("127.0.0.1", server.server_address[1], "/", "h", 1.0, 0.2)
    finally:
        server.shutdown()
        server.server_close()
    assert not result.ok and result.error == "response timeout"
    assert result.latency_s < 0.6


def test_probe_of_a_listener_that_never_answers_times_out() -> None:
    """What a SIGSTOPped server looks like: the kernel accepts, nothing ever answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        result = probe("127.0.0.1", listener.getsockname()[1], "/", "h", 0.5, 0.3)
    assert not result.ok and result.error == "response timeout"

"""The local Route 53 health checkers: a fleet of staggered checkers per health check.

Route 53 semantics modelled here:

- Each checker ("region") probes every ``RequestInterval`` seconds; checkers are staggered, so
  the fleet as a whole probes far more often than one checker.
- A probe succeeds when the TCP connection opens within 4 s and the HTTP status line (2xx or 3xx)
  arrives within 2 s after that. A probe that hangs is a failure once its timeout expires; the
  next probe starts on schedule regardless (checkers do not wait for each other).
- A checker changes its verdict after ``FailureThreshold`` consecutive observations that
  disagree with it (failures to go unhealthy, successes to come back).
- The check is healthy while more than 18% of checkers say so.
- ``Inverted`` flips each observation before it is counted, so inverting a healthy endpoint
  moves the checkers exactly as a real outage would (that is what makes it a faithful drill
  lever); ``Disabled`` makes the check healthy whatever the probes say.

The configuration is read through the Route 53 API (GetHealthCheck) and re-read periodically,
so ``UpdateHealthCheck`` (the drill's lever) takes effect while the fleet runs. moto stores
health checks but never evaluates them, so this fleet is the source of truth for status locally.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from failover.config import probe_timeouts

REGIONS = (
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
)
DEFAULT_HEALTHY_FRACTION = 0.18
USER_AGENT = "Amazon-Route53-Health-Check-Service (overcast local data plane)"


@dataclass(frozen=True)
class CheckSpec:
    """One health check's configuration as the Route 53 API returns it."""

    id: str
    type: str
    address: str  # IPAddress, else FullyQualifiedDomainName
    host_header: str
    port: int
    path: str
    interval_s: int
    threshold: int
    inverted: bool = False
    disabled: bool = False

    @classmethod
    def from_api(cls, check: dict[str, Any]) -> CheckSpec:
        cfg = check["HealthCheckConfig"]
        fqdn = cfg.get("FullyQualifiedDomainName") or ""
        address = cfg.get("IPAddress") or fqdn
        kind = cfg.get("Type", "HTTP")
        return cls(
            id=check["Id"],
            type=kind,
            address=address,
            host_header=fqdn or address,
            port=int(cfg.get("Port") or (443 if kind.startswith("HTTPS") else 80)),
            path=cfg.get("ResourcePath") or "/",
            interval_s=int(cfg.get("RequestInterval") or 30),
            threshold=int(cfg.get("FailureThreshold") or 3),
            inverted=bool(cfg.get("Inverted")),
            disabled=bool(cfg.get("Disabled")),
        )


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    status: int | None
    latency_s: float
    error: str = ""


def probe(
    address: str,
    port: int,
    path: str,
    host_header: str,
    connect_timeout_s: float,
    response_timeout_s: float,
    tls: bool = False,
) -> ProbeResult:
    """One Route 53 style probe: connect within the connect timeout, then the status line within
    the response timeout; 2xx and 3xx are healthy. Only the status line is read."""
    started = time.monotonic()
    try:
        sock = socket.create_connection((address, port), timeout=connect_timeout_s)
    except OSError as exc:
        return ProbeResult(False, None, time.monotonic() - started, f"connect: {exc.__class__.__name__}")
    try:
        deadline = time.monotonic() + response_timeout_s
        sock.settimeout(response_timeout_s)
        if tls:  # Route 53 does not validate certificates on HTTPS checks (without SNI options)
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            sock = context.wrap_socket(sock, server_hostname=host_header)
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(request.encode("ascii"))
        buffer = b""
        while b"\r\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
            chunk = sock.recv(1024)
            if not chunk:
                break
            buffer += chunk
        parts = buffer.split(b"\r\n", 1)[0].split()
        if len(parts) < 2 or not parts[1].isdigit():
            return ProbeResult(False, None, time.monotonic() - started, "no HTTP status line")
        status = int(parts[1])
        return ProbeResult(200 <= status < 400, status, time.monotonic() - started)
    except TimeoutError:
        return ProbeResult(False, None, time.monotonic() - started, "response timeout")
    except OSError as exc:
        return ProbeResult(False, None, time.monotonic() - started, f"response: {exc.__class__.__name__}")
    finally:
        with contextlib.suppress(OSError):
            sock.close()


@dataclass
class Checker:
    """One checker's verdict with Route 53's consecutive-observation threshold."""

    region: str
    offset_s: float
    healthy: bool = True  # a new check starts healthy
    streak: int = 0  # consecutive observations that disagree with the verdict
    last: ProbeResult | None = None

    def observe(self, ok: bool, threshold: int) -> bool:
        """Count one observation; returns True when the verdict changed."""
        if ok == self.healthy:
            self.streak = 0
            return False
        self.streak += 1
        if self.streak >= threshold:
            self.healthy, self.streak = ok, 0
            return True
        return False


def aggregate(verdicts: list[bool], healthy_fraction: float = DEFAULT_HEALTHY_FRACTION) -> bool:
    """Route 53: healthy when more than ``healthy_fraction`` of the checkers say so."""
    return bool(verdicts) and sum(verdicts) / len(verdicts) > healthy_fraction


@dataclass(frozen=True)
class StatusSample:
    t: float  # monotonic
    healthy: bool
    healthy_checkers: int
    checkers: int
    inverted: bool
    disabled: bool


@dataclass
class FleetState:
    spec: CheckSpec
    checkers: list[Checker]
    healthy: bool = True
    history: list[StatusSample] = field(default_factory=list)


class HealthCheckFleet:
    """The checkers of one health check. ``start()`` runs them in background threads."""

    def __init__(
        self,
        read_spec: Callable[[], CheckSpec],
        *,
        checkers: int = len(REGIONS),
        scale: float = 1.0,
        healthy_fraction: float = DEFAULT_HEALTHY_FRACTION,
        config_poll_s: float | None = None,
        probe_fn: Callable[..., ProbeResult] = probe,
        on_change: Callable[[str, StatusSample], None] | None = None,
    ) -> None:
        self._read_spec = read_spec
        spec = read_spec()
        self.scale = scale
        self.healthy_fraction = healthy_fraction
        self.config_poll_s = (
            config_poll_s if config_poll_s is not None else max(0.1, min(1.0, spec.interval_s * scale / 10))
        )
        self._probe = probe_fn
        self._on_change = on_change
        interval = spec.interval_s * scale
        names = [
            REGIONS[i % len(REGIONS)] + (f"-{i // len(REGIONS)}" if i >= len(REGIONS) else "") for i in range(checkers)
        ]
        self.state = FleetState(spec, [Checker(name, interval * i / checkers) for i, name in enumerate(names)])
        self.state.history.append(self._sample(time.monotonic()))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(4, checkers * 4), thread_name_prefix="r53-probe"
        )
        self.probes = 0
        self.config_errors = 0

    # -- status -------------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.state.spec.id

    @property
    def healthy(self) -> bool:
        return self.state.healthy

    def snapshot(self) -> StatusSample:
        with self._lock:
            return self._sample(time.monotonic())

    def history(self) -> list[StatusSample]:
        with self._lock:
            return list(self.state.history)

    def _sample(self, now: float) -> StatusSample:
        verdicts = [c.healthy for c in self.state.checkers]
        spec = self.state.spec
        return StatusSample(now, self.state.healthy, sum(verdicts), len(verdicts), spec.inverted, spec.disabled)

    def _recompute(self, now: float) -> None:
        spec = self.state.spec
        healthy = True if spec.disabled else aggregate([c.healthy for c in self.state.checkers], self.healthy_fraction)
        changed = healthy != self.state.healthy
        self.state.healthy = healthy
        sample = self._sample(now)
        last = self.state.history[-1]
        if (sample.healthy, sample.healthy_checkers, sample.inverted, sample.disabled) != (
            last.healthy,
            last.healthy_checkers,
            last.inverted,
            last.disabled,
        ):
            self.state.history.append(sample)
        if changed and self._on_change:
            self._on_change(spec.id, sample)

    # -- running ------------------------------------------------------------------------------

    def start(self) -> HealthCheckFleet:
        for target, name in ((self._schedule_loop, "r53-schedule"), (self._config_loop, "r53-config")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _config_loop(self) -> None:
        while not self._stop.wait(self.config_poll_s):
            try:
                spec = self._read_spec()
            except Exception:  # the API hiccupped: keep the last configuration, as Route 53 would
                self.config_errors += 1
                continue
            with self._lock:
                if spec != self.state.spec:
                    self.state.spec = spec
                    self._recompute(time.monotonic())

    def _schedule_loop(self) -> None:
        start = time.monotonic()
        due = [start + c.offset_s for c in self.state.checkers]
        while not self._stop.is_set():
            index = min(range(len(due)), key=due.__getitem__)
            wait = due[index] - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            spec = self.state.spec
            with contextlib.suppress(RuntimeError):  # pool shut down while stopping
                self._pool.submit(self._probe_once, self.state.checkers[index], spec)
            due[index] += spec.interval_s * self.scale

    def _probe_once(self, checker: Checker, spec: CheckSpec) -> None:
        connect_s, response_s = probe_timeouts(self.scale)
        result = self._probe(
            spec.address, spec.port, spec.path, spec.host_header, connect_s, response_s, spec.type.startswith("HTTPS")
        )
        with self._lock:
            if self._stop.is_set():
                return
            self.probes += 1
            current = self.state.spec  # an UpdateHealthCheck since the probe began applies now
            checker.last = result
            checker.observe(result.ok != current.inverted, current.threshold)
            self._recompute(time.monotonic())


class DataPlane:
    """Fleets for every health check the failover records use, read through the Route 53 API."""

    def __init__(self, client: Any, health_check_ids: list[str], **fleet_options: Any) -> None:
        self.client = client
        self.fleets = {
            check_id: HealthCheckFleet(self._reader(check_id), **fleet_options)
            for check_id in dict.fromkeys(health_check_ids)
        }

    def _reader(self, check_id: str) -> Callable[[], CheckSpec]:
        return lambda: CheckSpec.from_api(self.client.get_health_check(HealthCheckId=check_id)["HealthCheck"])

    def is_healthy(self, check_id: str | None) -> bool:
        """Route 53: a record without a health check is healthy; an unknown check is too."""
        fleet = self.fleets.get(check_id or "")
        return True if fleet is None else fleet.healthy

    def start(self) -> DataPlane:
        for fleet in self.fleets.values():
            fleet.start()
        return self

    def stop(self) -> None:
        for fleet in self.fleets.values():
            fleet.stop()

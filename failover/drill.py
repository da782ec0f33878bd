"""The local failover drill, end to end.

1. moto server (the Route 53 API) and the two clouds, each on its own loopback address.
2. The Route 53 configuration from failover.yml created through the API: hosted zone, the
   primary's health check, PRIMARY/SECONDARY records (A records to the loopback addresses).
3. The local data plane: the checker fleet and the DNS server, both reading that configuration
   through the API.
4. Open-loop load through the DNS server; warm-up; the fault; wait until traffic has moved;
   hold; restore; wait until traffic is back; a short tail; stop the load.
5. Wait for replication to converge; check every acknowledged write is on every cloud once.
6. Report: terminal table, JSON and timeline.png in the output directory.

Every process started here is stopped on the way out (also on Ctrl-C and SIGTERM), and the
report lists their PIDs so a test can prove they are gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from emulators.base import REPO_ROOT, free_port
from emulators.moto import MotoServer
from emulators.oidc import OidcIssuer
from failover import config as cfgmod
from failover import faults as faultmod
from failover.clouds import Cloud, Clouds, LocalServerClouds
from failover.config import TIMES, FailoverConfig, Timings
from failover.dns_server import FailoverDnsServer, FailoverResolver, api_records_reader
from failover.healthcheck import DataPlane
from failover.loadgen import DnsClientResolver, LoadGenerator, LoadSpec, client_subject
from failover.proxy import FaultProxy, proxy_address
from failover.route53_setup import LocalTargets, create, route53_client
from failover.sdk_drill import SdkFleet

DEFAULT_OUT = REPO_ROOT / ".run" / "drill"
#: The API identifier the drill's clouds expect in the load's tokens.
DRILL_AUDIENCE = "overcast-drill"


@dataclass
class DrillOptions:
    fault: str = "inverted"
    fast: bool = False
    out: Path = DEFAULT_OUT
    backend: str = "auto"  # mesh | local | auto (mesh when runtime/mesh.py is importable)
    port: int | None = None  # overrides drill.port (tests pick a free one)
    warmup_s: float | None = None
    hold_s: float | None = None
    progress: bool = True
    picture: bool = True
    stream: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass
class Event:
    t: float
    name: str
    detail: str = ""


@dataclass
class Sample:
    t: float
    dns_role: str
    healthy: bool
    healthy_checkers: int
    checkers: int
    inverted: bool


class DrillAborted(RuntimeError):
    pass


def choose_port(addresses: tuple[str, ...], preferred: int | None) -> int:
    """A port free on every address (each cloud listens on the same port, like :443 in production)."""
    if preferred:
        return preferred
    for _ in range(50):
        port = free_port(addresses[0])
        if all(_port_free(a, port) for a in addresses[1:]):
            return port
    raise OSError("no common free port on the drill's loopback addresses")


def _port_free(address: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


def make_clouds(
    backend: str,
    config: FailoverConfig,
    port: int,
    state_dir: Path,
    stream: TextIO,
    scale: float = 1.0,
    settings: Mapping[str, str] | None = None,
) -> Clouds:
    names = (config.primary.provider, config.secondary.provider)
    addresses = (config.drill.primary_address, config.drill.secondary_address)
    if backend in ("auto", "mesh"):
        try:
            from failover.mesh_clouds import MeshClouds, mesh_available
        except ImportError:
            if backend == "mesh":
                raise
        else:
            if mesh_available() or backend == "mesh":
                # The Azure stack's anti-entropy timer (30 s, scaled) repairs what a crash lost in flight.
                return MeshClouds(
                    names, addresses, port, state_dir, anti_entropy_every_s=max(5.0, 30.0 * scale), settings=settings
                )
    if backend == "auto":
        print("  (runtime/mesh.py not available: two local SQLite servers without replication)", file=stream)
    return LocalServerClouds(names, addresses, port, state_dir, settings=settings)


class Drill:
    def __init__(self, config: FailoverConfig, options: DrillOptions) -> None:
        self.config = config
        self.options = options
        self.scale = config.drill.fast_scale if options.fast else 1.0
        self.timings: Timings = cfgmod.timings(config, self.scale)
        self.fault = faultmod.get(options.fault)
        self.events: list[Event] = []
        self.samples: list[Sample] = []
        self.epoch = time.monotonic()
        self.pids: list[int] = []
        self._stop_monitor = threading.Event()
        self._last_print = 0.0
        self._printing = True
        self.load: LoadGenerator | None = None
        self.resolver: FailoverResolver | None = None
        self.plane: DataPlane | None = None
        self.clouds: Clouds | None = None
        self.primary_target = config.drill.primary_address
        self.health_check_id = ""
        self.out: Path | None = None
        self.catch_up: dict[str, Any] = {}

    # -- helpers ------------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.epoch

    def say(self, text: str) -> None:
        if self.options.progress:
            print(text, file=self.options.stream, flush=True)

    def event(self, name: str, detail: str = "") -> Event:
        event = Event(self.now(), name, detail)
        self.events.append(event)
        self.say(f"[{event.t:7.1f}s] ** {name}{': ' + detail if detail else ''}")
        return event

    def phase_s(self, configured: float, override: float | None, floor: float) -> float:
        if override is not None:
            return override
        return max(floor, configured * self.scale)

    # -- the run ------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        from failover import report as reportmod

        out = Path(self.options.out)
        out.mkdir(parents=True, exist_ok=True)
        previous = _install_sigterm()
        try:
            with contextlib.ExitStack() as stack:
                result = self._run(stack, out)
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, previous)
        result["cleanup"] = {"pids": self.pids, "alive": [p for p in self.pids if _alive(p)]}
        reportmod.write(result, out, picture=self.options.picture)
        if self.options.progress:
            print(reportmod.render(result), file=self.options.stream, flush=True)
        return result

    def _run(self, stack: contextlib.ExitStack, out: Path) -> dict[str, Any]:
        t = self.timings
        drill = self.config.drill
        self.say(
            f"Overcast failover drill — fault {self.fault.name}, "
            f"{'fast (time scale ' + str(self.scale) + ')' if self.options.fast else 'real Route 53 timings'}: "
            f"interval {t.interval_s:g} s {TIMES} threshold {t.failure_threshold} + TTL {t.ttl_s} s = bound {t.bound_s:g} s"
        )
        addresses = [drill.primary_address, drill.secondary_address]
        proxy_addr = proxy_address(drill.primary_address) if self.fault.needs_proxy else None
        preferred = drill.port if self.options.port is None else self.options.port  # 0: a free one
        port = choose_port(tuple(addresses + ([proxy_addr] if proxy_addr else [])), preferred)

        # 1. Route 53 API and the clouds.
        moto = MotoServer()
        self.event(
            "starting", f"Route 53 API (moto) on {moto.url}; clouds on {addresses[0]} and {addresses[1]}, port {port}"
        )
        self.out = out
        moto.start()
        stack.callback(moto.stop)
        if moto.process.pid:
            self.pids.append(moto.process.pid)
            self._track_pids()
        # Writes need bearer tokens, as in production: a test OIDC issuer on loopback signs the
        # load's tokens, and both clouds trust it (they fetch its JWKS like a deployed function).
        issuer = OidcIssuer(drill.dns_address).start()
        stack.callback(issuer.stop)
        tokens = issuer.token_source(DRILL_AUDIENCE)
        self.event("test issuer", f"OIDC issuer {issuer.url} signs the load's tokens (audience {DRILL_AUDIENCE})")
        clouds = make_clouds(
            self.options.backend,
            self.config,
            port,
            out / "state",
            self.options.stream,
            self.scale,
            settings=issuer.env(DRILL_AUDIENCE),
        )
        self.clouds = clouds
        stack.callback(self._stop_clouds)
        clouds.start()
        self._track_pids()
        primary, secondary = clouds.primary, clouds.secondary
        self.event("clouds up", f"{primary.name} at {primary.base_url}, {secondary.name} at {secondary.base_url}")

        proxy: FaultProxy | None = None
        if proxy_addr:
            proxy = FaultProxy(proxy_addr, port, primary.address, primary.port).start()
            stack.callback(proxy.stop)
            self.primary_target = proxy_addr
            self.event("fault proxy", f"{proxy_addr}:{port} → {primary.base_url} (the PRIMARY record points here)")

        # 2. Route 53 configuration through the API.
        r53 = route53_client(moto.url)
        created = create(r53, self.config, LocalTargets(self.primary_target, drill.secondary_address, port))
        self.health_check_id = created.health_check_id
        self.event("route 53 configured", f"zone {created.hosted_zone_id}, health check {created.health_check_id}")

        # 3. Data plane: checkers + DNS.
        checks = [created.health_check_id] + (
            [created.secondary_health_check_id] if created.secondary_health_check_id else []
        )
        self.plane = DataPlane(r53, checks, checkers=drill.checkers, scale=self.scale).start()
        stack.callback(self.plane.stop)
        self.resolver = FailoverResolver(
            api_records_reader(r53, created.hosted_zone_id),
            self.plane.is_healthy,
            scale=self.scale,
            refresh_s=min(1.0, t.interval_s),
            zone=self.config.hosted_zone_name,
        )
        dns = FailoverDnsServer(self.resolver, drill.dns_address, drill.dns_port).start()
        stack.callback(dns.stop)
        self.event("dns up", f"{drill.dns_address}:{dns.port} answers {self.config.domain}")
        if self.resolver.current(self.config.domain).role != "PRIMARY":
            raise DrillAborted("DNS does not answer the primary before the fault")

        # 4. Load and phases.
        spec = LoadSpec(
            domain=self.config.domain,
            port=port,
            rate=drill.rate,
            write_share=drill.write_share,
            clients=drill.clients,
            write_attempts=drill.write_attempts,
            timeout_s=drill.client_timeout,
            stagger_s=t.ttl_s,
            labels={self.primary_target: primary.name, drill.secondary_address: secondary.name},
            authorization=lambda client: tokens(client_subject(client)),
        )
        dns_port = dns.port
        self.load = LoadGenerator(
            spec, lambda: DnsClientResolver([(drill.dns_address, dns_port)], timeout_s=1.0), epoch=self.epoch
        )
        monitor = threading.Thread(target=self._monitor, name="drill-monitor", daemon=True)
        monitor.start()
        stack.callback(self._stop_monitor.set)
        self.load.start()
        stack.callback(lambda: self.load.stop(drain_s=5) if self.load else None)
        # SDK clients beside the DNS-only load: they know both endpoints (overcast_client) and
        # move by themselves; reported side by side with the DNS clients.
        sdk = SdkFleet(
            f"http://{self.primary_target}:{port}",
            f"http://{secondary.address}:{port}",
            tokens,
            clients=2,
            rate=2.0,
            timeout_s=1.0,
        ).start()
        stack.callback(sdk.stop)
        self.event(
            "load started",
            f"{drill.rate:g} req/s open loop, {drill.write_share:.0%} writes, {drill.clients} clients on channels {self.load.channels[0]}..{self.load.channels[-1]}",
        )

        # Every client joins and caches an answer before the fault (clients join over one TTL).
        warmup = max(self.phase_s(drill.warmup, self.options.warmup_s, 3.0), t.ttl_s + 1.0)
        hold = self.phase_s(drill.hold, self.options.hold_s, 3.0)
        settle = t.ttl_s + drill.client_timeout + 1.0  # the last cached answer expires, the last request ends
        self._sleep(warmup)

        # An interrupted drill is torn down whole (moto, clouds, proxy), so nothing to restore then.
        ctx = faultmod.FaultContext(primary, r53, created.health_check_id, proxy)
        # The fault counts from the moment it is in effect: stopping a process can take seconds
        # (the mesh stops a cloud's scheduler before it SIGKILLs the runtime).
        began = time.monotonic()
        self.fault.inject(ctx)
        took = time.monotonic() - began
        t_fault = self.event("fault injected", f"{self.fault.description} (in effect after {took:.1f} s)").t
        fault_at = began + took
        self._track_pids()
        self._wait_for(lambda: not self.plane_healthy(), t.bound_s * 2 + 10, "health check never went unhealthy")
        self.event("primary unhealthy", "DNS now answers SECONDARY")
        self._sleep(settle)
        self._sleep(hold)
        self.event("restoring", f"undo {self.fault.name}")
        self.fault.restore(ctx)
        restored_at = time.monotonic()
        self._track_pids()
        watcher = threading.Thread(
            target=self._watch_catch_up, args=(primary, secondary, self.now()), name="drill-catch-up", daemon=True
        )
        watcher.start()
        t_restored = self.event("restored").t
        self._wait_for(self.plane_healthy, t.bound_s * 2 + 30, "health check never recovered")
        self.event("primary healthy", "DNS answers PRIMARY again")
        self._sleep(settle)
        self._sleep(max(2.0, t.interval_s))  # tail: steady load back on the primary
        self.load.stop(drain_s=drill.client_timeout * (drill.write_attempts + 2) + 5)
        sdk.stop()
        t_load_end = self.event("load stopped", f"{len(self.load.attempts)} requests recorded").t

        watcher.join(timeout=max(30.0, 6 * t.bound_s))
        # 5. Convergence and verification.
        self._printing = False
        timeout = max(30.0, 6 * t.bound_s) if clouds.replicating else 0.0
        convergence = self._converge(primary, secondary, self.load.channels, timeout_s=timeout)
        self.event(
            "verified" if convergence["identical"] else "NOT converged",
            f"after {convergence['seconds']:.1f} s: {convergence['messages']} messages on each cloud",
        )
        if convergence["identical"]:
            try:
                stores = clouds.verify_stores()
            except Exception as exc:  # reported, and fails the identical check below
                stores = {"identical": False, "error": f"{exc.__class__.__name__}: {exc}"}
            if stores is not None:
                convergence["stores"] = stores
                convergence["identical"] = bool(stores.get("identical"))
                self.event(
                    "stores compared",
                    "identical record by record" if stores.get("identical") else f"DIFFERENT: {stores}",
                )
        replication = self._replication_counts(clouds)
        self._stop_monitor.set()
        monitor.join(timeout=5)

        return {
            "sdk": sdk.report(self.fault.name, fault_at, restored_at),
            "replication": replication,
            "fault": self.fault.name,
            "fault_description": self.fault.description,
            "mode": "fast" if self.options.fast else "real",
            "backend": type(clouds).__name__,
            "replicating": clouds.replicating,
            "timings": {
                "scale": t.scale,
                "interval_s": t.interval_s,
                "failure_threshold": t.failure_threshold,
                "ttl_s": t.ttl_s,
                "connect_timeout_s": t.connect_timeout_s,
                "response_timeout_s": t.response_timeout_s,
                "checkers": drill.checkers,
                "detect_bound_s": t.detect_bound_s,
                "bound_s": t.bound_s,
            },
            "load": {
                "rate": drill.rate,
                "write_share": drill.write_share,
                "clients": drill.clients,
                "channels": self.load.channels,
            },
            "clouds": {
                "primary": {
                    "name": primary.name,
                    "address": self.primary_target,
                    "backend_address": primary.address,
                    "port": port,
                },
                "secondary": {"name": secondary.name, "address": secondary.address, "port": port},
            },
            "labels": spec.labels,
            "marks": {"fault": t_fault, "restored": t_restored, "load_end": t_load_end},
            "events": [e.__dict__ for e in self.events],
            "samples": [s.__dict__ for s in self.samples],
            "health_history": self._health_history(),
            "dns_answers": [
                {"t": a.t - self.epoch, "role": a.role, "values": list(a.values), "ttl": a.ttl}
                for a in self.resolver.answers
            ],
            "attempts": [a.to_json() for a in self.load.attempts],
            "writes": [w.__dict__ for w in self.load.writes],
            "convergence": {**convergence, "catch_up": self.catch_up},
        }

    def _replication_counts(self, clouds: Any) -> dict[str, Any] | None:
        """What the streams delivered and what anti-entropy repaired, with why when it repaired
        anything (a drill's "0 lost" should say which mechanism saved it)."""
        try:
            counts = clouds.replication_counts()
        except Exception as exc:  # reported, never fatal to the drill's own verdict
            return {"error": f"{exc.__class__.__name__}: {exc}"}
        if counts is None:
            return None
        notes = []
        starts = {name: c["since_ms"] for name, c in counts["clouds"].items() if c.get("since_ms") is not None}
        first = min(starts.values(), default=0)
        restarted = [name for name, since in starts.items() if since > first + 10_000]  # started after the mesh
        if restarted:
            notes.append(
                f"{', '.join(restarted)} restarted during the drill: its counts start at that restart"
                " (the status is per process, in memory)"
            )
        if counts["repaired_by_anti_entropy"]:
            clouds_ = counts["clouds"].values()
            ages = [c["repair_age_max_ms"] for c in clouds_ if c.get("repair_age_max_ms") is not None]
            pulled = sum(int(c.get("repaired_pulled", 0)) for c in clouds_)
            note = (
                f"anti-entropy passes ran every few seconds under load and found {counts['repaired_by_anti_entropy']}"
                " records the streams had not delivered when the pass read them"
            )
            if ages:
                note += f"; the oldest record a pass pushed was {max(ages)} ms old at apply" + (
                    " — in flight in the stream (its poll is 250 ms), the pass raced it"
                    if max(ages) < 5_000
                    else f" — the stream was retrying it (pushes to a faulted cloud fail under {self.fault.name})"
                )
            if pulled:
                note += f"; {pulled} of them pulled by a pass (their age is not recorded)"
            notes.append(note)
        counts["explanation"] = "; ".join(notes)
        self.event(
            "replication accounted",
            f"delivered by streams {counts['delivered_by_streams']},"
            f" repaired by anti-entropy {counts['repaired_by_anti_entropy']}",
        )
        return dict(counts)

    def plane_healthy(self) -> bool:
        return self.plane is not None and self.plane.is_healthy(self.health_check_id)

    def _health_history(self) -> list[dict[str, Any]]:
        if self.plane is None:
            return []
        fleet = self.plane.fleets[self.health_check_id]
        return [
            {
                "t": s.t - self.epoch,
                "healthy": s.healthy,
                "healthy_checkers": s.healthy_checkers,
                "checkers": s.checkers,
                "inverted": s.inverted,
            }
            for s in fleet.history()
        ]

    def _track_pids(self) -> None:
        """Record every process started so far (also in processes.json, for an interrupted run)."""
        if self.clouds is not None:
            self.pids.extend(p for p in self.clouds.pids() if p not in self.pids)
        if self.out is not None:
            (self.out / "processes.json").write_text(json.dumps({"pids": self.pids}))

    def _stop_clouds(self) -> None:
        if self.clouds is not None:
            self._track_pids()
            self.clouds.stop()

    def _sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def _wait_for(self, condition: Callable[[], bool], timeout_s: float, failure: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise DrillAborted(f"{failure} within {timeout_s:.0f} s")
            time.sleep(0.05)

    # -- monitoring ---------------------------------------------------------------------------

    def _monitor(self) -> None:
        period = 0.1 if self.options.fast else 0.25
        print_every = max(1.0, self.timings.interval_s / 2)
        while not self._stop_monitor.wait(period):
            with contextlib.suppress(Exception):
                self._sample(print_every)

    def _sample(self, print_every: float) -> None:
        assert self.plane is not None and self.resolver is not None and self.load is not None
        fleet = self.plane.fleets[self.health_check_id]
        snap = fleet.snapshot()
        role = self.resolver.current(self.config.domain).role
        now = self.now()
        self.samples.append(Sample(now, role, snap.healthy, snap.healthy_checkers, snap.checkers, snap.inverted))
        if not self._printing or now - self._last_print < print_every:
            return
        self._last_print = now
        window = 1.0
        recent = [a for a in self.load.recent(now - window) if a.end >= now - window]
        by_cloud: dict[str, int] = {}
        errors = 0
        for attempt in recent:
            if attempt.error:
                errors += 1
            else:
                name = attempt.served_by or self.load.spec.labels.get(attempt.address or "", "?")
                by_cloud[name] = by_cloud.get(name, 0) + 1
        served = " ".join(f"{k} {v / window:.0f}/s" for k, v in sorted(by_cloud.items())) or "none"
        phase = self.events[-1].name if self.events else "-"
        state = "healthy" if snap.healthy else "UNHEALTHY"
        self.say(
            f"[{now:7.1f}s] {phase:<18} dns={role or '-':<9} primary check {state:<9} "
            f"({snap.healthy_checkers}/{snap.checkers} checkers ok{', inverted' if snap.inverted else ''})  "
            f"served: {served}  errors {errors / window:.0f}/s  acked writes {len(self.load.acked())}"
        )

    # -- convergence ---------------------------------------------------------------------------

    def _watch_catch_up(self, primary: Cloud, secondary: Cloud, t_restored: float) -> None:
        """After the restore: how long until every write acknowledged before it is on both clouds
        (the secondary's outage writes reach the primary, the primary's unsent ones the secondary)."""
        assert self.load is not None
        wanted = {w.message_id for w in self.load.acked() if w.message_id}
        period = 0.25 if self.options.fast else 1.0
        deadline = time.monotonic() + max(60.0, 6 * self.timings.bound_s)
        missing: dict[str, int] = {}
        while time.monotonic() < deadline:
            try:
                missing = {
                    c.name: len(wanted - set(list_channels(c.base_url, self.load.channels)))
                    for c in (primary, secondary)
                }
            except OSError:
                missing = {}
            if missing and not any(missing.values()):
                seconds = self.now() - t_restored
                self.catch_up = {"seconds": seconds, "writes": len(wanted)}
                self.event(
                    "caught up",
                    f"all {len(wanted)} writes acknowledged before the restore are on both clouds, {seconds:.1f} s after it",
                )
                return
            time.sleep(period)
        self.catch_up = {"seconds": None, "writes": len(wanted), "missing": missing}

    # -- final convergence --------------------------------------------------------------------------

    def _converge(self, primary: Cloud, secondary: Cloud, channels: list[str], timeout_s: float) -> dict[str, Any]:
        started = time.monotonic()
        first_diff: int | None = None
        listings: dict[str, dict[str, dict[str, Any]]] = {}
        identical = False
        last_say = 0.0
        while True:
            try:
                listings = {c.name: list_channels(c.base_url, channels) for c in (primary, secondary)}
            except OSError as exc:
                listings = {}
                self.say(f"  listing failed: {exc}")
            if len(listings) == 2:
                a, b = listings[primary.name], listings[secondary.name]
                diff = _difference(a, b)
                if first_diff is None:
                    first_diff = diff
                if diff == 0:
                    identical = True
                    break
                if time.monotonic() - last_say >= 2:
                    last_say = time.monotonic()
                    self.say(
                        f"[{self.now():7.1f}s] converging: {diff} messages differ ({len(a)} on {primary.name}, {len(b)} on {secondary.name})"
                    )
            if time.monotonic() - started > timeout_s:
                break
            time.sleep(0.25)
        seconds = time.monotonic() - started
        acked = self.load.acked() if self.load else []
        lost = {
            name: sorted(w.message_id or "" for w in acked if (w.message_id or "") not in listing)
            for name, listing in listings.items()
        }
        duplicated: dict[str, list[str]] = {}
        for name, listing in listings.items():
            counts: dict[str, int] = {}
            for message in listing.values():
                key = str(message.get("text", "")).removeprefix("drill write ")
                counts[key] = counts.get(key, 0) + 1
            duplicated[name] = sorted(k for k, n in counts.items() if n > 1)
        return {
            "identical": identical,
            "seconds": seconds,
            "differences_at_load_end": first_diff,
            "messages": {name: len(listing) for name, listing in listings.items()},
            "acked": len(acked),
            "lost": lost,
            "duplicated": duplicated,
        }


def _difference(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> int:
    keys = set(a) | set(b)
    return sum(1 for k in keys if _fingerprint(a.get(k)) != _fingerprint(b.get(k)))


def _fingerprint(message: dict[str, Any] | None) -> tuple[Any, ...] | None:
    if message is None:
        return None
    return (message.get("id"), message.get("version"), message.get("author"), message.get("text"))


def list_channels(base_url: str, channels: list[str], timeout_s: float = 10.0) -> dict[str, dict[str, Any]]:
    """Every message of the drill's channels on one cloud, by id (ids are unique across channels)."""
    found: dict[str, dict[str, Any]] = {}
    for channel in channels:
        found.update(list_channel(base_url, channel, timeout_s))
    return found


def list_channel(base_url: str, channel: str, timeout_s: float = 10.0) -> dict[str, dict[str, Any]]:
    """Every message of a channel on one cloud, by id (follows the cursor to the end)."""
    found: dict[str, dict[str, Any]] = {}
    cursor = ""
    for _ in range(10_000):
        url = f"{base_url}/channels/{channel}/messages?limit=100" + (f"&cursor={cursor}" if cursor else "")
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                page = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise OSError(f"{url}: HTTP {exc.code}") from exc
        for item in page.get("items", []):
            found[item["id"]] = item
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return found
    raise OSError(f"{base_url}: channel {channel} did not end after 10,000 pages")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is gone for every purpose that matters here.
    with contextlib.suppress(OSError):
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
        return status != "Z"
    return True


def _install_sigterm() -> Any:
    def _raise(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if threading.current_thread() is not threading.main_thread():
        return signal.getsignal(signal.SIGTERM)
    return signal.signal(signal.SIGTERM, _raise)


def iter_faults() -> Iterator[str]:
    yield from faultmod.FAULTS

"""Live mode: the drill against a real Route 53 set-up, on a game day.

It uses one lever only, the production-safe one: ``UpdateHealthCheck Inverted=true`` on the
primary's health check. It never creates or deletes anything, and it always puts
``Inverted=false`` back: in a ``finally``, and on SIGINT/SIGTERM. It refuses to start when the
check is already inverted (someone else's drill, or a forgotten one: restore that by hand).

    python -m failover live --config failover.yml            # dry run: shows the plan, changes nothing
    python -m failover live --config failover.yml --confirm  # does it

While inverted it watches the DNS answer for the domain through the configured resolvers (fresh
queries, no cache), the health check's status (GetHealthCheckStatus), and drives the drill's
load (reads and idempotent writes to the drill channels, one per client) against the domain. The figures go to
``.run/live/live.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import dns.exception
import dns.message
import dns.query
import dns.rdatatype
import dns.resolver

from emulators.base import REPO_ROOT
from failover.config import TIMES, FailoverConfig
from failover.faults import set_inverted
from failover.route53_setup import find_health_check_id, route53_client

DEFAULT_OUT = REPO_ROOT / ".run" / "live"


@dataclass
class LiveOptions:
    confirm: bool = False
    endpoint_url: str | None = None
    health_check_id: str | None = None
    resolvers: list[str] | None = None
    timeout_s: float | None = None
    hold_s: float = 0.0
    rate: float | None = None
    out: Path | None = None
    poll_s: float = 1.0
    stream: TextIO = field(default_factory=lambda: sys.stdout)


def parse_resolver(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and host and host.count(":") == 0:
        return host, int(port)
    return text, 53


class DnsWatcher:
    """Asks each resolver directly (no cache) what the domain answers now."""

    def __init__(self, domain: str, resolvers: list[tuple[str, int]], timeout_s: float = 2.0) -> None:
        self.domain = domain
        self.resolvers = resolvers or [(str(ns), 53) for ns in dns.resolver.Resolver().nameservers]
        self.timeout_s = timeout_s

    def answers(self) -> dict[str, str]:
        """resolver → the answer (CNAME target and/or addresses), or an error label."""
        result: dict[str, str] = {}
        for host, port in self.resolvers:
            query = dns.message.make_query(self.domain, dns.rdatatype.A)
            label = f"{host}:{port}"
            try:
                response = dns.query.udp(query, host, port=port, timeout=self.timeout_s)
            except (dns.exception.DNSException, OSError) as exc:
                result[label] = f"error: {exc.__class__.__name__}"
                continue
            values: list[str] = []
            for rrset in response.answer:
                values.extend(str(rdata).rstrip(".") for rdata in rrset)
            result[label] = ",".join(values) or "(no answer)"
        return result


def health_status(client: Any, check_id: str) -> str:
    """'N/M checkers ok' from GetHealthCheckStatus (the real API's per-region observations)."""
    try:
        observations = client.get_health_check_status(HealthCheckId=check_id)["HealthCheckObservations"]
    except Exception as exc:
        return f"status unavailable ({exc.__class__.__name__})"
    ok = sum(1 for o in observations if str(o.get("StatusReport", {}).get("Status", "")).startswith("Success"))
    return f"{ok}/{len(observations)} checkers ok"


def plan(
    config: FailoverConfig,
    check: dict[str, Any],
    watcher: DnsWatcher,
    current: dict[str, str],
    opts: LiveOptions,
    rate: float,
    timeout: float,
) -> list[str]:
    cfg = check["HealthCheckConfig"]
    target = cfg.get("FullyQualifiedDomainName") or cfg.get("IPAddress")
    interval, threshold = cfg.get("RequestInterval", 30), cfg.get("FailureThreshold", 3)
    live = config.live
    return [
        f"Live failover drill: {config.domain} (primary {config.primary.provider}, secondary {config.secondary.provider})",
        f"  health check {check['Id']}: {cfg.get('Type')} {target}:{cfg.get('Port')}{cfg.get('ResourcePath', '')}, "
        f"interval {interval} s, threshold {threshold}, Inverted={bool(cfg.get('Inverted'))}, Disabled={bool(cfg.get('Disabled'))}",
        "  DNS now: " + "; ".join(f"{r} → {a}" for r, a in current.items()),
        f"  expected bound: {interval} s {TIMES} {threshold} + TTL {config.ttl} s = {interval * threshold + config.ttl} s",
        "The plan:",
        f"  1. UpdateHealthCheck {check['Id']} Inverted=true (nothing is created or deleted)",
        f"  2. watch DNS via {', '.join(f'{h}:{p}' for h, p in watcher.resolvers)} until the answer changes (at most {timeout:g} s)",
        f"  3. stay failed over for {opts.hold_s:g} s",
        f"  4. UpdateHealthCheck {check['Id']} Inverted=false — always, also on errors, Ctrl-C and SIGTERM",
        "  5. watch DNS until the primary's answer is back",
        f"  load meanwhile: {rate:g} req/s against {live.scheme}://{config.domain}:{live.port} (reads and idempotent writes to the drill channels, one per client)"
        if rate
        else "  load meanwhile: none",
    ]


def run_live(config: FailoverConfig, opts: LiveOptions) -> int:
    out = opts.stream
    say: Callable[[str], None] = lambda text: print(text, file=out, flush=True)  # noqa: E731
    client = route53_client(opts.endpoint_url)
    check_id = opts.health_check_id or config.live.health_check_id
    try:
        if not check_id:
            check_id = find_health_check_id(client, config.primary.target, config.health_check.resource_path)
        check = client.get_health_check(HealthCheckId=check_id)["HealthCheck"]
    except Exception as exc:
        say(f"error: cannot read the primary's health check: {exc}")
        return 2
    resolvers = [parse_resolver(r) for r in (opts.resolvers or list(config.live.resolvers))]
    watcher = DnsWatcher(config.domain, resolvers)
    rate = config.live.rate if opts.rate is None else opts.rate
    timeout = opts.timeout_s or config.live.timeout
    before = watcher.answers()
    for line in plan(config, check, watcher, before, opts, rate, timeout):
        say(line)
    if check["HealthCheckConfig"].get("Inverted"):
        say("refusing: the health check is already inverted (another drill running, or one left behind).")
        say(
            f"Restore it by hand if that is a leftover: aws route53 update-health-check --health-check-id {check_id} --no-inverted"
        )
        return 2
    if not opts.confirm:
        say("DRY RUN: nothing was changed. Run again with --confirm to do it.")
        return 0

    record: dict[str, Any] = {"health_check_id": check_id, "domain": config.domain, "before": before, "watch": []}
    epoch = time.monotonic()
    load = _start_load(config, resolvers, rate, epoch)
    restored = False
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def interrupted(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for sig in previous:
            signal.signal(sig, interrupted)
    code = 0
    try:
        try:
            say(f"[{0.0:6.1f}s] UpdateHealthCheck Inverted=true")
            set_inverted(client, check_id, True)
            record["inverted_at"] = time.monotonic() - epoch
            moved = _watch(
                client, check_id, watcher, before, lambda a: _moved(a, before), timeout, epoch, record, say, "failover"
            )
            record["moved_after_s"] = moved
            if moved is None:
                say(f"DNS did not move within {timeout:g} s")
                code = 1
            elif opts.hold_s:
                _watch(client, check_id, watcher, before, lambda a: False, opts.hold_s, epoch, record, say, "hold")
        finally:
            if in_main:  # a second Ctrl-C must not interrupt the restore itself
                for sig in previous:
                    signal.signal(sig, signal.SIG_IGN)
            for attempt in range(5):  # restoring matters more than anything else here
                try:
                    set_inverted(client, check_id, False)
                    restored = True
                    break
                except Exception as exc:
                    say(f"restore attempt {attempt + 1} failed: {exc}")
                    time.sleep(1)
            record["restored_at"] = time.monotonic() - epoch
            say(
                f"[{record['restored_at']:6.1f}s] UpdateHealthCheck Inverted=false"
                + ("" if restored else " FAILED — restore by hand!")
            )
            if in_main:
                for sig in previous:
                    signal.signal(sig, interrupted)
        back = _watch(client, check_id, watcher, before, lambda a: a == before, timeout, epoch, record, say, "failback")
        record["back_after_s"] = back
        if back is None:
            code = 1
    except KeyboardInterrupt:
        say("interrupted: the health check was restored" if restored else "interrupted")
        code = 130
    finally:
        if in_main:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if load is not None:
            load.stop(drain_s=10)
            record["requests"] = len(load.attempts)
            record["failed"] = sum(1 for a in load.attempts if a.status is None or a.status >= 500)
            record["writes_acked"] = len(load.acked())
        if not restored:
            say(f"WARNING: health check {check_id} may still be inverted")
            code = 3
    out_dir = opts.out or DEFAULT_OUT
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "live.json").write_text(json.dumps(record, indent=1))
    say(
        f"summary: DNS moved after {_fmt(record.get('moved_after_s'))} (bound {_bound(check, config)} s), "
        f"back {_fmt(record.get('back_after_s'))} after the restore; "
        f"requests {record.get('requests', 0)}, failed {record.get('failed', 0)}; report {out_dir / 'live.json'}"
    )
    return code


def _moved(answers: dict[str, str], before: dict[str, str]) -> bool:
    """Every resolver now gives a real answer that differs from the one before the drill."""
    return all(not value.startswith("error") and value != before.get(name) for name, value in answers.items())


def _bound(check: dict[str, Any], config: FailoverConfig) -> int:
    cfg = check["HealthCheckConfig"]
    return int(cfg.get("RequestInterval", 30)) * int(cfg.get("FailureThreshold", 3)) + config.ttl


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _watch(
    client: Any,
    check_id: str,
    watcher: DnsWatcher,
    before: dict[str, str],
    done: Callable[[dict[str, str]], bool],
    timeout: float,
    epoch: float,
    record: dict[str, Any],
    say: Callable[[str], None],
    phase: str,
) -> float | None:
    """Poll DNS and health status until ``done(answers)``; returns seconds taken or None."""
    started = time.monotonic()
    while True:
        answers = watcher.answers()
        now = time.monotonic()
        status = health_status(client, check_id)
        record["watch"].append({"t": now - epoch, "phase": phase, "answers": answers, "status": status})
        say(
            f"[{now - epoch:6.1f}s] {phase:<8} health {status}; DNS "
            + "; ".join(f"{r} → {a}" for r, a in answers.items())
        )
        if done(answers):
            return now - started
        if now - started > timeout:
            return None
        time.sleep(1.0)


def _start_load(config: FailoverConfig, resolvers: list[tuple[str, int]], rate: float, epoch: float) -> Any:
    if rate <= 0:
        return None
    from failover.loadgen import DnsClientResolver, LoadGenerator, LoadSpec

    spec = LoadSpec(
        domain=config.domain,
        port=config.live.port,
        rate=rate,
        write_share=config.drill.write_share,
        clients=max(1, min(config.drill.clients, int(rate) or 1)),
        write_attempts=config.drill.write_attempts,
        timeout_s=config.drill.client_timeout,
        scheme=config.live.scheme,
        # Writes to a deployment with auth on need a token from its issuer (e.g. a client-credentials
        # token); without one they are refused and counted as failed writes.
        authorization=(lambda client: "Bearer " + token) if (token := os.environ.get("OVERCAST_LIVE_TOKEN")) else None,
    )
    with contextlib.suppress(Exception):
        return LoadGenerator(spec, lambda: DnsClientResolver(resolvers or None), epoch=epoch).start()
    return None

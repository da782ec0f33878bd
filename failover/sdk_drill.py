"""The failover drill for SDK clients: overcast_client on the local mesh, a fault on the primary.

    python -m failover.sdk_drill --fault crash            # or freeze, store-down

AWS (primary) and Azure (secondary) run as in the drill (runtime.mesh, each on its own loopback
address, writes with bearer tokens from a test OIDC issuer). ``clients`` FailoverClients post and
read in a closed loop at ``rate`` operations per second each; after ``warmup_s`` the fault hits
the primary, after ``hold_s`` it is restored, and the clients are watched for ``recover_s`` more
to come back once the primary's deep health is steady.

Reported (``.run/sdk-drill/report.json``), for comparison with the DNS-only drill's figures:

* ``failed_window_s``: from the first operation whose first attempt failed (connection error,
  timeout, 5xx) to the end of the last such operation — the time clients saw any trouble;
* ``failed_after_retries``: operations that failed although the client tried both endpoints;
* ``moved_s``: fault → every client on the secondary; ``back_s``: restore → every client back;
* the slowest operation during the fault.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.base import REPO_ROOT
from overcast_client import FailoverClient
from runtime.mesh import Mesh

AUDIENCE = "overcast-sdk-drill"
OUT = REPO_ROOT / ".run" / "sdk-drill"
FAULTS = ("crash", "freeze", "store-down")


@dataclass
class Op:
    start: float
    end: float
    ok: bool
    failed: int  # attempts that failed (error, timeout, 5xx) before the answer
    endpoint: str


@dataclass
class Ledger:
    ops: list[Op] = field(default_factory=list)
    switches: list[tuple[float, str, str, str]] = field(default_factory=list)  # (time, client, from, to)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client_loop(client: FailoverClient, name: str, ledger: Ledger, rate: float, stop: threading.Event) -> None:
    last_id = None
    n = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            if last_id is None or n % 2 == 0:
                reply = client.request("POST", "/channels/sdk/messages", {"text": f"{name}-{n}"})
                if reply.status == 201:
                    last_id = reply.body["id"]
            else:
                reply = client.request("GET", f"/channels/sdk/messages/{last_id}")
            ok, failed, endpoint = reply.status < 500, reply.failed, reply.endpoint
        except Exception:
            ok, failed, endpoint = False, 2, ""
        with ledger.lock:
            ledger.ops.append(Op(started, time.monotonic(), ok, failed, endpoint))
        n += 1
        stop.wait(max(0.0, 1 / rate - (time.monotonic() - started)))


class SdkFleet:
    """``clients`` FailoverClients in closed loops against ``primary`` and ``secondary``; the DNS
    drill runs one beside its DNS-only load, and this module's ``run`` on its own."""

    def __init__(
        self,
        primary: str,
        secondary: str,
        authorization: Callable[[str], str],
        clients: int = 4,
        rate: float = 5.0,
        timeout_s: float = 1.0,
    ) -> None:
        self.primary, self.secondary = primary, secondary
        self.clients, self.rate = clients, rate
        self.ledger = Ledger()
        self._stop = threading.Event()
        self.fleet: list[FailoverClient] = []
        for i in range(clients):
            name = f"sdk-{i}"

            def switched(a: str, b: str, name: str = name) -> None:
                with self.ledger.lock:
                    self.ledger.switches.append((time.monotonic(), name, a, b))

            self.fleet.append(
                FailoverClient(
                    primary,
                    secondary,
                    authorization=functools.partial(authorization, name),
                    timeout_s=timeout_s,
                    hedge_after_s=0.3,
                    probe_every_s=1.0,
                    recover_after=3,
                    on_switch=switched,
                )
            )
        self._threads = [
            threading.Thread(target=_client_loop, args=(c, f"sdk-{i}", self.ledger, rate, self._stop), daemon=True)
            for i, c in enumerate(self.fleet)
        ]

    def start(self) -> SdkFleet:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=10)
        for client in self.fleet:
            client.close()

    def report(self, fault: str, fault_at: float, restored_at: float) -> dict[str, Any]:
        """The figures, with ``fault_at`` / ``restored_at`` on time.monotonic()."""
        return _report(self.ledger, fault, self.clients, self.rate, fault_at, restored_at, self.primary, self.secondary)


def run(
    fault: str = "crash",
    clients: int = 4,
    rate: float = 5.0,
    warmup_s: float = 5.0,
    hold_s: float = 10.0,
    recover_s: float = 15.0,
    out: Path = OUT,
) -> dict[str, Any]:
    from emulators.oidc import OidcIssuer

    if fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}: {', '.join(FAULTS)}")
    with OidcIssuer() as issuer, Mesh.start(["aws", "azure"], env=issuer.env(AUDIENCE)) as mesh:
        primary, secondary = mesh.cloud("aws"), mesh.cloud("azure")
        fleet = SdkFleet(primary.url, secondary.url, issuer.token_source(AUDIENCE), clients, rate).start()
        try:
            time.sleep(warmup_s)
            fault_at = time.monotonic()
            {"crash": primary.kill, "freeze": primary.freeze, "store-down": primary.stop_store}[fault]()
            time.sleep(hold_s)
            restored_at = time.monotonic()
            {"crash": primary.start, "freeze": primary.thaw, "store-down": primary.start_store}[fault]()
            time.sleep(recover_s)
        finally:
            fleet.stop()
    report = fleet.report(fault, fault_at, restored_at)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _report(
    ledger: Ledger,
    fault: str,
    clients: int,
    rate: float,
    fault_at: float,
    restored_at: float,
    primary: str,
    secondary: str,
) -> dict[str, Any]:
    troubled = [op for op in ledger.ops if op.failed or not op.ok]
    during = [op for op in ledger.ops if fault_at <= op.start < restored_at]
    first_move: dict[str, float] = {}
    first_back: dict[str, float] = {}
    for t, name, a, b in ledger.switches:
        if a == primary and b == secondary and fault_at <= t < restored_at:
            first_move.setdefault(name, t)
        if a == secondary and b == primary and t >= restored_at:
            first_back.setdefault(name, t)
    moves, backs = list(first_move.values()), list(first_back.values())
    return {
        "fault": fault,
        "clients": clients,
        "rate_per_client": rate,
        "operations": len(ledger.ops),
        "operations_during_fault": len(during),
        "first_attempt_failed": len(troubled),
        "failed_after_retries": sum(1 for op in ledger.ops if not op.ok),
        "failed_window_s": round(max(op.end for op in troubled) - min(op.start for op in troubled), 3)
        if troubled
        else 0.0,
        "moved_s": round(max(moves) - fault_at, 3) if len(moves) >= clients else None,
        "back_s": round(max(backs) - restored_at, 3) if len(backs) >= clients else None,
        "trouble_s_after_fault": [round(op.start - fault_at, 2) for op in troubled],
        "switches_s_after_fault": [
            (round(t - fault_at, 2), name, "primary" if b == primary else "secondary")
            for t, name, _, b in ledger.switches
        ],
        "slowest_during_fault_s": round(max((op.end - op.start for op in during), default=0.0), 3),
        "served_by_secondary_during_fault": sum(1 for op in during if op.endpoint == secondary),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m failover.sdk_drill", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fault", choices=FAULTS, default="crash")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=5.0, help="operations per second per client")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--hold", type=float, default=10.0)
    parser.add_argument("--recover", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    report = run(args.fault, args.clients, args.rate, args.warmup, args.hold, args.recover, args.out)
    print(json.dumps(report, indent=2))
    return 0 if report["failed_after_retries"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Start a replication mesh of local clouds, each its own processes on its own loopback address.

    python -m runtime.mesh up aws azure            # serve until Ctrl-C; prints URLs and the mesh file
    python -m runtime.mesh up aws azure gcp local --anti-entropy-every-s 30

A cloud is a runtime process (``runtime.<kind>``: the provider's real handlers under a local
stand-in for its platform) plus its own emulator process, bound to the cloud's own address:
aws 127.0.0.2 (moto server, DynamoDB + Streams), azure 127.0.0.3 (cosmosdb-server), gcp
127.0.0.4 (the Firestore emulator JVM, which only binds 127.0.0.1), local 127.0.0.5 (SQLite, no
emulator); further clouds take 127.0.0.6 and up. Name a cloud ``name=kind`` to run two of one
kind (``east=local west=local``).

With ``anti_entropy_every_s`` (``--anti-entropy-every-s``) each cloud also runs its scheduled
anti-entropy function: runtime.azure and runtime.local have their own timer; for aws and gcp a
schedule stand-in process (``python -m runtime.mesh tick handlers.aws:anti_entropy``) invokes the
entrypoint with the event EventBridge / Cloud Scheduler would send.

Writes need a bearer token on every provider: ``up`` runs a test OIDC issuer on loopback that every
cloud trusts and prints a token for it (``--auth disabled`` turns authentication off explicitly,
``--auth env`` keeps the OVERCAST_AUTH_* settings of the calling environment).

Peers are configuration: every cloud gets ``OVERCAST_PEERS`` listing the others, and every pair
gets its own random secret (one variable per peer, ``OVERCAST_PEER_SECRET_<NAME>``). The mesh
file (``<workdir>/mesh.json``, mode 0600) records each cloud's URL, store spec and environment,
for ``python -m tools.replication verify --mesh`` / ``repair --mesh``.

Library (the failover drill uses it)::

    with Mesh.start(["aws", "azure"]) as mesh:
        mesh.cloud("aws").url
        mesh.cloud("azure").freeze(); ...; mesh.cloud("azure").thaw()     # SIGSTOP / SIGCONT
        mesh.cloud("azure").stop(); mesh.cloud("azure").restart()         # same port, same data
        mesh.cloud("aws").kill()                                           # SIGKILL
        mesh.cloud("aws").stop_store(); mesh.cloud("aws").start_store()   # store outage, data kept
        mesh.repair(); mesh.verify().identical

Everything started is stopped by ``close()`` (also on exceptions, Ctrl-C and interpreter exit:
every process is an ``emulators.base.ServerProcess`` in its own process group).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from adapters.registry import providers
from emulators.base import REPO_ROOT, ServerProcess, free_port

if TYPE_CHECKING:
    from core.anti_entropy import AntiEntropyReport
    from core.ports import MessageStore
    from tools.replication.verify import VerifyReport

#: kind → (its own loopback address, its Cloud subclass as "module:Class"), from each provider's
#: spec (``adapters/<name>/provider.py``: ``address``, ``cloud``). A class is imported only when a
#: mesh uses its kind, so the mesh never loads SDKs it does not run.
CLOUD_KINDS: dict[str, tuple[str, str]] = {
    spec.name: (spec.address, spec.cloud) for spec in providers().values() if spec.cloud and spec.address
}
KINDS = tuple(CLOUD_KINDS)
KIND_HOSTS = {kind: host for kind, (host, _) in CLOUD_KINDS.items()}
FIRST_EXTRA_HOST = 7  # a second cloud of one kind takes 127.0.0.7 and up


def cloud_class(kind: str) -> type[Cloud]:
    if kind not in CLOUD_KINDS:
        raise ValueError(f"unknown cloud kind {kind!r}: use {', '.join(KINDS)}")
    module, _, name = CLOUD_KINDS[kind][1].partition(":")
    cls: type[Cloud] = getattr(importlib.import_module(module), name)
    return cls


class Emulator(Protocol):
    def start(self) -> Any: ...
    def stop(self) -> None: ...


def secret_var(peer: str) -> str:
    return "OVERCAST_PEER_SECRET_" + peer.upper().replace("-", "_")


class Cloud:
    """One cloud of the mesh: its runtime process, its emulator, its store spec and settings.

    Subclasses (one per kind, in runtime/<kind>.py) fill in what differs: ``start_emulator``
    (start the store's emulator and set ``store_spec``), ``kind_args`` (the runtime's flags for
    that store) and ``store_env`` (the store settings its handlers read). Everything else —
    processes, faults, peers — is the same for every kind.
    """

    kind = ""
    #: The provider's scheduled anti-entropy function ("module:function"), for kinds whose local
    #: runtime has no timer of its own (the mesh runs a schedule stand-in for them).
    scheduled_entrypoint: str | None = None
    #: Whether the kind's runtime runs anti-entropy itself (``--anti-entropy-every-s``).
    own_timer = False

    @classmethod
    def scheduled_invocation(cls, every_s: float) -> tuple[Any, Any]:
        """The ``(event, context)`` the platform's scheduler passes ``scheduled_entrypoint``."""
        raise NotImplementedError(f"{cls.__name__} has no scheduled entrypoint")

    def __init__(
        self,
        name: str,
        host: str,
        workdir: Path,
        runtime_args: Sequence[str] = (),
        port: int | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port or free_port(host)
        self.workdir = workdir
        self.runtime_args = list(runtime_args)
        self.env: dict[str, str] = {}
        self.emulator: Any = None
        self.emulator_process: ServerProcess | None = None
        self.store_spec = ""
        self.process: ServerProcess | None = None
        self.scheduler: ServerProcess | None = None
        self.schedule_every_s = 0.0
        self.frozen = False
        self.store_stopped = False

    # -- what differs per kind ---------------------------------------------------------------

    def start_emulator(self) -> None:
        """Start this cloud's store emulator (if it has one) and set ``store_spec``."""
        raise NotImplementedError

    def kind_args(self) -> list[str]:
        """The runtime's command-line flags that point it at its store."""
        raise NotImplementedError

    def store_env(self) -> dict[str, str]:
        """The store settings the provider's handlers read (what the runtimes set for them)."""
        return {}

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return bool(self.process and self.process.process and self.process.process.poll() is None)

    # -- lifecycle ---------------------------------------------------------------------------

    def _emulator_port(self, host: str) -> int:
        """A free port for the emulator that is not the runtime's (chosen, not yet bound)."""
        while True:
            candidate = free_port(host)
            if candidate != self.port:
                return candidate

    def argv(self) -> list[str]:
        base = [sys.executable, "-m", f"runtime.{self.kind}", "--host", self.host, "--port", str(self.port)]
        return base + self.kind_args() + self.runtime_args

    def start(self) -> Cloud:
        """Start (or start again) the runtime process; waits until ``/health`` answers 200."""
        if self.running:
            return self
        self.process = ServerProcess(
            f"{self.name}-runtime",
            self.argv(),
            host=self.host,
            port=self.port,
            env=self.env,
            cwd=REPO_ROOT,
            ready=self._healthy,
            startup_timeout=90,
        )
        self.process.start()
        self.frozen = False
        if self.schedule_every_s > 0:
            self.start_scheduler(self.schedule_every_s)
        return self

    def start_scheduler(self, every_s: float) -> None:
        """Run the provider's scheduled anti-entropy entrypoint every ``every_s`` seconds, in its own
        process, as EventBridge (aws) or Cloud Scheduler (gcp) would. runtime.azure and
        runtime.local have their own timer (``--anti-entropy-every-s``)."""
        entrypoint = self.scheduled_entrypoint
        self.schedule_every_s = every_s
        if entrypoint is None or (self.scheduler and self.scheduler.process):
            return
        argv = [
            sys.executable,
            "-m",
            "runtime.mesh",
            "tick",
            entrypoint,
            "--every-s",
            str(every_s),
            "--kind",
            self.kind,
        ]
        env = {**self.env, **self.store_env()}
        self.scheduler = ServerProcess(
            f"{self.name}-scheduler", argv, host=self.host, port=self.port, env=env, ready=lambda: True
        )
        self.scheduler.start()

    def _stop_scheduler(self) -> None:
        if self.scheduler:
            self.scheduler.stop(timeout=5)

    def stop(self) -> None:
        """Stop the runtime and its scheduler (SIGTERM, then SIGKILL); store and emulator keep running."""
        self._stop_scheduler()
        if self.process:
            self.process.stop()
        self.frozen = False

    def kill(self) -> None:
        """SIGKILL the runtime: no clean shutdown, in-flight deliveries are lost."""
        self._stop_scheduler()
        if self.process:
            self.process.signal(signal.SIGKILL)
            self.process.stop(timeout=5)
        self.frozen = False

    def restart(self) -> Cloud:
        self.stop()
        return self.start()

    def freeze(self) -> None:
        """SIGSTOP the runtime: connections are accepted by the kernel but never answered."""
        if self.process:
            self.process.signal(signal.SIGSTOP)
            self.frozen = True
        if self.scheduler:
            self.scheduler.signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process:
            self.process.signal(signal.SIGCONT)
            self.frozen = False
        if self.scheduler:
            self.scheduler.signal(signal.SIGCONT)

    def stop_store(self) -> None:
        """Take the store away, keeping its data: the emulator is frozen (SIGSTOP), so calls hang
        until the adapters' timeouts; a local cloud's SQLite store is switched to 'unavailable'."""
        if self.emulator_process is not None:
            self.emulator_process.signal(signal.SIGSTOP)
        elif self.process:
            self.process.signal(signal.SIGUSR1)
        self.store_stopped = True

    def start_store(self) -> None:
        if self.emulator_process is not None:
            self.emulator_process.signal(signal.SIGCONT)
        elif self.process:
            self.process.signal(signal.SIGUSR2)
        self.store_stopped = False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.scheduler:
                self.scheduler.stop(timeout=5)
        with contextlib.suppress(Exception):
            if self.process:
                self.process.stop(timeout=5)
        with contextlib.suppress(Exception):
            if self.emulator is not None:
                self.emulator.stop()

    # -- access ------------------------------------------------------------------------------

    def open_store(self) -> MessageStore:
        """A store client on this cloud's store (the operator's view, for verify and tests)."""
        from tools.replication.stores import open_store

        return open_store(self.store_spec)

    def request(
        self, method: str, path: str, body: Any = None, headers: Mapping[str, str] | None = None, timeout: float = 10.0
    ) -> tuple[int, Any]:
        """A JSON request to this cloud's API; returns (status, parsed body or None)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        return status, (json.loads(raw) if raw else None)

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines) if self.process else ""

    def _healthy(self) -> bool:
        with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
            return response.status == 200

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "url": self.url, "store": self.store_spec, "env": self.env}


class Mesh:
    def __init__(self, clouds: Sequence[Cloud], workdir: Path, owns_workdir: bool) -> None:
        self.clouds = {c.name: c for c in clouds}
        self.workdir = workdir
        self._owns_workdir = owns_workdir
        self.config_path = workdir / "mesh.json"
        self._closed = False

    @classmethod
    def start(
        cls,
        clouds: Sequence[str],
        *,
        workdir: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        runtime_args: Mapping[str, Sequence[str]] | None = None,
        anti_entropy_every_s: float = 0.0,
        port: int | None = None,
    ) -> Mesh:
        """Start every cloud (``"aws"`` or ``"name=kind"``) with its emulator, wired as peers.

        ``env`` adds settings for every runtime (e.g. ``OVERCAST_LOG_LEVEL``); ``runtime_args``
        adds command-line flags per cloud name or kind; ``port`` serves every cloud's API on the
        same port (each on its own address — what a DNS failover between them needs); default:
        a free port each. On any failure everything started so far is stopped before the error
        propagates.
        """
        owns = workdir is None
        base = Path(tempfile.mkdtemp(prefix="mesh-", dir=_run_dir())) if workdir is None else Path(workdir)
        base.mkdir(parents=True, exist_ok=True)
        parsed = [_parse(spec) for spec in clouds]
        if len({name for name, _ in parsed}) != len(parsed):
            raise ValueError(f"cloud names must be unique: {clouds}")
        extra_hosts = iter(f"127.0.0.{n}" for n in range(FIRST_EXTRA_HOST, 250))
        taken: set[str] = set()
        members = []
        for name, kind in parsed:
            kind_class = cloud_class(kind)  # an unknown kind fails here, before anything starts
            host = KIND_HOSTS[kind] if KIND_HOSTS[kind] not in taken else next(extra_hosts)
            taken.add(host)
            args = list((runtime_args or {}).get(kind, ())) + list((runtime_args or {}).get(name, ()))
            if anti_entropy_every_s > 0 and kind_class.own_timer:
                args += ["--anti-entropy-every-s", str(anti_entropy_every_s)]
            members.append(kind_class(name, host, base, args, port=port))
        mesh = cls(members, base, owns)
        try:
            mesh._wire(env or {})
            for cloud in members:
                cloud.start_emulator()
            mesh.write_config()
            _start_all(members)
            if anti_entropy_every_s > 0:  # kinds with their own timer got --anti-entropy-every-s
                for cloud in members:
                    if cloud.scheduled_entrypoint:
                        cloud.start_scheduler(anti_entropy_every_s)
        except BaseException:
            mesh.close()
            raise
        return mesh

    def _wire(self, env: Mapping[str, str]) -> None:
        names = sorted(self.clouds)
        pair_secrets = {frozenset((a, b)): secrets.token_urlsafe(32) for a in names for b in names if a < b}
        for cloud in self.clouds.values():
            peers = [
                {"name": other.name, "url": other.url, "secret_env": secret_var(other.name)}
                for other in self.clouds.values()
                if other is not cloud
            ]
            cloud.env = {
                "OVERCAST_PROVIDER": cloud.kind,
                "OVERCAST_ORIGIN": cloud.name,
                "OVERCAST_REGION": f"local-{cloud.name}",
                "OVERCAST_LOG_LEVEL": "WARNING",
                "OVERCAST_PEERS": json.dumps(peers),
                **{secret_var(p["name"]): pair_secrets[frozenset((cloud.name, p["name"]))] for p in peers},
                **env,
            }

    def write_config(self) -> Path:
        self.config_path.write_text(json.dumps({"clouds": {n: c.describe() for n, c in self.clouds.items()}}, indent=2))
        self.config_path.chmod(0o600)  # it holds the pair secrets (random, local, per mesh)
        return self.config_path

    def cloud(self, name: str) -> Cloud:
        try:
            return self.clouds[name]
        except KeyError:
            raise KeyError(f"no cloud {name!r} in this mesh ({', '.join(self.clouds)})") from None

    def repair(self, window_s: int = 0, clouds: Sequence[str] | None = None) -> dict[str, AntiEntropyReport]:
        """One anti-entropy pass from each cloud (as its scheduled function would run it)."""
        from tools.replication.repair import repair_mesh

        config = json.loads(self.config_path.read_text())
        return repair_mesh(config, list(clouds) if clouds else None, window_s=window_s)

    def verify(self, show: int = 10) -> VerifyReport:
        from tools.replication.verify import verify

        stores = {name: cloud.open_store() for name, cloud in self.clouds.items()}
        try:
            return verify(stores, show)
        finally:
            for store in stores.values():
                store.close()

    def replication_counts(self) -> dict[str, Any]:
        """What reached each cloud by its peers' change streams and what anti-entropy repaired,
        from each cloud's ``/replication/status`` (counted per runtime process: since its last
        start, ``since_ms``) and, for a cloud whose schedule runs in a stand-in process, the
        records its passes pulled (from that process's log).

        ``repaired_by_anti_entropy`` = records applied from peers' anti-entropy pushes + records
        pulled by this cloud's passes: what the streams had not delivered when a pass ran."""
        from tools.replication.status import fetch_status, mesh_signer

        clouds: dict[str, Any] = {}
        for name, cloud in self.clouds.items():
            entry: dict[str, Any] = {"delivered_by_streams": 0, "repaired_by_anti_entropy": 0}
            try:
                status = fetch_status(cloud.url, *mesh_signer(cloud.describe()), timeout_s=5.0)
            except (OSError, ValueError) as exc:
                clouds[name] = {**entry, "error": str(exc)}
                continue
            peers = status.get("peers", [])
            entry["since_ms"] = status.get("since_ms")
            entry["delivered_by_streams"] = sum(int(p.get("applied_by_stream", 0)) for p in peers)
            pulled = sum(int(p.get("repaired_pulled", 0)) for p in peers) + _scheduler_pulled(cloud)
            entry["repaired_by_anti_entropy"] = sum(int(p.get("applied_by_repair", 0)) for p in peers) + pulled
            entry["anti_entropy_passes"] = sum(int(p.get("anti_entropy_passes", 0)) for p in peers)
            ages = [p["repair_age_max_ms"] for p in peers if p.get("repair_age_max_ms") is not None]
            entry["repair_age_max_ms"] = max(ages, default=None)
            entry["repaired_pulled"] = pulled
            clouds[name] = entry
        return {
            "delivered_by_streams": sum(c["delivered_by_streams"] for c in clouds.values()),
            "repaired_by_anti_entropy": sum(c["repaired_by_anti_entropy"] for c in clouds.values()),
            "clouds": clouds,
        }

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for cloud in self.clouds.values():
            cloud.close()
        if self._owns_workdir:  # a temporary directory we made (SQLite files, mesh.json with secrets)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _scheduler_pulled(cloud: Cloud) -> int:
    """Records pulled by the passes a schedule stand-in ran (its "scheduled invocation ok" lines)."""
    if cloud.scheduler is None:
        return 0
    pulled = 0
    for line in cloud.scheduler.log_tail(100_000).splitlines():
        if '"scheduled invocation ok"' not in line:
            continue
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            pulled += int(json.loads(line)["result"].get("pulled", 0))
    return pulled


def _parse(spec: str) -> tuple[str, str]:
    name, _, kind = spec.partition("=")
    return name, (kind or name)


def _run_dir() -> Path:
    path = REPO_ROOT / ".run" / "mesh"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _start_all(clouds: Sequence[Cloud]) -> None:
    """Start the runtimes in parallel (each takes a few seconds to import its SDK)."""
    errors: list[BaseException] = []

    def start(cloud: Cloud) -> None:
        try:
            cloud.start()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(c,), name=f"start-{c.name}") for c in clouds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.mesh", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start clouds and serve until Ctrl-C")
    up.add_argument("clouds", nargs="+", help=f"cloud kinds ({', '.join(KINDS)}) or name=kind")
    up.add_argument(
        "--workdir",
        type=Path,
        help="where SQLite files and mesh.json go (default: a temporary .run/mesh/mesh-*, removed on exit)",
    )
    up.add_argument("--anti-entropy-every-s", type=float, default=0.0, help="periodic anti-entropy (local, azure)")
    up.add_argument("--port", type=int, help="serve every cloud's API on this port (each on its own address)")
    up.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default="test-issuer",
        help="who may write: a test OIDC issuer on loopback whose tokens every cloud trusts (default), "
        "'disabled' (no authentication; local demos only), or 'env' (the OVERCAST_AUTH_* settings already set)",
    )
    tick = commands.add_parser("tick", help="call a scheduled entrypoint every N s (a schedule stand-in)")
    tick.add_argument("entrypoint", help="module:function, e.g. handlers.aws:anti_entropy")
    tick.add_argument("--every-s", type=float, required=True)
    tick.add_argument("--kind", required=True, help="the cloud kind whose scheduler event to send")
    args = parser.parse_args(argv)
    if args.command == "tick":
        return _tick(args.entrypoint, args.every_s, args.kind)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with contextlib.ExitStack() as resources:
        auth_env, describe_auth = _auth_settings(args.auth, resources)
        options = {"workdir": args.workdir, "anti_entropy_every_s": args.anti_entropy_every_s, "port": args.port}
        mesh = resources.enter_context(Mesh.start(args.clouds, env=auth_env, **options))
        for name, cloud in mesh.clouds.items():
            print(f"{name:<10} {cloud.kind:<6} {cloud.url:<28} store {cloud.store_spec}", flush=True)
        for line in describe_auth:
            print(line, flush=True)
        print(f"mesh file {mesh.config_path}", flush=True)
        print(
            f"verify:   {Path(sys.executable).name} -m tools.replication verify --mesh {mesh.config_path}", flush=True
        )
        print("ready; Ctrl-C stops every process", flush=True)
        stop.wait()
    print("stopped", flush=True)
    return 0


AUTH_MODES = ("test-issuer", "disabled", "env")
MESH_AUDIENCE = "overcast-api"


def _auth_settings(mode: str, resources: contextlib.ExitStack) -> tuple[dict[str, str], list[str]]:
    """The OVERCAST_AUTH_* settings every cloud gets, and what to tell the user about them.

    Writes need a bearer token on every provider, so a mesh started for a demo would answer 503 to
    every POST; by default it runs a test OIDC issuer on loopback (as the drill does) and prints a
    token. ``disabled`` is explicit, never a silent default."""
    if mode == "disabled":
        return {"OVERCAST_AUTH_DISABLED": "true"}, ["auth      disabled: anyone may write (local demo)"]
    if mode == "env":
        return {}, ["auth      from the OVERCAST_AUTH_* settings of this environment"]
    from emulators.oidc import OidcIssuer  # imports cryptography: only when a test issuer is wanted

    issuer = resources.enter_context(OidcIssuer())
    token = issuer.token("ada", MESH_AUDIENCE, lifetime_s=12 * 3600)
    return issuer.env(MESH_AUDIENCE), [
        f"auth      test OIDC issuer {issuer.url} (audience {MESH_AUDIENCE}); a token for 'ada', valid 12 h:",
        f"          export TOKEN={token}",
        '          curl -H "Authorization: Bearer $TOKEN" ...',
    ]


def _tick(entrypoint: str, every_s: float, kind: str) -> int:
    """Invoke ``entrypoint(event, context)`` every ``every_s`` seconds with the event its platform's
    scheduler sends (``Cloud.scheduled_invocation`` of the kind); a raised error is logged (the
    platform records a failed invocation) and the next tick runs as scheduled."""
    import importlib
    import logging
    import time

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    module, _, name = entrypoint.partition(":")
    function = getattr(importlib.import_module(module), name)
    kind_class = cloud_class(kind)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"ready {entrypoint} every {every_s:g} s", flush=True)
    while not stop.wait(every_s):
        event, context = kind_class.scheduled_invocation(every_s)
        started = time.monotonic()
        try:
            result = function(event, context)
            print(
                json.dumps(
                    {
                        "msg": "scheduled invocation ok",
                        "seconds": round(time.monotonic() - started, 3),
                        "result": result,
                    },
                    default=str,
                ),
                flush=True,
            )
        except Exception as exc:
            print(
                json.dumps({"msg": "scheduled invocation failed", "error": f"{type(exc).__name__}: {exc}"}), flush=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Local stand-in for the Azure Functions host (Core Tools cannot be installed on these machines).

    python -m runtime.azure --host 127.0.0.3 --port 8080 \\
        --cosmos-endpoint https://127.0.0.1:8081 --cosmos-key KEY --database overcast --container messages [--create]

It is NOT the Functions host. It runs the same entrypoints the deployed package runs
(``handlers.azure.http``, ``handlers.azure.changes``, ``handlers.azure.anti_entropy``) with
real ``azure.functions`` objects built the way the host builds them:

- HTTP: every request becomes a ``func.HttpRequest`` (method, full URL, headers, query params,
  ``route_params={"path": ...}``, body) for the route ``{*path}``, and the ``func.HttpResponse``
  is written back. Both ``/api/<path>`` (the deployed shape, host.json routePrefix "api") and
  ``/<path>`` are served, so clients and health checkers can use either.
- Change feed: the emulator's change feed is a stub, so this host EMULATES the Cosmos DB trigger
  by reading the container in COMMIT order (the emulator's ``_ts`` commit stamp, not the record's
  version: a real feed is in LSN order, and a version from a peer clock running ahead must not
  hide later local writes) from a lease, wrapping the stored documents as a ``func.DocumentList``
  and calling the change-feed function. A new lease starts at "now" (``startFromBeginning:
  false``); with ``--lease-file`` the lease is kept in a file, so a restarted host resumes where
  it was, as a lease container does in Azure. If the function raises, the lease does NOT advance
  and the same batch is retried after an exponential backoff — what the function's retry policy
  does in Azure; after ``--max-retries`` the batch is given up (logged), as the platform does,
  and anti-entropy is the backstop. ``--max-retries -1`` retries forever. ``_ts`` is whole
  seconds, so the last second is read again and documents already delivered are skipped.
- Timer: with ``--anti-entropy-every-s N`` the anti-entropy function runs every N seconds.

Only loopback: the host binds 127.x, and the Cosmos endpoint must be a local emulator (its
expired self-signed certificate is accepted, see emulators/cosmos.py). Prints
``ready http://HOST:PORT`` once serving; SIGTERM or SIGINT stops it cleanly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func
from azure.functions.timer import TimerRequest

from adapters.azure.events import DEFAULT_ROUTE_PREFIX, strip_route_prefix, to_documents
from core.logs import get_logger, log
from runtime.frontdoor import Answer, FrontDoor, Incoming, serve_until_stopped
from runtime.mesh import Cloud
from runtime.pump import PollLoop, RetryPolicy, deliver

logger = get_logger("runtime.azure")
_MAX_READ = 8 * 1024 * 1024


class LocalContext(func.Context):
    """The ``context`` argument the Functions worker passes (invocation id, retry state)."""

    def __init__(self, function_name: str, retry_count: int = 0, max_retry_count: int = 0) -> None:
        self._invocation_id = str(uuid.uuid4())
        self._function_name = function_name
        self._retry = _RetryContext(retry_count, max_retry_count)
        self._local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return os.path.join(os.getcwd(), self._function_name)

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return self._retry


class _RetryContext:
    """What ``context.retry_context`` tells a function about the current retry."""

    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._count, self._max = retry_count, max_retry_count

    @property
    def retry_count(self) -> int:
        return self._count

    @property
    def max_retry_count(self) -> int:
        return self._max

    @property
    def exception(self) -> Any:
        return None


# -- HTTP -------------------------------------------------------------------------------------


def build_http_request(
    method: str, base_url: str, target: str, headers: Any, body: bytes, route_prefix: str
) -> func.HttpRequest:
    """The ``func.HttpRequest`` the host would build for route ``{*path}`` (prefix optional here)."""
    parts = urlsplit(target)
    routed = strip_route_prefix(parts.path or "/", route_prefix)  # /health is served as /api/health
    return func.HttpRequest(
        method=method,
        url=base_url + target,
        headers={name: value for name, value in headers.items()},
        params=dict(parse_qsl(parts.query, keep_blank_values=True)),
        route_params={"path": routed.lstrip("/")},
        body=body,
    )


class AzureFunctionsHost(FrontDoor):
    """The Functions host's HTTP front: ``func.HttpRequest`` in, ``func.HttpResponse`` out."""

    def __init__(
        self,
        http_function: Callable[[func.HttpRequest, func.Context], func.HttpResponse],
        host: str = "127.0.0.1",
        port: int = 8080,
        route_prefix: str = DEFAULT_ROUTE_PREFIX,
    ) -> None:
        self.http_function = http_function
        self.route_prefix = route_prefix
        super().__init__(
            host,
            port,
            self._answer,
            max_body=_MAX_READ,
            too_large=Answer(413, {"content-type": "text/plain"}, b"Request Entity Too Large"),
            crashed=Answer(500, {"content-type": "text/plain"}, b"Internal Server Error"),
            logger=logger,
        )

    def _answer(self, incoming: Incoming) -> Answer:
        request = build_http_request(
            incoming.method, self.url, incoming.target, dict(incoming.headers), incoming.body, self.route_prefix
        )
        response = self.http_function(request, LocalContext("http"))
        headers = dict(response.headers.items())
        if response.headers.get("content-type") is None and response.get_body():
            headers["content-type"] = f"{response.mimetype}; charset={response.charset}"
        return Answer(response.status_code, headers, response.get_body())


# -- change feed (emulated) ---------------------------------------------------------------------


class CommitLog(Protocol):
    """Where the emulated trigger reads changes: documents in COMMIT order, never version order.

    A real change feed is ordered by commit (a partition's LSN), so the emulation must be too: a
    feed ordered by version would let one record from a peer whose clock runs ahead (its version
    in the future) carry the checkpoint past local writes committed after it.
    """

    def read(self, since_ts: int) -> list[dict[str, Any]]:
        """Every document whose commit second ``_ts`` is >= ``since_ts``, in commit order."""
        ...


class CosmosCommitLog:
    """The emulator's own commit clock: cosmosdb-server stamps every write with ``_ts`` (its clock,
    whole seconds) as it commits it, on one event loop, so ``_ts`` never goes back in commit order.
    It has no LSN, so ties within a second are kept by the lease's ``seen`` set instead."""

    _QUERY = "SELECT * FROM c WHERE c._ts >= @ts"

    def __init__(self, container: Any) -> None:
        self.container = container

    def read(self, since_ts: int) -> list[dict[str, Any]]:
        items = self.container.query_items(
            self._QUERY, parameters=[{"name": "@ts", "value": since_ts}], enable_cross_partition_query=True
        )
        return sorted((dict(item) for item in items), key=lambda doc: int(doc.get("_ts", 0)))


class Lease:
    """The trigger's lease: where the feed is, kept in a file under the cloud's run dir so a
    restarted host resumes there (a Cosmos lease container does this in Azure). Without a path
    the lease lives in memory only (a host that is never restarted)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.continuation_ts: int | None = None  # commit second the feed has delivered up to
        self.seen: dict[str, int] = {}  # "<id>|<_etag>" → _ts, for documents at or near it
        if path is not None and path.is_file():
            state = json.loads(path.read_text())
            self.continuation_ts = int(state["continuation_ts"])
            self.seen = {str(k): int(v) for k, v in state.get("seen", {}).items()}

    def save(self) -> None:
        if self.path is None:
            return
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"continuation_ts": self.continuation_ts, "seen": self.seen}))
        os.replace(temporary, self.path)  # never half a lease after a kill


class ChangeFeedEmulator:
    """Reads ``commit_log`` in commit order from a lease and delivers batches to the change-feed
    function with the retry semantics of a Functions retry policy (see the module docstring)."""

    def __init__(
        self,
        commit_log: CommitLog,
        function: Callable[[func.DocumentList, func.Context], None],
        *,
        lease: Lease | None = None,
        poll_s: float = 0.25,
        batch_size: int = 100,
        overlap_s: int = 1,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
        max_retries: int = 10,
        now_s: Callable[[], int] | None = None,
    ) -> None:
        self.commit_log = commit_log
        self.function = function
        self.lease = lease or Lease()
        self.poll_s = poll_s
        self.batch_size = batch_size
        self.overlap_s = overlap_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.max_retries = max_retries
        if self.lease.continuation_ts is None:  # a new lease starts at "now" (startFromBeginning: false)
            self.lease.continuation_ts = (now_s or (lambda: int(time.time())))()
            self.lease.save()
        self.stop_event = threading.Event()
        self.delivered = 0
        self.failures = 0
        self.given_up = 0

    def run(self) -> None:
        PollLoop(
            self._poll,
            name="change-feed",
            idle_s=self.poll_s,
            error_backoff=RetryPolicy(backoff_s=(self.retry_min_s, self.retry_min_s)),
            logger=logger,
            stop=self.stop_event,
        ).run()

    def _poll(self) -> bool:
        self.poll_once()
        return False  # rest poll_s after every poll, busy or not (the trigger's feedPollDelay)

    def poll_once(self) -> int:
        """Deliver every change not delivered yet, in commit order; returns how many."""
        lease = self.lease
        assert lease.continuation_ts is not None
        # A second's writes may still be committing while it is read: re-read the last second(s)
        # and skip what was delivered (``seen``).
        documents = self.commit_log.read(lease.continuation_ts - self.overlap_s)
        pending = [doc for doc in documents if _key(doc) not in lease.seen]
        done = 0
        for start in range(0, len(pending), self.batch_size):
            batch = pending[start : start + self.batch_size]
            if not self._deliver(batch):
                return done  # stopping: the lease stays before this batch
            for document in batch:
                commit_ts = int(document.get("_ts", 0))
                lease.seen[_key(document)] = commit_ts
                lease.continuation_ts = max(lease.continuation_ts, commit_ts)
            floor = lease.continuation_ts - 2 * self.overlap_s
            lease.seen = {k: ts for k, ts in lease.seen.items() if ts >= floor}
            lease.save()
            done += len(batch)
        return done

    def _deliver(self, batch: Sequence[dict[str, Any]]) -> bool:
        """The Functions retry policy: a raise re-runs the whole batch after a backoff; after the
        last retry the host gives up and moves the lease on. False: stopped meanwhile."""

        def invoke(pending: Sequence[dict[str, Any]], retries: int) -> Sequence[dict[str, Any]]:
            documents = to_documents(pending)
            try:
                self.function(documents, LocalContext("changes", retries, self.max_retries))
            except Exception as exc:
                self.failures += 1
                log(logger, logging.WARNING, "change-feed function failed", records=len(pending), error=str(exc))
                return pending
            return []

        policy = RetryPolicy(self.max_retries, (self.retry_min_s, self.retry_max_s))
        outcome = deliver(
            batch, invoke, policy, self.stop_event, logging.getLogger("overcast.runtime.azure"), "change-feed batch"
        )
        self.delivered += outcome.delivered
        if outcome.given_up:
            self.given_up += len(outcome.given_up)
            log(
                logger,
                logging.ERROR,
                "change-feed batch given up after retries; anti-entropy will repair it",
                records=len(outcome.given_up),
                retries=outcome.retries - 1,
            )
        return not outcome.stopped


def _key(document: Mapping[str, Any]) -> str:
    """One committed write: the same id written again gets a new ``_etag``."""
    return f"{document.get('id')}|{document.get('_etag')}"


class TimerEmulator:
    """Runs the anti-entropy function every ``every_s`` seconds (the deployed schedule's stand-in)."""

    def __init__(self, function: Callable[[func.TimerRequest, func.Context], None], every_s: float) -> None:
        self.function = function
        self.every_s = every_s
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.every_s):
            try:
                self.function(TimerRequest(past_due=False), LocalContext("anti_entropy"))
            except Exception as exc:
                log(logger, logging.WARNING, "anti-entropy function failed", error=f"{type(exc).__name__}: {exc}")


# -- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runtime.azure", description="Serve the Azure Functions handlers locally (stand-in host)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind, 127.x only (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--cosmos-endpoint", default=os.environ.get("COSMOS_ENDPOINT", ""), help="local emulator URL")
    parser.add_argument("--cosmos-key", default=os.environ.get("COSMOS_KEY", ""))
    parser.add_argument("--database", default=os.environ.get("COSMOS_DATABASE", "overcast"))
    parser.add_argument("--container", default=os.environ.get("COSMOS_CONTAINER", "messages"))
    parser.add_argument("--create", action="store_true", help="create the database and container if missing")
    parser.add_argument("--route-prefix", default=os.environ.get("OVERCAST_AZURE_ROUTE_PREFIX", DEFAULT_ROUTE_PREFIX))
    parser.add_argument("--poll-s", type=float, default=0.25, help="change-feed poll interval")
    parser.add_argument("--retry-min-s", type=float, default=0.5, help="first retry delay of a failed batch")
    parser.add_argument("--retry-max-s", type=float, default=30.0, help="longest retry delay")
    parser.add_argument("--max-retries", type=int, default=10, help="retries of a failed batch; -1 retries forever")
    parser.add_argument("--no-change-feed", action="store_true", help="do not emulate the change-feed trigger")
    parser.add_argument(
        "--lease-file", type=Path, help="keep the change feed's lease here, so a restart resumes (default: in memory)"
    )
    parser.add_argument("--anti-entropy-every-s", type=float, default=0.0, help="run anti-entropy every N s (0: off)")
    args = parser.parse_args(argv)

    import handlers.azure as entrypoints
    from adapters.azure.store import ensure_container
    from core.errors import ConfigurationError, OvercastError
    from emulators.cosmos import KEY, emulator_client

    os.environ.setdefault("OVERCAST_PROVIDER", "azure")
    try:
        if not args.cosmos_endpoint:
            raise ConfigurationError("--cosmos-endpoint (or COSMOS_ENDPOINT) is required")
        client = emulator_client(args.cosmos_endpoint, args.cosmos_key or KEY, timeout_s=5.0)
        if args.create:
            container = ensure_container(client, args.database, args.container)
        else:
            container = client.get_database_client(args.database).get_container_client(args.container)
        overcast = entrypoints.build(container=container)
        entrypoints.install(overcast)
        server = AzureFunctionsHost(entrypoints.http, args.host, args.port, args.route_prefix)
    except (OvercastError, OSError, ValueError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2

    workers: list[tuple[threading.Thread, threading.Event]] = []
    if not args.no_change_feed:
        feed = ChangeFeedEmulator(
            CosmosCommitLog(container),
            entrypoints.changes,
            lease=Lease(args.lease_file),
            poll_s=args.poll_s,
            retry_min_s=args.retry_min_s,
            retry_max_s=args.retry_max_s,
            max_retries=args.max_retries,
        )
        workers.append((threading.Thread(target=feed.run, name="change-feed", daemon=True), feed.stop_event))
    if args.anti_entropy_every_s > 0:
        timer = TimerEmulator(entrypoints.anti_entropy, args.anti_entropy_every_s)
        workers.append((threading.Thread(target=timer.run, name="anti-entropy", daemon=True), timer.stop_event))

    try:
        serve_until_stopped(server, workers)
    finally:
        overcast.store.close()
    print("stopped", flush=True)
    return 0


class AzureCloud(Cloud):
    """An Azure cloud in ``runtime.mesh``: cosmosdb-server on the cloud's address; this host runs
    its own anti-entropy timer, like the Functions timer trigger."""

    kind = "azure"
    own_timer = True
    database, container = "overcast", "messages"

    def start_emulator(self) -> None:
        from emulators.cosmos import CosmosEmulator

        cosmos = CosmosEmulator(host=self.host, port=self._emulator_port(self.host))
        self.emulator, self.emulator_process = cosmos, cosmos.server
        self.store_spec = f"cosmos://{self.database}/{self.container}?endpoint={cosmos.endpoint}"
        cosmos.start()

    def kind_args(self) -> list[str]:
        args = ["--cosmos-endpoint", self.emulator.endpoint, "--cosmos-key", self.emulator.key]
        # The lease outlives the host process, as a Cosmos lease container does.
        lease = ["--lease-file", str(self.workdir / f"{self.name}-change-feed-lease.json")]
        return [*args, "--database", self.database, "--container", self.container, "--create", *lease]


if __name__ == "__main__":
    sys.exit(main())

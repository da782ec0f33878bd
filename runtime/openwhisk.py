"""A local stand-in for OpenWhisk / IBM Cloud Functions: the web action, the Cloudant changes
trigger and the alarm trigger, around the real ``handlers.openwhisk`` entrypoints.

    python -m runtime.openwhisk --host 127.0.0.6 --port 8080 \\
        --couch-url http://127.0.0.1:5984 --db overcast [--create] [--anti-entropy-every-s 60]

* HTTP: every request becomes the web action's raw-http parameters (``__ow_method`` lower-case,
  ``__ow_path``, ``__ow_headers`` lower-case, ``__ow_query``, ``__ow_body`` base64 unless the
  content type is text) and ``handlers.openwhisk.http``'s ``{statusCode, headers, body}`` becomes
  the answer — what the platform's web action gateway does.
* Changes: a poller reads the database's ``_changes`` feed (normal mode with ``since`` and
  ``include_docs=true``; not longpoll, whose timeout pouchdb-server ignores, and no
  ``_selector`` filter, which crashes it) from "now" on, and hands each batch to
  ``handlers.openwhisk.changes``. A result with ``"error"`` (a push failed) is delivered again
  with exponential backoff, without moving past it, until it succeeds or ``--max-attempts`` is
  spent (then it is logged and skipped: anti-entropy repairs it).
* Alarm: with ``--anti-entropy-every-s N``, ``handlers.openwhisk.anti_entropy`` every N seconds.

The action's settings come from the environment here (OVERCAST_* pass through; CLOUDANT_URL and
CLOUDANT_DB are set from the flags), as bound parameters do on the platform. Prints
``ready http://host:port`` once serving; SIGTERM or SIGINT stops it cleanly.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from runtime.frontdoor import Answer, FrontDoor, Incoming
from runtime.mesh import Cloud
from runtime.pump import RetryPolicy, deliver

logger = logging.getLogger("overcast.runtime.openwhisk")
MAX_BODY_BYTES = 8 * 1024 * 1024
_PLAIN = ("text/", "application/x-www-form-urlencoded")


def web_action_params(method: str, target: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The raw-http web action parameters for one HTTP request."""
    url = urlsplit(target)
    content_type = headers.get("content-type", "")
    if not body:
        encoded = ""
    elif content_type.lower().startswith(_PLAIN):
        encoded = body.decode("utf-8", errors="replace")
    else:
        encoded = base64.b64encode(body).decode("ascii")
    return {
        "__ow_method": method.lower(),
        "__ow_path": url.path or "/",
        "__ow_headers": {name.lower(): value for name, value in headers.items()},
        "__ow_query": url.query,
        "__ow_body": encoded,
    }


def response_bytes(result: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """A web action result → status, headers, body (a non-text body is base64, as the platform reads it)."""
    headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
    raw = result.get("body", "")
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if not raw:
        body = b""
    elif content_type.lower().startswith(("text/", "application/json", "application/problem+json")):
        body = str(raw).encode("utf-8")
    else:
        body = base64.b64decode(str(raw))
    return int(result.get("statusCode") or result.get("code") or 200), headers, body


def make_server(host: str, port: int, action: Callable[[dict[str, Any]], dict[str, Any]]) -> FrontDoor:
    """The web action gateway: raw-http parameters in, ``{statusCode, headers, body}`` out."""

    def answer(incoming: Incoming) -> Answer:
        started = time.monotonic()
        status, headers, payload = response_bytes(
            action(web_action_params(incoming.method, incoming.target, dict(incoming.headers), incoming.body))
        )
        headers["x-openwhisk-local-ms"] = f"{(time.monotonic() - started) * 1000:.1f}"
        return Answer(status, headers, payload)

    return FrontDoor(
        host,
        port,
        answer,
        max_body=MAX_BODY_BYTES,
        too_large=Answer(413, {"content-type": "application/json"}, b'{"error":"request entity too large"}'),
        crashed=Answer(
            502, {"content-type": "application/json"}, b'{"error":"action failed"}'
        ),  # the platform's answer
        logger=logger,
    )


class ChangesFeed:
    """Polls ``_changes`` (normal feed, ``since``) and delivers batches to the changes action with
    retries, never moving past a batch the action failed."""

    def __init__(
        self,
        client: Any,
        database: str,
        action: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        poll_s: float = 0.1,
        batch_size: int = 100,
        max_attempts: int = 50,
        backoff_s: tuple[float, float] = (0.2, 5.0),
        checkpoint: Path | None = None,
    ) -> None:
        self.client = client
        self.checkpoint = checkpoint
        self.database = database
        self.action = action
        self.poll_s = poll_s
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.delivered = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cloudant-changes", daemon=True)
        self.since = "now"

    def start(self) -> ChangesFeed:
        # Like a new trigger: only changes from now on. A trigger outlives its action's
        # containers: with a checkpoint file, a restarted runtime resumes where it stopped.
        saved = self.checkpoint.read_text().strip() if self.checkpoint and self.checkpoint.is_file() else ""
        self.since = saved or self._read_last_seq()
        self._save()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _read_last_seq(self) -> str:
        while not self._stop.is_set():
            try:
                result = self.client.post_changes(db=self.database, since="now", limit=1).get_result()
                return str(result.get("last_seq", "0"))
            except Exception as exc:
                logger.warning("cannot read the changes feed yet: %s", exc)
                self._stop.wait(1.0)
        return "0"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.client.post_changes(
                    db=self.database, since=self.since, include_docs=True, limit=self.batch_size
                ).get_result()
            except Exception as exc:  # the store is away: try again later
                logger.warning("changes feed unavailable: %s", exc)
                self._stop.wait(self.backoff_s[1])
                continue
            rows = result.get("results") or []
            if not rows:
                self.since = str(result.get("last_seq", self.since))
                self._stop.wait(self.poll_s)
                continue
            self._deliver({"results": rows, "last_seq": result.get("last_seq"), "pending": result.get("pending", 0)})
            if self._stop.is_set():
                return  # stopped mid-delivery: the batch is delivered again after a restart
            self.since = str(result.get("last_seq", self.since))
            self._save()

    def _save(self) -> None:
        if self.checkpoint is not None:
            tmp = self.checkpoint.with_suffix(".tmp")
            tmp.write_text(self.since)
            tmp.replace(self.checkpoint)

    def _deliver(self, batch: dict[str, Any]) -> None:
        """A failed activation (an ``error`` result, or a crash) is delivered again, whole, after a
        backoff, until it succeeds or ``max_attempts`` is spent (then the feed moves past it)."""

        def invoke(pending: Sequence[dict[str, Any]], _retries: int) -> Sequence[dict[str, Any]]:
            try:
                outcome = self.action(pending[0])
            except Exception as exc:  # the action crashed: a failed activation
                outcome = {"error": f"{type(exc).__name__}: {exc}"}
            if "error" in outcome:
                logger.warning("changes batch failed: %s", outcome["error"])
                return pending
            return []

        policy = RetryPolicy(self.max_attempts - 1, self.backoff_s)
        outcome = deliver([batch], invoke, policy, self._stop, logger, "changes batch")
        self.delivered += outcome.delivered
        if outcome.given_up:
            self.dropped += 1
            logger.error("changes batch dropped after %d attempts", outcome.retries)


class Alarm:
    """Fires ``action({})`` every ``every_s`` seconds (the alarm trigger's stand-in)."""

    def __init__(self, action: Callable[[dict[str, Any]], dict[str, Any]], every_s: float) -> None:
        self.action = action
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alarm", daemon=True)

    def start(self) -> Alarm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                outcome = self.action({"cron": f"every {self.every_s:g} s"})
                if "error" in outcome:
                    logger.warning("anti-entropy failed: %s", outcome["error"])
            except Exception:
                logger.exception("anti-entropy crashed")


# -- a cloud of runtime.mesh ----------------------------------------------------------------------

DATABASE = "overcast"


class OpenWhiskCloud(Cloud):
    """An OpenWhisk cloud in ``runtime.mesh``: pouchdb-server + this runtime on its own address.
    Named by the provider's spec (adapters/openwhisk/provider.py), so
    ``Mesh.start(["aws", "azure", "openwhisk"])`` joins it to the mesh by configuration."""

    kind = "openwhisk"
    own_timer = True  # the alarm trigger's stand-in: --anti-entropy-every-s

    def start_emulator(self) -> None:
        from emulators.pouchdb import PouchDBServer

        couch = PouchDBServer(host=self.host, port=self._emulator_port(self.host))
        self.emulator, self.emulator_process = couch, couch.server
        self.store_spec = f"cloudant://{DATABASE}?url={couch.url}"
        couch.start()

    def store_env(self) -> dict[str, str]:
        return {"CLOUDANT_URL": self.emulator.url, "CLOUDANT_DB": DATABASE}

    def kind_args(self) -> list[str]:
        checkpoint = self.workdir / f"{self.name}.changes-since"  # the feed position survives restarts
        return ["--couch-url", self.emulator.url, "--db", DATABASE, "--create", "--checkpoint", str(checkpoint)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.openwhisk", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--couch-url", required=True, help="CouchDB-protocol server, http://127.0.0.1:PORT")
    parser.add_argument("--db", default=DATABASE, help="database name (default overcast)")
    parser.add_argument("--create", action="store_true", help="create the database and its indexes if missing")
    parser.add_argument("--poll-s", type=float, default=0.1, help="changes feed poll interval when idle")
    parser.add_argument("--max-attempts", type=int, default=50, help="deliveries of a failing batch before skipping")
    parser.add_argument("--no-changes", action="store_true", help="serve HTTP only")
    parser.add_argument("--checkpoint", type=Path, help="file keeping the feed position across restarts")
    parser.add_argument("--anti-entropy-every-s", type=float, default=0.0, help="alarm period (0: off)")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") or not (urlsplit(args.couch_url).hostname or "").startswith("127."):
        parser.error("local runtimes bind and connect to loopback (127.x) addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)

    # This process is the action container: the handler reads its settings like bound parameters.
    os.environ["CLOUDANT_URL"] = args.couch_url
    os.environ["CLOUDANT_DB"] = args.db
    os.environ.setdefault("OVERCAST_PROVIDER", "openwhisk")

    import handlers.openwhisk as action
    from adapters.openwhisk.store import cloudant_client, ensure_indexes

    client = cloudant_client(args.couch_url)
    if args.create:
        ensure_indexes(client, args.db, create_database=True)
    server = make_server(args.host, args.port, action.http)
    feed = (
        None
        if args.no_changes
        else ChangesFeed(
            client,
            args.db,
            action.changes,
            poll_s=args.poll_s,
            max_attempts=args.max_attempts,
            checkpoint=args.checkpoint,
        ).start()
    )
    alarm = Alarm(action.anti_entropy, args.anti_entropy_every_s).start() if args.anti_entropy_every_s > 0 else None

    stopping = threading.Event()

    def stop(*_: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"ready http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    finally:
        if alarm is not None:
            alarm.stop()
        if feed is not None:
            feed.stop()
        server.server_close()
        action.install(None)
        if feed is not None:
            logger.info("stopped (%d batches delivered, %d dropped)", feed.delivered, feed.dropped)
    return 0


if __name__ == "__main__":
    sys.exit(main())

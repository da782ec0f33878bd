"""A local stand-in for Cloud Functions (2nd gen) + the Eventarc Firestore trigger.

    python -m runtime.gcp --host 127.0.0.4 --port 8080 \\
        --firestore-emulator 127.0.0.1:PORT --project demo-overcast

* HTTP: the real functions-framework app for ``main.http`` (``functions_framework.create_app``,
  the same Flask app ``functions-framework --target http`` serves), on a threaded WSGI server.
* Events: a listener (``on_snapshot``) on the ``messages`` collection group of the emulator turns
  every document change into the CloudEvent Eventarc would deliver — binary mode, type
  ``google.cloud.firestore.document.v1.written``, ``application/protobuf`` DocumentEventData with
  ``value`` and ``old_value`` — and POSTs it into the functions-framework app for
  ``main.changes`` (signature ``cloudevent``). A non-2xx answer (the function raised)
  is retried with exponential backoff, as Eventarc does with retries enabled, until it succeeds,
  ``--max-attempts`` is spent (then it is dropped and logged: anti-entropy repairs it), or the
  runtime stops. Changes that exist before start are not delivered (Eventarc neither).

OVERCAST_* variables (peers, secret, origin, ...) pass through to the handler. Prints one line
``ready http://host:port`` when serving; SIGTERM or SIGINT stops it cleanly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.mesh import Cloud
from runtime.pump import RetryPolicy, RetryQueue

ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("overcast.runtime.gcp")


@dataclass(frozen=True)
class _Event:
    headers: dict[str, str]
    body: bytes


class EventDispatcher:
    """Delivers CloudEvents to ``send(headers, body) -> status`` with Eventarc-style retries, on
    ``workers`` threads: like Eventarc, one slow or failing delivery does not hold up the rest.
    A non-2xx answer (or a raise, which is a 500) is retried after a doubling backoff from
    ``initial_backoff_s`` to ``max_backoff_s``; after ``max_attempts`` the event is dropped."""

    def __init__(
        self,
        send: Callable[[dict[str, str], bytes], int],
        *,
        max_attempts: int = 50,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        workers: int = 4,
    ) -> None:
        self.send = send
        policy = RetryPolicy(max(max_attempts - 1, 0), (initial_backoff_s, max_backoff_s))
        self._queue = RetryQueue(
            self._attempt, policy, name="eventarc-dispatch", logger=logger, label=_event_label, workers=workers
        )

    @property
    def delivered(self) -> int:
        return self._queue.delivered

    @property
    def dropped(self) -> int:
        return self._queue.dropped

    def start(self) -> EventDispatcher:
        self._queue.start()
        return self

    def submit(self, headers: dict[str, str], body: bytes) -> None:
        self._queue.submit(_Event(headers, body))

    def pending(self) -> int:
        """Deliveries not yet acknowledged (queued, waiting for a retry, or in flight)."""
        return self._queue.pending()

    def stop(self) -> None:
        self._queue.stop()

    def _attempt(self, event: _Event) -> str | None:
        try:
            status = self.send(event.headers, event.body)
        except Exception as exc:  # the app itself failed: same as a 500
            logger.warning("event delivery raised: %s", exc)
            status = 500
        return None if 200 <= status < 300 else f"{_event_label(event)} answered {status}"


def _event_label(event: _Event) -> str:
    return f"event {event.headers.get('ce-id')}"


class FirestoreTrigger:
    """Watches the ``messages`` collection group and turns each change into an Eventarc CloudEvent."""

    def __init__(self, client: Any, project: str, dispatcher: EventDispatcher, *, group: str = "messages") -> None:
        self.client = client
        self.project = project
        self.database = getattr(client, "_database", None) or "(default)"
        self.dispatcher = dispatcher
        self.group = group
        self._known: dict[str, Any] = {}  # path → last Document message seen (the next event's old_value)
        self._initial = True
        self._ready = threading.Event()
        self._watch: Any = None

    def start(self, timeout_s: float = 30.0) -> FirestoreTrigger:
        self._watch = self.client.collection_group(self.group).on_snapshot(self._on_snapshot)
        if not self._ready.wait(timeout_s):
            raise RuntimeError("the Firestore listener did not deliver its first snapshot")
        return self

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.unsubscribe()
            self._watch = None

    def _on_snapshot(self, _documents: Any, changes: Any, read_time: Any) -> None:
        try:
            self._deliver(changes, read_time)
        except Exception:  # a listener callback that raises would silently stop the watch
            logger.exception("cannot turn a Firestore change into an event")
        finally:
            self._initial = False
            self._ready.set()

    def _deliver(self, changes: Any, read_time: Any) -> None:
        from adapters.gcp.events import document, encode_event_data

        for change in changes:
            snapshot = change.document
            path = snapshot.reference.path
            name = f"projects/{self.project}/databases/{self.database}/documents/{path}"
            old = self._known.get(path)
            if change.type.name == "REMOVED":
                self._known.pop(path, None)
                new = None
            else:
                new = document(name, snapshot.to_dict() or {}, snapshot.create_time, snapshot.update_time)
                self._known[path] = new
            if self._initial:
                continue  # what existed before the trigger: Eventarc delivers no events for it
            # Eventarc sets update_mask on updates: the fields whose values changed.
            mask = _changed_fields(old, new) if new and old else None
            self.dispatcher.submit(
                cloud_event_headers(self.project, self.database, path, read_time), encode_event_data(new, old, mask)
            )


def _changed_fields(old: Any, new: Any) -> list[str]:
    changed = {k for k in new.fields if k not in old.fields or new.fields[k] != old.fields[k]}
    return sorted(changed | (set(old.fields) - set(new.fields)))


def cloud_event_headers(project: str, database: str, path: str, time_: Any = None) -> dict[str, str]:
    """Binary-mode CloudEvent headers of an Eventarc Firestore ``written`` event."""
    when = time_ if isinstance(time_, dt.datetime) else dt.datetime.now(dt.UTC)
    return {
        "content-type": "application/protobuf",
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-type": "google.cloud.firestore.document.v1.written",
        "ce-source": f"//firestore.googleapis.com/projects/{project}/databases/{database}",
        "ce-subject": f"documents/{path}",
        "ce-time": when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "ce-dataschema": "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/firestore/v1/data.proto",
        "ce-location": "local",
        "ce-project": project,
        "ce-database": database,
        "ce-namespace": "(default)",
        "ce-document": path,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runtime.gcp", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--firestore-emulator", required=True, help="host:port of the Firestore emulator")
    parser.add_argument("--project", default="demo-overcast", help="Firestore project id")
    parser.add_argument("--max-attempts", type=int, default=50, help="event delivery attempts before dropping")
    parser.add_argument("--no-events", action="store_true", help="serve HTTP only")
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") or not args.firestore_emulator.startswith("127."):
        parser.error("local runtimes bind and connect to loopback (127.x) addresses only")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the app logs every request as JSON already

    # This process is the function instance: the handler builds its client from the environment.
    os.environ["FIRESTORE_EMULATOR_HOST"] = args.firestore_emulator
    os.environ["GOOGLE_CLOUD_PROJECT"] = args.project
    os.environ.setdefault("OVERCAST_FIRESTORE_PROJECT", args.project)
    os.environ.setdefault("OVERCAST_PROVIDER", "gcp")

    # Signals first: a stop that arrives while the listener is still starting must not kill the
    # process with the default action (the drills stop runtimes as soon as they are up).
    stopping = threading.Event()
    server: Any = None

    def stop(*_: Any) -> None:
        stopping.set()
        if server is not None:
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    import functions_framework
    from werkzeug.serving import make_server

    import handlers.gcp

    source = str(ROOT / "main.py")
    http_app = functions_framework.create_app("http", source, "http")
    event_app = functions_framework.create_app("changes", source, "cloudevent")

    def send(headers: dict[str, str], body: bytes) -> int:
        # A client per delivery: the dispatcher's workers post concurrently.
        return int(event_app.test_client().post("/", headers=headers, data=body).status_code)

    dispatcher = EventDispatcher(send, max_attempts=args.max_attempts).start()
    trigger = None
    try:
        if not args.no_events:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import firestore

            client = firestore.Client(project=args.project, credentials=AnonymousCredentials())
            trigger = FirestoreTrigger(client, args.project, dispatcher).start()
        # Bind last: once the port answers, the listener is attached and events flow.
        server = make_server(args.host, args.port, http_app, threaded=True)
        if not stopping.is_set():
            print(f"ready http://{args.host}:{server.server_port}", flush=True)
            server.serve_forever()
    finally:
        if trigger is not None:
            trigger.stop()
        dispatcher.stop()
        if server is not None:
            server.server_close()
        handlers.gcp.reset()
        logger.info(
            "stopped (%d events delivered, %d dropped, %d pending)",
            dispatcher.delivered,
            dispatcher.dropped,
            dispatcher.pending(),
        )
    return 0


class GcpCloud(Cloud):
    """A Google Cloud cloud in ``runtime.mesh``: the Firestore emulator (its JVM binds 127.0.0.1
    only, so the store is not on the cloud's own address)."""

    kind = "gcp"
    scheduled_entrypoint = "handlers.gcp:anti_entropy"  # Cloud Scheduler → Pub/Sub in serverless.gcp.yml
    project = "demo-overcast"

    def start_emulator(self) -> None:
        from emulators.firestore import FirestoreEmulator

        firestore = FirestoreEmulator(project=self.project, port=self._emulator_port("127.0.0.1"))
        self.emulator, self.emulator_process = firestore, firestore.server
        self.store_spec = f"firestore://{self.project}?emulator={firestore.host_port}"
        firestore.start()

    def kind_args(self) -> list[str]:
        return ["--firestore-emulator", self.emulator.host_port, "--project", self.project]

    @classmethod
    def scheduled_invocation(cls, every_s: float) -> tuple[dict[str, Any], None]:
        """Cloud Scheduler → Pub/Sub: the message payload is ignored by the function."""
        return {"@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage", "data": "", "attributes": {}}, None

    def store_env(self) -> dict[str, str]:
        return {
            "FIRESTORE_EMULATOR_HOST": self.emulator.host_port,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "OVERCAST_FIRESTORE_PROJECT": self.project,
        }


if __name__ == "__main__":
    sys.exit(main())

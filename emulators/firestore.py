"""The official Cloud Firestore emulator, started as a bare JVM bound to loopback.

The gcloud wrapper (``gcloud emulators firestore start``) and the ``cloud_firestore_emulator``
script add nothing but a JVM flag, and the wrapper leaves the JVM behind when it is killed; so we
run ``java -cp cloud-firestore-emulator.jar ...CloudFirestore --host=127.0.0.1 --port=P`` in its
own process group (emulators.base.ServerProcess), and stopping the group stops the JVM.

    python -m emulators.firestore [--port 8086]     # serve until Ctrl-C, print the env var to set

Between tests, ``reset()`` deletes every document with the emulator's own REST endpoint
(``DELETE /emulator/v1/projects/P/databases/(default)/documents``): ~5 ms instead of a restart.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emulators.base import LOOPBACK, ServerProcess, free_port

if TYPE_CHECKING:
    from google.cloud import firestore

#: Where the Debian package google-cloud-cli-firestore-emulator puts the jar.
DEFAULT_JAR_DIR = Path("/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator")
JAR_NAME = "cloud-firestore-emulator.jar"
MAIN_CLASS = "com.google.cloud.datastore.emulator.firestore.CloudFirestore"
DEFAULT_PROJECT = "demo-overcast"  # the demo- prefix marks a project that exists only locally
INSTALL_HINT = (
    "the Cloud Firestore emulator jar is missing. Install it with "
    "`apt-get install google-cloud-cli-firestore-emulator` (Google's Cloud SDK apt repository; see docs/gcp.md) "
    "or point FIRESTORE_EMULATOR_JAR at cloud-firestore-emulator.jar"
)
_env_lock = threading.Lock()


def find_jar() -> Path | None:
    """The emulator jar: $FIRESTORE_EMULATOR_JAR, the Debian package's location, or next to a
    ``gcloud`` on PATH (tarball installs of the Cloud SDK)."""
    candidates: list[Path] = []
    if os.environ.get("FIRESTORE_EMULATOR_JAR"):
        candidates.append(Path(os.environ["FIRESTORE_EMULATOR_JAR"]))
    candidates.append(DEFAULT_JAR_DIR / JAR_NAME)
    gcloud = shutil.which("gcloud")
    if gcloud:
        sdk_root = Path(gcloud).resolve().parent.parent
        candidates.append(sdk_root / "platform" / "cloud-firestore-emulator" / JAR_NAME)
    return next((path for path in candidates if path.is_file()), None)


class FirestoreEmulator:
    """One emulator JVM. ``host_port`` is what FIRESTORE_EMULATOR_HOST must say."""

    def __init__(self, *, port: int | None = None, project: str = DEFAULT_PROJECT, jar: Path | None = None) -> None:
        self.jar = jar or find_jar()
        if self.jar is None:
            raise FileNotFoundError(INSTALL_HINT)
        java = shutil.which("java")
        if java is None:
            raise FileNotFoundError("java is not on PATH (the Firestore emulator needs Java 11+)")
        self.project = project
        self.port = port or free_port()
        argv = [
            java,
            "-Duser.language=en",  # the emulator only has English messages; the wrapper sets this too
            "-cp",
            str(self.jar),
            MAIN_CLASS,
            f"--host={LOOPBACK}",
            f"--port={self.port}",
            # The emulator's UI websocket would otherwise pick a random port; pin it on loopback too.
            f"--websocket_port={free_port()}",
        ]
        self.server = ServerProcess("firestore-emulator", argv, port=self.port, ready=self._ready, startup_timeout=60)

    @property
    def host_port(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    def env(self) -> dict[str, str]:
        """Environment for a process (functions-framework, runtime.gcp) that should use this emulator."""
        return {"FIRESTORE_EMULATOR_HOST": self.host_port, "GOOGLE_CLOUD_PROJECT": self.project}

    def start(self) -> FirestoreEmulator:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def _ready(self) -> bool:
        with urllib.request.urlopen(self.url + "/", timeout=1) as response:
            return response.status == 200

    def reset(self, database: str = "(default)") -> None:
        """Delete every document in the project's database (the emulator's own REST endpoint)."""
        url = f"{self.url}/emulator/v1/projects/{self.project}/databases/{database}/documents"
        request = urllib.request.Request(url, method="DELETE")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def client(self, database: str = "(default)") -> firestore.Client:
        """A client for this emulator, built without leaving FIRESTORE_EMULATOR_HOST set in this process."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore

        with emulator_env(self.host_port):
            return firestore.Client(project=self.project, database=database, credentials=AnonymousCredentials())

    def __enter__(self) -> FirestoreEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def emulator_env(host_port: str) -> Iterator[None]:
    """The Firestore client reads FIRESTORE_EMULATOR_HOST once, in its constructor: set it only
    for that moment, so one test process can hold clients for several emulators (or none)."""
    with _env_lock:
        previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
        os.environ["FIRESTORE_EMULATOR_HOST"] = host_port
        try:
            yield
        finally:
            if previous is None:
                del os.environ["FIRESTORE_EMULATOR_HOST"]
            else:
                os.environ["FIRESTORE_EMULATOR_HOST"] = previous


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.firestore", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    args = parser.parse_args(argv)
    try:
        emulator = FirestoreEmulator(port=args.port or None, project=args.project).start()
    except (FileNotFoundError, OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Firestore emulator on {emulator.url} (log {emulator.server.log_path})")
    print(f"export FIRESTORE_EMULATOR_HOST={emulator.host_port} GOOGLE_CLOUD_PROJECT={emulator.project}", flush=True)
    stopped = threading.Event()

    def _stop(*_: Any) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        while not stopped.wait(1):
            if emulator.server.process is None or emulator.server.process.poll() is not None:
                print("error: the emulator exited", file=sys.stderr)
                return 1
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

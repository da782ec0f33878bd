"""A local CouchDB-protocol server for the Cloudant store: npm ``pouchdb-server`` 4.2.0, in memory,
bound to 127.0.0.1.

    python -m emulators.pouchdb [--port 5984]     # serve until Ctrl-C, print the settings to use

It speaks enough of the CouchDB API for ``ibmcloudant``: documents with revisions (409 on a stale
or missing ``_rev``), 404s, Mango ``_find`` on json indexes, ``_changes`` with ``since``. Its known
deviations from Cloudant, and where each is handled (test infrastructure only; the adapter is
written for the real service):

- it writes ``config.json`` and ``log.txt`` into its working directory: the launcher runs it in a
  private temporary directory.
- ``_changes`` with ``filter=_selector`` crashes the server, and ``feed=longpoll`` ignores its
  timeout: the local runtime (runtime/openwhisk.py) polls the normal feed with ``since``.
- ``_find`` applies ``limit`` before an exclusive bound (``$gt``/``$lt``), so a page can come back
  one short: the adapter only treats an empty page as the end (right for Cloudant too).
- no partitioned databases: the adapter does not use them (docs/openwhisk.md).
- no authentication: clients use ``NoAuthAuthenticator`` for loopback URLs only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING

from emulators.base import LOOPBACK, REPO_ROOT, ServerProcess, free_port

if TYPE_CHECKING:
    from ibmcloudant.cloudant_v1 import CloudantV1

PACKAGE = "pouchdb-server"
INSTALL_HINT = f"npm package {PACKAGE} is missing: run `npm ci` (or `bash scripts/setup.sh`) in {REPO_ROOT}"


def find_binary() -> Path | None:
    binary = REPO_ROOT / "node_modules" / ".bin" / PACKAGE
    return binary if binary.exists() else None


class PouchDBServer:
    """One pouchdb-server process (in memory) on a loopback address. State dies with it."""

    def __init__(self, *, port: int | None = None, host: str = LOOPBACK) -> None:
        binary = find_binary()
        if binary is None:
            raise FileNotFoundError(INSTALL_HINT)
        if shutil.which("node") is None:
            raise FileNotFoundError("node is not on PATH (pouchdb-server needs Node 20)")
        self.host = host
        self.port = port or free_port(host)
        # It writes config.json and log.txt into its working directory: give it its own.
        self.workdir = Path(tempfile.mkdtemp(prefix="pouchdb-server-"))
        argv = [str(binary), "--in-memory", "--host", host, "--port", str(self.port), "--no-stdout-logs"]
        self.server = ServerProcess(PACKAGE, argv, host=host, port=self.port, cwd=self.workdir, ready=self._ready)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> PouchDBServer:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _ready(self) -> bool:
        with urllib.request.urlopen(self.url + "/", timeout=1) as response:
            return bool(json.loads(response.read()).get("version"))

    def client(self) -> CloudantV1:
        from adapters.openwhisk.store import cloudant_client

        return cloudant_client(self.url)

    def delete_database(self, name: str) -> None:
        request = urllib.request.Request(f"{self.url}/{name}", method="DELETE")
        try:
            with urllib.request.urlopen(request, timeout=10):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.pouchdb", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5984)
    parser.add_argument("--host", default=LOOPBACK)
    args = parser.parse_args(argv)
    if not args.host.startswith("127."):
        parser.error("local servers bind loopback (127.x) addresses only")
    try:
        server = PouchDBServer(port=args.port, host=args.host).start()
    except (FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"pouchdb-server on {server.url} (in memory)\n  CLOUDANT_URL={server.url}\nCtrl-C stops.", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

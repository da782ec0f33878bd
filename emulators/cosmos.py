"""A local Cosmos DB (NoSQL API) for tests and the local Azure host: npm ``@vercel/cosmosdb-server``
1.0.1, started by ``emulators/cosmos_server.js`` on 127.0.0.1 over HTTPS.

    python -m emulators.cosmos [--port 8081]     # serve until Ctrl-C, print the settings to use

The package's known faults and where each is handled (test infrastructure only; the production
adapter is written for the real service):

- ``connection: close`` on every answer (~72 ms/op): the launcher starts the server with
  keep-alive (~2-4 ms/op).
- reading a missing item answers 500: the launcher answers 404 NotFound, as the service does.
- an expired self-signed certificate: clients built here use ``connection_verify=False``.
- queries with ``partition_key=`` must also filter on the key in SQL: the adapter's per-channel
  queries always do (right for the real service too, so nothing to work around).
- transactional batches are not atomic: the adapter does not use batches.
- the change feed is a stub: the local host (runtime/azure.py) emulates the change-feed trigger by
  reading the container in commit order (each item's ``_ts``, stamped by this server as it commits).

The emulator accepts any account key; ``KEY`` below is a placeholder that only has to be valid
base64 (the SDK signs requests with it), not a secret.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from emulators.base import LOOPBACK, REPO_ROOT, ServerProcess, free_port

if TYPE_CHECKING:
    from azure.cosmos import CosmosClient

LAUNCHER = Path(__file__).with_name("cosmos_server.js")
PACKAGE = "@vercel/cosmosdb-server"
KEY = base64.b64encode(b"overcast-local-cosmos-emulator-key-not-a-secret").decode()
INSTALL_HINT = f"npm package {PACKAGE} is missing: run `npm ci` (or `bash scripts/setup.sh`) in {REPO_ROOT}"


def find_package() -> Path | None:
    """The package directory in the repo's node_modules (or a NODE_PATH entry)."""
    roots = [REPO_ROOT / "node_modules", *(Path(p) for p in os.environ.get("NODE_PATH", "").split(os.pathsep) if p)]
    return next((root / PACKAGE for root in roots if (root / PACKAGE / "package.json").is_file()), None)


def _unverified_tls() -> ssl.SSLContext:
    # The package's self-signed certificate expired in 2021; it only ever serves loopback.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class CosmosEmulator:
    """One cosmosdb-server process on 127.0.0.1. State lives in its memory and dies with it."""

    def __init__(
        self,
        *,
        port: int | None = None,
        host: str = LOOPBACK,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ) -> None:
        if find_package() is None:
            raise FileNotFoundError(INSTALL_HINT)
        node = shutil.which("node")
        if node is None:
            raise FileNotFoundError("node is not on PATH (cosmosdb-server needs Node 20)")
        self.host = host
        self.port = port or free_port(host)
        argv = [node, str(LAUNCHER), "--host", host, "--port", str(self.port)]
        if tls_cert and tls_key:  # a certificate the caller trusts: clients may verify TLS
            argv += ["--tls-cert", str(tls_cert), "--tls-key", str(tls_key)]
        self.server = ServerProcess("cosmosdb-server", argv, host=host, port=self.port, ready=self._ready)

    @property
    def endpoint(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def key(self) -> str:
        return KEY

    def env(self) -> dict[str, str]:
        """The handler's settings for a process that should use this emulator."""
        return {"COSMOS_ENDPOINT": self.endpoint, "COSMOS_KEY": KEY}

    def start(self) -> CosmosEmulator:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/", timeout=1, context=_unverified_tls()) as response:
                return bool(response.status)
        except urllib.error.HTTPError:  # any HTTP answer means the server is up
            return True

    def client(self, **options: Any) -> CosmosClient:
        """A client for this emulator (TLS verification off: the emulator's certificate expired)."""
        return emulator_client(self.endpoint, **options)


def emulator_client(endpoint: str, key: str = KEY, **options: Any) -> CosmosClient:
    """A CosmosClient for a local emulator endpoint, with the adapter's production bounds."""
    if not (urlsplit(endpoint).hostname or "").startswith("127."):
        raise ValueError(f"emulator clients talk to loopback only, not {endpoint}")
    import urllib3

    from adapters.azure.store import cosmos_client

    # Verification is off on purpose (expired emulator certificate): don't warn on every request.
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return cosmos_client(endpoint, key, connection_verify=False, **options)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators.cosmos", description="Serve a local Cosmos DB.")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    try:
        emulator = CosmosEmulator(port=args.port).start()
    except (FileNotFoundError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"cosmosdb-server on {emulator.endpoint} (TLS certificate is self-signed and expired)")
    print(f"  COSMOS_ENDPOINT={emulator.endpoint}\n  COSMOS_KEY={KEY}\nCtrl-C stops.", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Composition root of the embedded local provider: SQLite store + local HTTP server.

    python -m handlers.local [--host 127.0.0.1] [--port 8080] [--db .run/local.sqlite] [--workers 32]

Environment: the core settings (``python -m core.settings``) plus ``OVERCAST_SQLITE_PATH``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from adapters.http_peer import UrllibPeerTransport
from adapters.jwt_auth import authorizer_for
from adapters.local.http_server import DEFAULT_WORKERS, LocalHttpServer
from adapters.local.store import SqliteMessageStore
from core.bootstrap import Overcast, bootstrap
from core.errors import ConfigurationError
from core.settings import Settings

DEFAULT_DB = ".run/local.sqlite"


def build(db_path: str | Path | None = None, settings: Settings | None = None) -> Overcast:
    settings = settings or Settings.from_env()
    path = Path(db_path or os.environ.get("OVERCAST_SQLITE_PATH") or DEFAULT_DB)
    path.parent.mkdir(parents=True, exist_ok=True)
    return bootstrap(
        settings, SqliteMessageStore(path), UrllibPeerTransport(), authorizer=authorizer_for(settings.auth)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handlers.local", description="Serve the Overcast API locally.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--db", default=None, help=f"SQLite file (default $OVERCAST_SQLITE_PATH or {DEFAULT_DB})")
    parser.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"worker threads, each with one store connection (default {DEFAULT_WORKERS})",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 256:
        parser.error("--workers must be 1-256")
    try:
        overcast = build(args.db)
        server = LocalHttpServer(overcast.app, args.host, args.port, workers=args.workers)
    except (ConfigurationError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    print(
        f"Overcast serving on {server.url} (store {overcast.store.kind}: {args.db or DEFAULT_DB}); Ctrl-C stops",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        overcast.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

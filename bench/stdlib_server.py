"""The baseline for the local server's throughput: the standard library's threading HTTP server and
sqlite3 running the same SQL on the same schema (a file SqliteMessageStore created, so its
triggers fire too), with none of Overcast's validation, routing or logging.

    python -m bench.stdlib_server PORT DB
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from adapters.local.store import _PLACEHOLDERS, _WRITE_COLUMNS
from core.digest import entry_hash, key_leaf
from core.model import new_message_id, sort_key

_local = threading.local()
_SELECT = "SELECT channel, id, author, text, created_ms, sort_key, version, deleted, request_digest FROM messages"


def db() -> sqlite3.Connection:
    if getattr(_local, "db", None) is None:
        _local.db = sqlite3.connect(sys.argv[2], isolation_level=None, check_same_thread=False)
        _local.db.execute("PRAGMA journal_mode=WAL")
        _local.db.execute("PRAGMA synchronous=NORMAL")
        _local.db.row_factory = sqlite3.Row
    return _local.db


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no delayed-ACK stall

    def log_message(self, *args: object) -> None:
        pass

    def reply(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        channel = self.path.split("/")[2]
        data = json.loads(self.rfile.read(int(self.headers["content-length"])))
        now = time.time_ns() // 1_000_000
        message_id = new_message_id(now)
        version = f"{now:013d}-000000-local"
        row = {
            "channel": channel, "id": message_id, "author": data["author"], "text": data["text"],
            "created_ms": now, "sort_key": sort_key(now, message_id), "version": version, "deleted": 0,
            "request_digest": "", "leaf": key_leaf(channel, message_id),
            "entry_hash": entry_hash(channel, message_id, version),
        }  # fmt: skip
        db().execute(f"INSERT INTO messages ({_WRITE_COLUMNS}) VALUES ({_PLACEHOLDERS})", row)
        self.reply(201, {**row, "deleted": False})

    def do_GET(self) -> None:
        path, _, query = self.path.partition("?")
        parts = path.split("/")
        if len(parts) == 5:
            row = db().execute(f"{_SELECT} WHERE channel = ? AND id = ?", (parts[2], parts[4])).fetchone()
            self.reply(200, dict(row)) if row else self.reply(404, {"error": "not found"})
            return
        limit = int(query.partition("limit=")[2] or 20)
        rows = (
            db()
            .execute(f"{_SELECT} WHERE channel = ? ORDER BY sort_key DESC LIMIT ?", (parts[2], limit + 1))
            .fetchall()
        )
        self.reply(200, {"items": [dict(r) for r in rows[:limit]]})


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()

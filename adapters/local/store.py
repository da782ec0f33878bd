"""SqliteMessageStore: the embedded store. WAL mode for concurrent readers; conditional writes in
one statement (``INSERT ... ON CONFLICT DO UPDATE ... WHERE``), which SQLite runs atomically."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import AlreadyExists, ConfigurationError, Unavailable
from core.model import Message
from core.ports import MessageStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    channel        TEXT NOT NULL,
    id             TEXT NOT NULL,
    author         TEXT NOT NULL,
    text           TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    sort_key       TEXT NOT NULL,
    version        TEXT NOT NULL,
    deleted        INTEGER NOT NULL,
    request_digest TEXT NOT NULL,
    PRIMARY KEY (channel, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS messages_by_sort_key ON messages (channel, sort_key);
CREATE INDEX IF NOT EXISTS messages_by_version ON messages (version);
"""
_COLUMNS = "channel, id, author, text, created_ms, sort_key, version, deleted, request_digest"
_PLACEHOLDERS = ", ".join(f":{c.strip()}" for c in _COLUMNS.split(","))


class SqliteMessageStore(MessageStore):
    kind = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        if self.path == ":memory:":  # each thread's connection would see its own empty database
            raise ConfigurationError("SqliteMessageStore needs a file path; use a temporary file for tests")
        parent = Path(self.path).parent
        if not parent.is_dir():
            raise ConfigurationError(f"SQLite directory {parent} does not exist")
        with self._tx() as db:
            db.executescript(_SCHEMA)

    # A connection per thread: sqlite3 connections must not be shared across threads.
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(
                    self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise ConfigurationError(f"cannot open SQLite database {self.path}: {exc}") from exc
            db.row_factory = sqlite3.Row
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """Translate SQLite's operational failures (locked, I/O, full disk) into Unavailable."""
        try:
            yield self._db()
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"SQLite: {exc}", retry_after=1) from exc

    def _create(self, message: Message) -> None:
        with self._tx() as db:
            try:
                db.execute(f"INSERT INTO messages ({_COLUMNS}) VALUES ({_PLACEHOLDERS})", _row(message))
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(f"message {message.channel}/{message.id} exists") from exc

    def _put_if_newer(self, message: Message) -> bool:
        with self._tx() as db:
            cursor = db.execute(
                f"INSERT INTO messages ({_COLUMNS}) VALUES ({_PLACEHOLDERS}) "
                "ON CONFLICT (channel, id) DO UPDATE SET author=excluded.author, text=excluded.text, "
                "created_ms=excluded.created_ms, sort_key=excluded.sort_key, version=excluded.version, "
                "deleted=excluded.deleted, request_digest=excluded.request_digest "
                "WHERE excluded.version > messages.version",
                _row(message),
            )
            return cursor.rowcount == 1

    def _get(self, channel: str, message_id: str) -> Message | None:
        with self._tx() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE channel = ? AND id = ?", (channel, message_id)
            ).fetchone()
        return _message(row) if row else None

    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        batch = max(page_hint, 10)
        bound = before
        while True:
            with self._tx() as db:
                if bound is None:
                    rows = db.execute(
                        f"SELECT {_COLUMNS} FROM messages WHERE channel = ? ORDER BY sort_key DESC LIMIT ?",
                        (channel, batch),
                    ).fetchall()
                else:
                    rows = db.execute(
                        f"SELECT {_COLUMNS} FROM messages WHERE channel = ? AND sort_key < ? ORDER BY sort_key DESC LIMIT ?",
                        (channel, bound, batch),
                    ).fetchall()
            yield from (_message(row) for row in rows)
            if len(rows) < batch:
                return
            bound = rows[-1]["sort_key"]

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE version > ? ORDER BY version LIMIT ?", (since or "", limit)
            ).fetchall()
        return [_message(row) for row in rows]

    def _ping(self) -> None:
        with self._tx() as db:
            db.execute("SELECT count(*) FROM (SELECT 1 FROM messages LIMIT 1)").fetchone()

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()


def _row(message: Message) -> dict[str, Any]:
    record = message.to_record()
    record["deleted"] = int(record["deleted"])
    del record["origin"]
    return record


def _message(row: sqlite3.Row) -> Message:
    return Message.from_record(dict(row))

"""SqliteMessageStore: the embedded store. WAL mode for concurrent readers; conditional writes in
one statement (``INSERT ... ON CONFLICT DO UPDATE ... WHERE``), which SQLite runs atomically.

Two things keep a threaded server's requests cheap without changing what is stored or checked:
the threads of one store take turns at writing on a lock (SQLite lets one writer in at a time; a
second writer would otherwise back off in the busy handler's sleeps of 1 ms and more), and the
Messages built from rows are kept by the whole row, so a row read again — the newest page of a
channel, read by every client — is validated once, not on every read.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.digest import (
    FANOUT_BITS,
    HASH_MOD,
    LEAF_DEPTH,
    Digest,
    Entry,
    Position,
    combine,
    entry_hash,
    key_leaf,
    node_of,
)
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
# The digest tree (core.digest), kept up to date by triggers in each write's own transaction: a
# row per leaf (level 4) and per depth-2 node (level 2), so any node's digest is a sum over at
# most 256 rows, whatever the store's size. ``leaf`` and ``entry_hash`` are written with the
# record (computed in Python by core.digest); the index lists a leaf's records in tree order.
_DIGEST_TABLE = """
CREATE TABLE IF NOT EXISTS digest_nodes (
    level INTEGER NOT NULL,
    node  INTEGER NOT NULL,
    count INTEGER NOT NULL,
    hash  INTEGER NOT NULL,
    PRIMARY KEY (level, node)
) WITHOUT ROWID
"""
_DIGEST_SCHEMA = f"""
{_DIGEST_TABLE};
CREATE INDEX IF NOT EXISTS messages_by_leaf ON messages (leaf, channel, id, version);
CREATE TRIGGER IF NOT EXISTS digest_on_insert AFTER INSERT ON messages BEGIN
    INSERT INTO digest_nodes VALUES (4, NEW.leaf, 1, NEW.entry_hash)
        ON CONFLICT (level, node) DO UPDATE SET count = count + 1, hash = (hash + excluded.hash) % {HASH_MOD};
    INSERT INTO digest_nodes VALUES (2, NEW.leaf >> 8, 1, NEW.entry_hash)
        ON CONFLICT (level, node) DO UPDATE SET count = count + 1, hash = (hash + excluded.hash) % {HASH_MOD};
END;
CREATE TRIGGER IF NOT EXISTS digest_on_update AFTER UPDATE OF entry_hash ON messages BEGIN
    UPDATE digest_nodes SET hash = (hash + NEW.entry_hash - OLD.entry_hash + {HASH_MOD}) % {HASH_MOD}
        WHERE (level = 4 AND node = OLD.leaf) OR (level = 2 AND node = OLD.leaf >> 8);
END;
CREATE TRIGGER IF NOT EXISTS digest_on_delete AFTER DELETE ON messages BEGIN
    UPDATE digest_nodes SET count = count - 1, hash = (hash - OLD.entry_hash + {HASH_MOD}) % {HASH_MOD}
        WHERE (level = 4 AND node = OLD.leaf) OR (level = 2 AND node = OLD.leaf >> 8);
END;
"""
_COLUMNS = "channel, id, author, text, created_ms, sort_key, version, deleted, request_digest"
_WRITE_COLUMNS = _COLUMNS + ", leaf, entry_hash"
_PLACEHOLDERS = ", ".join(f":{c.strip()}" for c in _WRITE_COLUMNS.split(","))
_COLUMN_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))
#: Rows whose Messages are kept, and the longest author + text of a kept one (a bound on memory:
#: at most about 1024 x 4096 characters).
DECODED_ROWS = 1024
DECODED_MAX_CHARS = 4096


class SqliteMessageStore(MessageStore):
    kind = "sqlite"
    maintains_digests = True

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one writer at a time among this store's threads
        self._decoded = _DecodedRows(DECODED_ROWS, DECODED_MAX_CHARS)
        if self.path == ":memory:":  # each thread's connection would see its own empty database
            raise ConfigurationError("SqliteMessageStore needs a file path; use a temporary file for tests")
        parent = Path(self.path).parent
        if not parent.is_dir():
            raise ConfigurationError(f"SQLite directory {parent} does not exist")
        with self._tx() as db:
            db.executescript(_SCHEMA)
            _add_digest_tree(db)

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
        row = _row(message)
        with self._tx() as db, self._write_lock:
            try:
                db.execute(f"INSERT INTO messages ({_WRITE_COLUMNS}) VALUES ({_PLACEHOLDERS})", row)
            except sqlite3.IntegrityError as exc:
                raise AlreadyExists(f"message {message.channel}/{message.id} exists") from exc

    def _put_if_newer(self, message: Message) -> bool:
        row = _row(message)
        with self._tx() as db, self._write_lock:
            cursor = db.execute(
                f"INSERT INTO messages ({_WRITE_COLUMNS}) VALUES ({_PLACEHOLDERS}) "
                "ON CONFLICT (channel, id) DO UPDATE SET author=excluded.author, text=excluded.text, "
                "created_ms=excluded.created_ms, sort_key=excluded.sort_key, version=excluded.version, "
                "deleted=excluded.deleted, request_digest=excluded.request_digest, entry_hash=excluded.entry_hash "
                "WHERE excluded.version > messages.version",
                row,
            )
            return cursor.rowcount == 1

    def _get(self, channel: str, message_id: str) -> Message | None:
        with self._tx() as db:
            row = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE channel = ? AND id = ?", (channel, message_id)
            ).fetchone()
        return self._decoded.message(row) if row else None

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
            yield from map(self._decoded.message, rows)
            if len(rows) < batch:
                return
            bound = rows[-1][5]  # sort_key

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        with self._tx() as db:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE version > ? ORDER BY version LIMIT ?", (since or "", limit)
            ).fetchall()
        return [_message(row) for row in rows]  # scans of the whole store: not kept

    def _tree_digests(self, depth: int, start: int, stop: int, since: str | None) -> dict[int, Digest]:
        if since is not None:  # a window: the maintained digests cover everything, so scan it
            return super()._tree_digests(depth, start, stop, since)
        level = 2 if depth <= 2 else LEAF_DEPTH  # the maintained level each node is a sum of
        shift = FANOUT_BITS * (level - depth)
        with self._tx() as db:
            rows = db.execute(
                "SELECT node, count, hash FROM digest_nodes WHERE level = ? AND node >= ? AND node < ? AND count > 0",
                (level, start << shift, stop << shift),
            ).fetchall()
        self.items_read += len(rows)
        out: dict[int, Digest] = {}
        for node, count, total in rows:
            out[node >> shift] = combine(out.get(node >> shift, (0, 0)), (count, total))
        return out

    def _tree_entries(
        self, start: int, stop: int, after: Position | None, limit: int, since: str | None
    ) -> list[Entry]:
        where = "leaf >= ? AND leaf < ?"
        params: list[int | str] = [start, stop]
        if after is not None:
            where += " AND (leaf, channel, id) > (?, ?, ?)"
            params += list(after)
        if since is not None:
            where += " AND version > ?"
            params.append(since)
        with self._tx() as db:
            rows = db.execute(
                f"SELECT leaf, channel, id, version FROM messages INDEXED BY messages_by_leaf WHERE {where} "
                "ORDER BY leaf, channel, id LIMIT ?",
                (*params, limit),
            ).fetchall()
        self.items_read += len(rows)
        return [(leaf, channel, message_id, version) for leaf, channel, message_id, version in rows]

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
    record["leaf"] = key_leaf(message.channel, message.id)
    record["entry_hash"] = entry_hash(message.channel, message.id, record["version"])
    return record


def _add_digest_tree(db: sqlite3.Connection) -> None:
    """Create the digest tree, filling it from the records of a database made before it existed.
    Idempotent, and safe when several processes open one file at once (one transaction)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    if "entry_hash" in columns:
        db.executescript(_DIGEST_SCHEMA)
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
        if "entry_hash" not in columns:
            db.execute("ALTER TABLE messages ADD COLUMN leaf INTEGER NOT NULL DEFAULT 0")
            db.execute("ALTER TABLE messages ADD COLUMN entry_hash INTEGER NOT NULL DEFAULT 0")
            keys = db.execute("SELECT channel, id, version FROM messages").fetchall()
            db.executemany(
                "UPDATE messages SET leaf = ?, entry_hash = ? WHERE channel = ? AND id = ?",
                ((key_leaf(c, i), entry_hash(c, i, v), c, i) for c, i, v in keys),
            )
            nodes: dict[tuple[int, int], Digest] = {}
            for c, i, v in keys:
                leaf, value = key_leaf(c, i), (1, entry_hash(c, i, v))
                for level, node in ((LEAF_DEPTH, leaf), (2, node_of(leaf, 2))):
                    nodes[(level, node)] = combine(nodes.get((level, node), (0, 0)), value)
            db.execute("DROP TABLE IF EXISTS digest_nodes")
            db.execute(_DIGEST_TABLE)
            db.executemany("INSERT INTO digest_nodes VALUES (?, ?, ?, ?)", ((*k, *d) for k, d in nodes.items()))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.executescript(_DIGEST_SCHEMA)


def _message(row: tuple[Any, ...]) -> Message:
    record = dict(zip(_COLUMN_NAMES, row, strict=True))
    record["deleted"] = bool(record["deleted"])  # SQLite has no boolean type: stored as 0/1
    return Message.from_record(record)


class _DecodedRows:
    """Messages built (and so validated) from rows, kept by the whole row: a row equal in every
    column to one seen before gives the same Message, so it is not parsed and checked again. A
    row that changed in any column is another key, built afresh. Bounded: the oldest kept row
    goes first, and a row with a long author or text is not kept."""

    def __init__(self, max_rows: int, max_chars: int) -> None:
        self.max_rows = max_rows
        self.max_chars = max_chars
        self._messages: dict[tuple[Any, ...], Message] = {}
        self._lock = threading.Lock()  # writers; a lookup is one dict read, atomic

    def message(self, row: tuple[Any, ...]) -> Message:
        message = self._messages.get(row)
        if message is None:
            message = _message(row)
            if len(message.author) + len(message.text) <= self.max_chars:
                with self._lock:
                    if len(self._messages) >= self.max_rows:
                        del self._messages[next(iter(self._messages))]
                    self._messages[row] = message
        return message

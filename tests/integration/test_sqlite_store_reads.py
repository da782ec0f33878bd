"""SqliteMessageStore keeps the Messages it built from rows, by the whole row: a row changed in
any column behind its back is read and validated afresh, never served from what was kept."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from adapters.local.store import SqliteMessageStore
from core.errors import ValidationError
from core.model import Message, Version, new_message_id


def _message(text: str) -> Message:
    return Message("london", new_message_id(1_700_000_000_000), "ada", text, 1_700_000_000_000, Version(1, 0, "local"))


def test_a_row_changed_behind_the_store_is_validated_again(tmp_path: Path) -> None:
    store = SqliteMessageStore(tmp_path / "board.sqlite")
    message = _message("hello")
    store.create(message)
    assert store.get("london", message.id) == message
    assert store.list("london", 10).items == [message]
    with sqlite3.connect(tmp_path / "board.sqlite") as db:
        db.execute("UPDATE messages SET author = ? WHERE id = ?", ("a\x00b", message.id))
    with pytest.raises(ValidationError):
        store.get("london", message.id)
    with pytest.raises(ValidationError):
        store.list("london", 10)
    store.close()


def test_a_row_read_again_gives_an_equal_message(tmp_path: Path) -> None:
    store = SqliteMessageStore(tmp_path / "board.sqlite")
    message = _message("hello")
    store.create(message)
    first, second = store.get("london", message.id), store.get("london", message.id)
    assert first == second == message
    api = first.to_api()
    api["text"] = "changed by a caller"
    assert second.to_api()["text"] == "hello"  # to_api hands out copies
    store.close()


def test_threads_writing_at_once_all_write(tmp_path: Path) -> None:
    store = SqliteMessageStore(tmp_path / "board.sqlite")
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(25):
                store.create(_message(f"{n}-{i}"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(store.changes_since(None, 1000)) == 200
    store.close()

"""core.logs: the direct write used at the default level makes the formatter's line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from core import logs


@pytest.fixture
def only_ours() -> Iterator[logging.Logger]:
    """The ``overcast`` logger as a deployed function has it: configured, our handler alone."""
    top = logging.getLogger("overcast")
    saved = (top.level, top.propagate, list(top.handlers), dict(logs._static))
    top.handlers = []
    logs.configure("INFO", provider="aws", region="eu-west-1")
    yield top
    top.setLevel(saved[0])
    top.propagate = saved[1]
    top.handlers = saved[2]
    logs._static.clear()
    logs._static.update(saved[3])


def _keep_only_ours(top: logging.Logger) -> None:
    # pytest adds its capture handlers for each test phase: take them off for this one
    top.handlers = [h for h in top.handlers if isinstance(h, logs._StderrHandler)]


def test_the_direct_line_is_the_formatters_line(only_ours: logging.Logger, capsys: pytest.CaptureFixture) -> None:
    _keep_only_ours(only_ours)
    logger = logs.get_logger("http")
    assert logs._only_json_handler(logger, logging.INFO) is not None  # the direct path is taken
    fields = {"method": "GET", "status": 200, "text": "zoë", "odd": object}
    token = logs.request_id_var.set("req-1")
    try:
        logs.log(logger, logging.INFO, "request", **fields)
        record = logger.makeRecord(logger.name, logging.INFO, "f", 1, "request", (), None, extra={"fields": fields})
        expected = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.request_id_var.reset(token)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    written = json.loads(lines[0])
    assert list(written) == list(expected)
    assert {k: v for k, v in written.items() if k != "ts"} == {k: v for k, v in expected.items() if k != "ts"}
    assert written["ts"][:16] == expected["ts"][:16] and written["ts"].endswith("Z")


def test_below_the_level_nothing_is_written(only_ours: logging.Logger, capsys: pytest.CaptureFixture) -> None:
    _keep_only_ours(only_ours)
    logs.log(logs.get_logger("http"), logging.DEBUG, "noise")
    assert capsys.readouterr().err == ""


def test_another_handler_gets_the_record_through_logging(
    only_ours: logging.Logger, capsys: pytest.CaptureFixture
) -> None:
    _keep_only_ours(only_ours)
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logs.get_logger("extra")
    logger.addHandler(handler)
    try:
        assert logs._only_json_handler(logger, logging.WARNING) is None
        logs.log(logger, logging.WARNING, "both", n=1)
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in seen] == ["both"] and seen[0].fields == {"n": 1}  # type: ignore[attr-defined]
    assert json.loads(capsys.readouterr().err)["n"] == 1

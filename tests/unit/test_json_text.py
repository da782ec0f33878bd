"""core.json_text: the request path's JSON text is json.dumps' text, and fails as json.dumps does."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core import json_text

VALUES: list[Any] = [
    {"id": "01j", "text": 'Grüße \u2028 "quoted" \\ back', "n": 3, "f": 1.25, "ok": True, "none": None},
    [1, [2, [3, {"deep": []}]], {}],
    {"nan": float("nan"), "inf": float("inf"), 7: "int key", 1.5: "float key", None: "null key"},
    "just a string",
    12345678901234567890,
]


@pytest.mark.parametrize("value", VALUES)
def test_the_text_is_json_dumps_text(value: Any) -> None:
    assert json_text.compact(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert json_text.log_line(value) == json.dumps(value, ensure_ascii=False, default=str)


def test_a_value_that_holds_itself_is_refused_by_name() -> None:
    looped: dict[str, Any] = {}
    looped["self"] = [looped]
    with pytest.raises(ValueError, match="Circular reference"):
        json_text.compact(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        json_text.log_line(looped)


def test_unknown_types_fail_in_bodies_and_read_as_text_in_log_lines() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_text.compact({"when": object()})
    assert json.loads(json_text.log_line({"error": ValueError("boom"), "peers": ("aws",)})) == {
        "error": "boom",
        "peers": ["aws"],
    }


def test_the_encoder_is_reentrant_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    payloads = [{"i": i, "items": [{"n": n} for n in range(50)]} for i in range(200)]
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(json_text.compact, payloads))
    assert [json.loads(t) for t in texts] == payloads

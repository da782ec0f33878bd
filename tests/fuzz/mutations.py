"""Hypothesis strategies that turn a recorded platform event into a hostile one.

A mutation picks any node of the event's JSON tree (every key and list item, at any depth) and
replaces it with a hostile value (wrong type, huge or non-finite number, lone surrogate, control
characters, trailing newline, other scripts' digits, deep nesting, a large string), deletes it,
adds a stray key, or splices a hostile fragment into a string. A string that holds JSON (an HTTP
body) is mutated inside, too, and re-encoded with ``json.dumps``, which writes a lone surrogate as
``\\ud800`` — exactly what a client can send. One to three mutations per event.
"""

from __future__ import annotations

import copy
import json
import math
import reprlib
from typing import Any

from hypothesis import strategies as st

NASTY_STRINGS = [
    "",
    " ",
    "\ud800",
    "a\udfffb",
    "\x00",
    "nl\n",
    "london\n",
    "%0A",
    "a\r\nset-cookie: x=1",
    "\u00b2",
    "\u0661\u0662\u0663",
    "\u202e",
    "<html><body>error</body></html>",
    "NaN",
    "Infinity",
    "-1",
    "1e400",
    "9" * 30,
    "0000000000001-000001-aws\n",
    "1795319356264-000000-aws",
    "_design/x",
    "london:" + "0" * 26,
    "x" * 70_000,
]
NASTY_NUMBERS = [0, -1, 1, 2**63, -(2**63), 10**13, 10**13 - 1, 10**400, math.inf, -math.inf, math.nan, 1e308, 0.5]


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(NASTY_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(NASTY_STRINGS),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "Nd", "Zl", "Co"]), max_size=8),
)
hostile = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.dictionaries(st.text(max_size=8), scalars, max_size=4),
    st.integers(min_value=30, max_value=5000).map(nested),
)


def paths(value: Any, max_depth: int = 24) -> list[tuple[Any, ...]]:
    """Every node's path (the root is ``()``), down to ``max_depth`` (iterative: an earlier
    mutation may have nested thousands deep)."""
    found: list[tuple[Any, ...]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        prefix, node = stack.pop()
        found.append(prefix)
        if len(prefix) >= max_depth:
            continue
        if isinstance(node, dict):
            stack.extend(((*prefix, key), item) for key, item in node.items())
        elif isinstance(node, list):
            stack.extend(((*prefix, index), item) for index, item in enumerate(node))
    return found


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


def _set(root: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    _get(root, path[:-1])[path[-1]] = new
    return root


def _delete(root: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return None
    parent = _get(root, path[:-1])
    del parent[path[-1]]
    return root


@st.composite
def mutate_once(draw: st.DrawFn, event: Any) -> Any:
    nodes = paths(event)
    path = nodes[draw(st.integers(0, len(nodes) - 1))]
    current = _get(event, path)
    operation = draw(st.sampled_from(["replace", "replace", "delete", "add", "splice", "inner-json"]))
    if operation == "delete":
        return _delete(event, path)
    if operation == "add" and isinstance(current, dict):
        current[draw(st.sampled_from(["\ud800", "extra", "", "Records", "__ow_method"]))] = draw(hostile)
        return event
    if operation == "splice" and isinstance(current, str):
        at = draw(st.integers(0, len(current)))
        return _set(event, path, current[:at] + draw(st.sampled_from(NASTY_STRINGS[:13])) + current[at:])
    if operation == "inner-json" and isinstance(current, str) and current[:1] in "{[":
        try:
            inner = json.loads(current)
        except ValueError:
            inner = None
        if inner is not None:
            return _set(event, path, json.dumps(draw(mutate_once(inner))))
    return _set(event, path, draw(hostile))


class Hostile:
    """A mutated event. Its repr is bounded (``reprlib``), so hypothesis can print a failing
    example that is nested thousands deep."""

    def __init__(self, name: str, event: Any) -> None:
        self.name = name
        self.event = event

    def __repr__(self) -> str:
        shown = reprlib.Repr()
        shown.maxlevel, shown.maxstring, shown.maxother, shown.maxdict, shown.maxlist = 12, 200, 200, 30, 30
        return f"Hostile({self.name!r}, {shown.repr(self.event)})"


@st.composite
def mutated(draw: st.DrawFn, events: dict[str, Any]) -> Hostile:
    """The recorded event (by name) after 1-3 mutations."""
    name = draw(st.sampled_from(sorted(events)))
    event = copy.deepcopy(events[name])
    for _ in range(draw(st.integers(1, 3))):
        event = draw(mutate_once(event))
    return Hostile(name, event)

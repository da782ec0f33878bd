"""JSON text for the request path: ``json.JSONEncoder``'s own C encoder, built once.

``JSONEncoder.encode`` builds a new C encoder object (and a fresh dict of markers for its
circular-reference check) on every call, through two Python frames. On the request path that
is paid twice a request (the response body and the access line), after an SDK call that has
pushed all of it out of the CPU caches. ``compact`` and ``log_line`` call one C encoder, made
once per process, directly.

What they give up is the circular-reference check: they are for values this code builds
itself (a response payload, a log line's fields), which are trees. A value that holds itself
still fails cleanly: the C encoder's recursion limit raises RecursionError, and these fall back
to ``json.dumps``, which names the cycle (ValueError). An interpreter without the C encoder
(not CPython) gets ``json.dumps`` throughout: the same text, only slower.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

EncodeFunction = Callable[[Any], str]


def _encoder(*, item_separator: str, key_separator: str, default: Callable[[Any], Any] | None) -> EncodeFunction:
    """``json.dumps(value, ensure_ascii=False, separators=(item, key), default=default)``."""

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(item_separator, key_separator), default=default)

    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return dumps

    def unknown(value: Any) -> Any:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    # The arguments JSONEncoder.iterencode passes: markers (None: no cycle check), default,
    # the string encoder, indent, key and item separators, sort_keys, skipkeys, allow_nan.
    c_encode = make(
        None,
        default or unknown,
        json.encoder.encode_basestring,
        None,
        key_separator,
        item_separator,
        False,
        False,
        True,
    )

    def encode(value: Any) -> str:
        try:
            return "".join(c_encode(value, 0))
        except RecursionError:  # a value that holds itself: say so as json.dumps does
            return dumps(value)

    return encode


#: The response bodies' form: no spaces, non-ASCII kept (UTF-8 bodies).
compact: EncodeFunction = _encoder(item_separator=",", key_separator=":", default=None)

#: A structured log line: json.dumps' default separators, anything unknown as its str().
log_line: EncodeFunction = _encoder(item_separator=", ", key_separator=": ", default=str)

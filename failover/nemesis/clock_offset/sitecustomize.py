"""Clock skew for a nemesis run's local runtimes, and nothing else.

The nemesis puts this directory on a runtime's PYTHONPATH with OVERCAST_NEMESIS_CLOCK_OFFSET_MS
set; Python imports ``sitecustomize`` at start-up, and this one shifts the physical clock every
HybridLogicalClock reads by that many milliseconds (as a machine whose clock is off would). No
production code reads the variable: without this directory on the path it does nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

_OFFSET_MS = int(os.environ.get("OVERCAST_NEMESIS_CLOCK_OFFSET_MS") or 0)

if _OFFSET_MS:
    from core import model

    _init = model.HybridLogicalClock.__init__

    def _skewed_init(
        self: model.HybridLogicalClock,
        origin: str,
        now_ms: Callable[[], int] | None = None,
        max_drift_ms: int = model.HybridLogicalClock.DEFAULT_MAX_DRIFT_MS,
    ) -> None:
        clock = now_ms or (lambda: time.time_ns() // 1_000_000)
        _init(self, origin, lambda: clock() + _OFFSET_MS, max_drift_ms)

    model.HybridLogicalClock.__init__ = _skewed_init  # type: ignore[method-assign]

"""Collects and prints benchmark figures."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any


class Report:
    def __init__(self) -> None:
        self.figures: dict[str, dict[str, Any]] = {}

    def section(self, name: str) -> Section:
        return Section(self.figures.setdefault(name, {}))


class Section:
    def __init__(self, store: dict[str, Any]) -> None:
        self._store = store

    def method(self, text: str) -> None:
        """One line saying how the figures that follow were measured."""
        self._store.setdefault("_methods", []).append(text)
        print(f"   method: {text}", flush=True)

    def figure(self, name: str, value: float, unit: str = "", target: str = "") -> None:
        self._store[name] = {"value": value, "unit": unit, "target": target}
        shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
        print(f"   {name:<58} {shown:>14} {unit:<8} {('target ' + target) if target else ''}", flush=True)


def median_seconds(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def import_time(statement: str, repeat: int = 7, env: dict[str, str] | None = None) -> float:
    """Median wall time of a fresh interpreter running ``statement`` minus an empty interpreter,
    in seconds. Fresh processes, because a module imports only once per process."""

    def run(code: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", f"import time; t=time.perf_counter(); {code}; print(time.perf_counter()-t)"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        return float(out.stdout.strip().splitlines()[-1])

    run(statement)  # warm the file cache
    return statistics.median(run(statement) for _ in range(repeat))

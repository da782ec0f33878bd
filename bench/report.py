"""Collects and prints benchmark figures."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Paired:
    """Two ways of doing one request, measured in turns: median wall ms and mean client CPU ms
    per call of each (CPU time of this process only: a server in another process is not in it)."""

    wall_ours: float
    wall_base: float
    cpu_ours: float
    cpu_base: float

    @property
    def cpu_ratio(self) -> float:
        return self.cpu_ours / self.cpu_base

    @property
    def wall_ratio(self) -> float:
        return self.wall_ours / self.wall_base


def paired(ours: Callable[[], Any], base: Callable[[], Any], rounds: int, warmup: int = 10) -> Paired:
    """Run ``ours`` and ``base`` in turns, A-B then B-A, so load from other processes on a shared
    machine (and any first-or-second effect) falls on both alike. CPU is a mean because one
    call's process time is a few ticks of a coarse clock; wall is a median (outliers are load)."""
    for _ in range(warmup):
        ours()
        base()
    wall: tuple[list[float], list[float]] = ([], [])
    cpu: tuple[list[float], list[float]] = ([], [])
    for n in range(rounds):
        for side in (0, 1) if n % 2 == 0 else (1, 0):
            fn = ours if side == 0 else base
            started, started_cpu = time.perf_counter(), time.process_time()
            fn()
            cpu[side].append((time.process_time() - started_cpu) * 1000)
            wall[side].append((time.perf_counter() - started) * 1000)
    return Paired(
        statistics.median(wall[0]), statistics.median(wall[1]), statistics.mean(cpu[0]), statistics.mean(cpu[1])
    )


def report_paired(report: Section, name: str, ours: str, base: str, result: Paired, target: str = "<= 1.07") -> None:
    """The figures of one paired measurement: CPU per call of each side and their ratio (the
    target), and wall time beside it (which holds the server's share and the machine's load)."""
    report.figure(f"{name}: client CPU, {ours}", result.cpu_ours, "ms/req")
    report.figure(f"{name}: client CPU, {base}", result.cpu_base, "ms/req")
    report.figure(f"{name}: client CPU ratio", result.cpu_ratio, "x", target)
    report.figure(f"{name}: wall p50, {ours}", result.wall_ours, "ms/req")
    report.figure(f"{name}: wall p50, {base}", result.wall_base, "ms/req")
    report.figure(f"{name}: wall ratio (server included)", result.wall_ratio, "x")


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

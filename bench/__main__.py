"""Run the benchmarks and print their figures.

Each ``bench/bench_<name>.py`` defines ``run(report: Report) -> None`` and records figures with
``report.figure(...)``. Ratios are measured within one run (both sides on the same machine, one
after the other), so they mean something on a shared machine where absolute times do not.

    python -m bench            # all
    python -m bench local aws  # some
    python -m bench --json .bench/results.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

import bench
from bench.report import Report


def main(argv: list[str] | None = None) -> int:
    names = sorted(m.name[len("bench_") :] for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "only", nargs="*", choices=[[], *names], help=f"benchmarks to run (default all: {', '.join(names)})"
    )
    parser.add_argument("--json", type=Path, default=Path(".bench/results.json"), help="where to write the figures")
    args = parser.parse_args(argv)
    report = Report()
    failed = []
    for name in args.only or names:
        print(f"\n== {name} ==", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(f"bench.bench_{name}").run(report.section(name))
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
        print(f"   ({time.perf_counter() - started:.1f} s)", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report.figures, indent=2))
    print(f"\nfigures written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

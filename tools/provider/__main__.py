"""Adding a provider (docs/adding-a-provider.md).

    python -m tools.provider new NAME [--root DIR]      scaffold every place a provider touches
    python -m tools.provider check NAME [--root DIR]    readiness: exactly what is still missing
    python -m tools.provider try NAME                   scaffold NAME in a throw-away copy of the
                                                        repository and print its readiness report

``check`` exits 0 when every check is green, 1 otherwise. ``--skip conformance,packaging`` leaves
slow checks out; ``--json`` prints the report as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools.provider.readiness import ALL_CHECKS, ReadinessReport, check_provider, repo_copy
from tools.provider.scaffold import REPO_ROOT, ScaffoldError, scaffold


def _print_report(report: ReadinessReport, as_json: bool) -> None:
    print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) if as_json else report.render(), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.provider", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="scaffold a provider")
    new.add_argument("name")
    new.add_argument("--root", type=Path, default=REPO_ROOT, help="repository to write into (default: this one)")
    for command in ("check", "try"):
        sub = commands.add_parser(command, help="readiness report" if command == "check" else "scaffold in a copy")
        sub.add_argument("name")
        if command == "check":
            sub.add_argument("--root", type=Path, default=REPO_ROOT, help="repository to check (default: this one)")
        else:
            sub.add_argument("--keep", action="store_true", help="keep the copy (its path is printed)")
        sub.add_argument("--skip", default="", help=f"comma-separated checks to leave out ({', '.join(ALL_CHECKS)})")
        sub.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    if args.command == "new":
        try:
            print(scaffold(args.name, args.root).summary())
        except ScaffoldError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0

    skip = [s.strip() for s in args.skip.split(",") if s.strip()]
    unknown = sorted(set(skip) - set(ALL_CHECKS))
    if unknown:
        parser.error(f"unknown checks {unknown}; choose from {', '.join(ALL_CHECKS)}")
    if args.command == "check":
        report = check_provider(args.name, args.root, skip=skip)
        _print_report(report, args.json)
        return 0 if report.ok else 1
    with repo_copy(keep=args.keep) as copy:
        try:
            scaffolded = scaffold(args.name, copy)
        except ScaffoldError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if not args.json:
            print(scaffolded.summary().replace(str(copy), f"{copy} (a throw-away copy)"), end="\n\n", flush=True)
        report = check_provider(args.name, copy, skip=skip)
        _print_report(report, args.json)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

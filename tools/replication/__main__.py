"""python -m tools.replication {verify,repair,status} — see docs/replication.md.

    # do these stores hold identical content? (exit 0 yes, 1 no, 2 could not tell)
    python -m tools.replication verify sqlite:///tmp/a.sqlite sqlite:///tmp/b.sqlite
    python -m tools.replication verify "dynamodb://overcast-messages?region=eu-west-1" \\
        "cosmos://overcast/messages?endpoint=https://board.documents.azure.example&key_env=COSMOS_KEY"
    python -m tools.replication verify --mesh .run/mesh/mesh.json --acks acks.jsonl

    # anti-entropy by hand, as one cloud (its OVERCAST_PEERS and secrets from the environment)
    python -m tools.replication repair --store "dynamodb://overcast-messages?region=eu-west-1" --origin aws
    python -m tools.replication repair --mesh .run/mesh/mesh.json          # every cloud of a local mesh

    # replication status per peer (exit 0 ok, 1 degraded, 2 could not ask)
    python -m tools.replication status --mesh .run/mesh/mesh.json
    python -m tools.replication status --url https://aws.board.example --as azure --secret-env PAIR_SECRET
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from core.errors import OvercastError
from tools.replication.repair import load_mesh, repair_cloud, repair_mesh
from tools.replication.status import fetch_status, mesh_signer, render
from tools.replication.stores import OPENERS, open_store
from tools.replication.verify import check_acks, compare, snapshot


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.replication", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    verify = commands.add_parser("verify", help="compare 2-3 stores: counts, SHA-256 digest, first differences")
    verify.add_argument("specs", nargs="*", help=f"store specs ({', '.join(s + '://...' for s in OPENERS)})")
    verify.add_argument("--mesh", type=Path, help="verify every cloud's store of a local mesh file")
    verify.add_argument("--name", action="append", default=[], help="a display name per spec, in order")
    verify.add_argument("--show", type=int, default=10, help="how many differing records to print (default 10)")
    verify.add_argument("--acks", type=Path, help="JSON lines of acknowledged writes {channel,id,version} to check")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")

    repair = commands.add_parser("repair", help="run one anti-entropy pass by hand")
    repair.add_argument("--mesh", type=Path, help="a local mesh file: run a pass from every cloud (or --cloud)")
    repair.add_argument("--cloud", action="append", help="with --mesh: only these clouds")
    repair.add_argument("--store", help="this cloud's store spec (with --origin; peers from OVERCAST_PEERS)")
    repair.add_argument("--origin", help="this cloud's origin id (sets OVERCAST_ORIGIN)")
    repair.add_argument("--peer", action="append", help="only these peers")
    repair.add_argument("--window-s", type=int, default=0, help="compare versions of the last N s (0: everything)")
    repair.add_argument("--budget-s", type=float, default=600.0, help="stop after this long (default 600)")
    repair.add_argument("--no-pull", action="store_true", help="push only (leave the peers' newer records to them)")
    repair.add_argument("--start-leaf", type=int, default=0, help="resume a full pass at this leaf (a resume_leaf)")
    repair.add_argument(
        "--until-done", action="store_true", help="with --store: run passes, each resuming the last, until one is ok"
    )
    status = commands.add_parser("status", help="ask clouds for their replication status per peer")
    status.add_argument("--mesh", type=Path, help="a local mesh file: ask every cloud (or --cloud)")
    status.add_argument("--cloud", action="append", help="with --mesh: only these clouds")
    status.add_argument("--url", help="a cloud's base URL (with --as and --secret-env)")
    status.add_argument("--as", dest="as_peer", help="sign as this peer of the cloud (its origin id)")
    status.add_argument("--secret-env", help="the variable holding that pair's shared secret")
    status.add_argument("--json", action="store_true", help="print each status as a JSON line")
    args = parser.parse_args(argv)
    try:
        if args.command == "status":
            return _status(args, parser)
        return _verify(args) if args.command == "verify" else _repair(args, parser)
    except (OvercastError, ValueError, OSError) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2


def _verify(args: argparse.Namespace) -> int:
    specs: dict[str, str] = {}
    if args.mesh:
        specs.update({name: cloud["store"] for name, cloud in load_mesh(args.mesh)["clouds"].items()})
    for index, spec in enumerate(args.specs):
        name = args.name[index] if index < len(args.name) else f"store{index + 1}"
        specs[name] = spec
    if len(specs) < 2 and not args.acks:
        raise ValueError("give at least two stores to compare (or --acks to check one)")
    snapshots = {}
    for name, spec in specs.items():
        store = open_store(spec)
        try:
            snapshots[name] = snapshot(store)
        finally:
            store.close()
    report = compare(snapshots, args.show)
    acks = None
    if args.acks:
        lines = [json.loads(line) for line in args.acks.read_text().splitlines() if line.strip()]
        acks = {name: check_acks(records, lines) for name, records in snapshots.items()}
    if args.json:
        out = report.to_dict()
        if acks is not None:
            out["acks"] = {n: {"ok": a.ok, "missing": a.missing, "unexpected": a.unexpected} for n, a in acks.items()}
        print(json.dumps(out, indent=2, default=str))
    else:
        print(report.render())
        for name, ack in (acks or {}).items():
            print(f"{name}: {ack.render()}")
    identical = report.identical or len(snapshots) < 2
    return 0 if identical and all(a.ok for a in (acks or {}).values()) else 1


def _status(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    targets: dict[str, tuple[str, str, str]] = {}  # name → (url, sign as, secret)
    if args.mesh:
        for name, cloud in load_mesh(args.mesh)["clouds"].items():
            if not args.cloud or name in args.cloud:
                targets[name] = (cloud["url"], *mesh_signer(cloud))
    elif args.url and args.as_peer and args.secret_env:
        secret = os.environ.get(args.secret_env, "")
        if not secret:
            parser.error(f"{args.secret_env} is not set")
        targets[args.url] = (args.url, args.as_peer, secret)
    else:
        parser.error("status needs --mesh FILE, or --url URL --as PEER --secret-env VAR")
    degraded, failed = False, False
    for name, (url, origin, secret) in targets.items():
        try:
            answer = fetch_status(url, origin, secret)
        except (OSError, ValueError) as exc:
            print(f"{name}: could not ask: {exc}", file=sys.stderr)
            failed = True
            continue
        degraded |= bool(answer.get("degraded"))
        print(json.dumps({"cloud": name, **answer}) if args.json else render(name, answer))
    return 2 if failed else (1 if degraded else 0)


def _repair(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.mesh:
        reports = repair_mesh(load_mesh(args.mesh), args.cloud, window_s=args.window_s, budget_s=args.budget_s)
    elif args.store:
        env = dict(os.environ)
        if args.origin:
            env["OVERCAST_ORIGIN"] = args.origin
            env.setdefault("OVERCAST_PROVIDER", args.origin)
        report = repair_cloud(
            args.store,
            env,
            window_s=args.window_s,
            peers=args.peer,
            pull=not args.no_pull,
            budget_s=args.budget_s,
            start_leaf=args.start_leaf,
            until_done=args.until_done,
        )
        reports = {report.origin: report}
    else:
        parser.error("repair needs --mesh FILE or --store SPEC")
    for name, report in reports.items():
        print(json.dumps({"cloud": name, **report.to_dict()}))
    return 0 if all(r.ok for r in reports.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

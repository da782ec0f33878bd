"""The failover drill's command line.

    python -m failover drill [--fault inverted|http503|freeze|crash|store-down] [--fast] [--profile auth0|fast] [--out DIR]
    python -m failover live --config failover.yml [--confirm]

``drill`` runs everything locally (see docs/failover.md) and exits 0 only when every check
passes. ``live`` drives a real Route 53 set-up; without ``--confirm`` it is a dry run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from failover import config as cfgmod
from failover.faults import FAULTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m failover", description="Route 53 DNS failover drill.")
    sub = parser.add_subparsers(dest="command", required=True)

    drill = sub.add_parser("drill", help="run the local drill end to end")
    drill.add_argument(
        "--fault", choices=list(FAULTS), default="inverted", help="what happens to the primary (default inverted)"
    )
    drill.add_argument("--fast", action="store_true", help="scale Route 53 time by drill.fastScale (CI setting)")
    drill.add_argument(
        "--profile", default=None, help="failover.yml profile to run with (auth0, fast); default: the deployed values"
    )
    drill.add_argument("--out", type=Path, default=None, help="report directory (default .run/drill/)")
    drill.add_argument("--config", type=Path, default=None, help="failover configuration (default failover.yml)")
    drill.add_argument(
        "--backend", choices=("auto", "mesh", "local"), default="auto", help="which clouds to run (default auto)"
    )
    drill.add_argument(
        "--port", type=int, default=None, help="the clouds' port (default drill.port; 0 picks a free one)"
    )
    drill.add_argument("--warmup", type=float, default=None, help="seconds of load before the fault")
    drill.add_argument("--hold", type=float, default=None, help="seconds on the secondary before restoring")
    drill.add_argument("--quiet", action="store_true", help="no live progress lines, only the summary")

    live = sub.add_parser("live", help="drill a real Route 53 set-up (dry run unless --confirm)")
    live.add_argument("--config", type=Path, default=None, help="failover configuration (default failover.yml)")
    live.add_argument("--confirm", action="store_true", help="really invert the health check (always restored)")
    live.add_argument("--endpoint-url", default=None, help="Route 53 API endpoint (tests: moto server)")
    live.add_argument("--health-check-id", default=None, help="overrides live.healthCheckId")
    live.add_argument("--resolver", action="append", default=None, help="resolver host[:port] to watch (repeatable)")
    live.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait for DNS to move (default live.timeout)"
    )
    live.add_argument("--hold", type=float, default=0.0, help="seconds to stay failed over before restoring")
    live.add_argument("--rate", type=float, default=None, help="requests per second against the domain (0: none)")
    live.add_argument("--out", type=Path, default=None, help="report directory (default .run/live/)")
    args = parser.parse_args(argv)

    try:
        config = cfgmod.load(args.config)
    except cfgmod.ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    if args.command == "drill" and args.profile:
        try:
            config = cfgmod.with_profile(config, args.profile)
        except cfgmod.ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    if args.command == "drill":
        from failover.drill import DEFAULT_OUT, Drill, DrillAborted, DrillOptions

        options = DrillOptions(
            fault=args.fault,
            fast=args.fast,
            out=args.out or DEFAULT_OUT,
            backend=args.backend,
            port=args.port,
            warmup_s=args.warmup,
            hold_s=args.hold,
            progress=True,
        )
        try:
            result = Drill(config, options).run()
        except KeyboardInterrupt:
            print("\ninterrupted: every process the drill started has been stopped", file=sys.stderr)
            return 130
        except DrillAborted as exc:
            print(f"drill aborted: {exc}", file=sys.stderr)
            return 1
        return 0 if result["metrics"]["passed"] else 1

    from failover.live import LiveOptions, run_live

    return run_live(
        config,
        LiveOptions(
            confirm=args.confirm,
            endpoint_url=args.endpoint_url,
            health_check_id=args.health_check_id,
            resolvers=args.resolver,
            timeout_s=args.timeout,
            hold_s=args.hold,
            rate=args.rate,
            out=args.out,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())

"""Nemesis runs on the local mesh: real clouds, real emulators, randomized combined faults.

    python -m failover.nemesis --runs 10 --seed 1        # make nemesis RUNS=10 SEED=1

One mesh (aws + azure by default, each its own processes on its own loopback address) serves
every run; run ``i`` uses seed ``seed + i`` and its own channels, so the checker reads only its
records. Each run drives failover.nemesis.workload against the clouds' APIs with bearer tokens
from a test OIDC issuer on loopback, while the mesh nemesis injects, at random and in
combination:

* ``partition``: both link proxies drop replication requests (connection closed, no answer);
* ``delay``: the link into a cloud waits up to 1.5 s per request (batches arrive reordered);
* ``duplicate``: the link into a cloud forwards every request twice;
* ``crash``: SIGKILL a cloud's runtime; a later ``restart`` starts it with a new clock skew
  (0 or ±5 s on its hybrid logical clock, see clock_offset/sitecustomize.py);
* ``store-down``: freeze a cloud's store emulator (requests time out, /health/deep fails).

At most two faults hold at once, and one cloud is down (crashed or without its store) at a time. The run then lifts everything,
lets the streams drain, runs one anti-entropy pass from each cloud, and checks the history
against every store (failover/nemesis/checker.py). Histories, each run's report, summary.json
and convergence.png land in ``.run/nemesis/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emulators.base import REPO_ROOT
from failover.nemesis.checker import CheckReport, check, percentiles, read_final, read_history
from failover.nemesis.link import LinkProxy
from failover.nemesis.workload import Workload
from runtime.mesh import Cloud, Mesh

AUDIENCE = "overcast-nemesis"
OFFSET_VAR = "OVERCAST_NEMESIS_CLOCK_OFFSET_MS"
CLOCK_OFFSET_PATH = Path(__file__).with_name("clock_offset")
SKEWS_MS = (0, 0, 5000, -5000)
OUT = REPO_ROOT / ".run" / "nemesis"


def link_address(host: str) -> str:
    """The link proxy in front of a cloud: its address + 20 in the last octet (127.0.0.22 for aws)."""
    prefix, _, last = host.rpartition(".")
    return f"{prefix}.{int(last) + 20}"


class NemesisMesh(Mesh):
    """A mesh whose peers reach each other through link proxies, with a clock offset hook."""

    links: dict[str, LinkProxy]

    def _wire(self, env: Any) -> None:
        super()._wire(env)
        self.links = {}
        for name, cloud in self.clouds.items():
            self.links[name] = LinkProxy(link_address(cloud.host), cloud.host, cloud.port).start()
        for cloud in self.clouds.values():
            peers = json.loads(cloud.env["OVERCAST_PEERS"])
            for peer in peers:
                peer["url"] = self.links[peer["name"]].url
            cloud.env["OVERCAST_PEERS"] = json.dumps(peers)
            cloud.env["PYTHONPATH"] = str(CLOCK_OFFSET_PATH)
            cloud.env[OFFSET_VAR] = "0"

    def close(self) -> None:
        for link in getattr(self, "links", {}).values():
            with contextlib.suppress(Exception):
                link.stop()
        super().close()


class MeshNemesis:
    def __init__(self, mesh: NemesisMesh, max_faults: int = 2) -> None:
        self.mesh = mesh
        self.max_faults = max_faults
        self.active: list[tuple[str, str]] = []  # (fault, cloud)

    def act(self, rng: random.Random) -> dict[str, Any]:
        if self.active and (len(self.active) >= self.max_faults or rng.random() < 0.45):
            fault, name = self.active.pop(rng.randrange(len(self.active)))
            return self._lift(fault, name, rng)
        names = sorted(self.mesh.clouds)
        name = rng.choice(names)
        fault = rng.choice(["partition", "delay", "duplicate", "crash", "store-down"])
        down = {n for f, n in self.active if f in ("crash", "store-down")}
        # One cloud down at a time, one way: a runtime does not start while its store is frozen.
        if any(f == fault and n == name for f, n in self.active) or (fault in ("crash", "store-down") and down):
            return {"f": "noop"}
        cloud, link = self.mesh.cloud(name), self.mesh.links[name]
        detail: dict[str, Any] = {}
        if fault == "partition":
            for other in self.mesh.links.values():
                other.partitioned = True
        elif fault == "delay":
            link.max_delay_s = detail["max_delay_s"] = 1.5
        elif fault == "duplicate":
            link.duplicate = True
        elif fault == "crash":
            cloud.kill()
        elif fault == "store-down":
            cloud.stop_store()
        self.active.append((fault, name))
        return {"f": fault, "cloud": name, **detail}

    def _lift(self, fault: str, name: str, rng: random.Random) -> dict[str, Any]:
        cloud, link = self.mesh.cloud(name), self.mesh.links[name]
        detail: dict[str, Any] = {}
        if fault == "partition":
            if not any(f == "partition" for f, _ in self.active):
                for other in self.mesh.links.values():
                    other.partitioned = False
        elif fault == "delay":
            link.max_delay_s = 0.0
        elif fault == "duplicate":
            link.duplicate = False
        elif fault == "crash":
            skew = rng.choice(SKEWS_MS)
            cloud.env[OFFSET_VAR] = str(skew)
            detail["clock_offset_ms"] = skew
            cloud.start()
        elif fault == "store-down":
            cloud.start_store()
        return {"f": "lift-" + fault, "cloud": name, **detail}

    def lift(self) -> list[dict[str, Any]]:
        lifted = []
        rng = random.Random(0)
        while self.active:
            fault, name = self.active.pop()
            lifted.append(self._lift(fault, name, rng))
        for link in self.mesh.links.values():
            link.clear()
        # What went through the links this far (cumulative over a batch's runs): proof that the
        # peers' replication traffic passed the proxies the nemesis controls.
        stats = {
            n: {"requests": k.requests, "dropped": k.dropped, "duplicated": k.duplicated}
            for n, k in self.mesh.links.items()
        }
        lifted.append({"f": "link-stats", "links": stats})
        return lifted


def _deep_healthy(cloud: Cloud) -> bool:
    try:
        with urllib.request.urlopen(cloud.url + "/health/deep", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def heal(mesh: NemesisMesh, settle_s: float) -> None:
    """Every cloud up with its store, the streams given time to drain, one anti-entropy pass."""
    deadline = time.monotonic() + 60
    while not all(_deep_healthy(c) for c in mesh.clouds.values()):
        if time.monotonic() > deadline:
            raise RuntimeError("a cloud did not recover its deep health within 60 s of the heal")
        time.sleep(0.2)
    time.sleep(settle_s)
    # A pass that could not finish (a peer's answer slower than the replication timeout on a busy
    # machine) is run again: the check needs one complete pass from each cloud.
    for attempt in range(3):
        failed = {name: r for name, r in mesh.repair(window_s=0).items() if not r.ok}
        if not failed:
            return
        time.sleep(1.0 + attempt)
    raise RuntimeError(f"anti-entropy did not complete: {[r.to_dict() for r in failed.values()]}")


def snapshot(mesh: Mesh, channels: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    final: dict[str, list[dict[str, Any]]] = {}
    for name, cloud in mesh.clouds.items():
        store = cloud.open_store()
        try:
            records, since = [], None
            while True:
                page = store.changes_since(since, 1000)
                records += [m.to_record() for m in page if m.channel in channels]
                if len(page) < 1000:
                    break
                since = str(page[-1].version)
            final[name] = sorted(records, key=lambda r: (r["channel"], r["id"]))
        finally:
            store.close()
    return final


def run_once(
    mesh: NemesisMesh, seed: int, steps: int, authorization: Any, out: Path, settle_s: float = 3.0
) -> CheckReport:
    channels = (f"s{seed}-n1", f"s{seed}-n2")
    nemesis = MeshNemesis(mesh)
    workload = Workload(
        clouds=dict(mesh.clouds),
        nemesis=nemesis,
        heal=lambda: heal(mesh, settle_s),
        snapshot=lambda: snapshot(mesh, channels),
        seed=seed,
        steps=steps,
        nemesis_share=0.12,
        authorization=authorization,
        timeout=2.0,
        channels=channels,
        between=lambda: time.sleep(0.02),
    )
    events, final = workload.run()
    workload.history.write(out / f"history-{seed}.jsonl")
    (out / f"final-{seed}.json").write_text(json.dumps({"clouds": final}, sort_keys=True))
    report = check(events, final)
    (out / f"report-{seed}.json").write_text(json.dumps({"seed": seed, **report.to_dict()}, indent=2))
    return report


def run(
    clouds: Sequence[str], runs: int, seed: int, steps: int, out: Path = OUT, mesh_runs: int = 10
) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seeds = [seed + index for index in range(runs)]
    # A fresh mesh every ``mesh_runs`` runs: the heal's full pass reads the whole of each store,
    # and on moto every query page of the version index walks the whole table, so the tree route
    # of a mesh that has served many runs stops answering within the 5 s replication timeout.
    for group in (seeds[i : i + mesh_runs] for i in range(0, len(seeds), mesh_runs)):
        _run_group(clouds, group, steps, out, results, errors, started)
    summary = _summary(results, errors, clouds, steps, time.monotonic() - started)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _run_group(
    clouds: Sequence[str],
    seeds: Sequence[int],
    steps: int,
    out: Path,
    results: list[dict[str, Any]],
    errors: list[dict[str, Any]],
    started: float,
) -> None:
    """The runs of ``seeds`` on one mesh, appending to ``results`` / ``errors``."""
    from emulators.oidc import OidcIssuer

    with OidcIssuer() as issuer, NemesisMesh.start(list(clouds), env=issuer.env(AUDIENCE)) as started_mesh:
        assert isinstance(started_mesh, NemesisMesh)
        mesh = started_mesh
        tokens = issuer.token_source(AUDIENCE)
        for run_seed in seeds:
            t0 = time.monotonic()
            try:
                report = run_once(mesh, run_seed, steps, tokens, out)
            except RuntimeError as exc:  # the harness could not heal: reported, never counted as ok
                errors.append({"seed": run_seed, "error": str(exc)[:500]})
                print(f"run seed={run_seed}: ERROR {exc}", flush=True)
                continue
            results.append({"seed": run_seed, "seconds": round(time.monotonic() - t0, 1), **report.to_dict(show=5)})
            status = "ok" if report.ok else f"{len(report.anomalies)} anomalies {sorted(report.kinds())}"
            print(f"run seed={run_seed}: {status}; {report.counts}; convergence {report.convergence_s}", flush=True)
            summary = _summary(results, errors, clouds, steps, time.monotonic() - started)
            (out / "summary.json").write_text(json.dumps(summary, indent=2))  # after every run: nothing lost
            _picture(results, out / "convergence.png")


def recheck(out: Path = OUT) -> dict[str, Any]:
    """Check every run saved in ``out`` again (its history against its final state), whichever batch
    wrote it: the evidence over all seeds, judged by one checker. A run's time is its history's span."""
    results: list[dict[str, Any]] = []
    histories = sorted(out.glob("history-*.jsonl"), key=lambda p: int(p.stem.removeprefix("history-")))
    clouds: set[str] = set()
    for path in histories:
        seed = int(path.stem.removeprefix("history-"))
        final_path = out / f"final-{seed}.json"
        if not final_path.exists():  # a run cut off before its final state: no verdict
            continue
        events, final = read_history(path), read_final(final_path)
        clouds.update(final)
        report = check(events, final)
        span = max((e["time"] for e in events), default=0.0)
        results.append({"seed": seed, "seconds": round(span, 1), **report.to_dict(show=5)})
    summary = _summary(results, [], sorted(clouds), 0, sum(r["seconds"] for r in results))
    summary["steps_per_run"] = None  # batches may differ; each history says what it did
    summary["seeds"] = _seed_ranges([r["seed"] for r in results])
    (out / "summary-all.json").write_text(json.dumps(summary, indent=2))
    if results:
        _picture(results, out / "convergence-all.png")
    return summary


def _seed_ranges(seeds: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1-3, 7"``."""
    ranges: list[str] = []
    for seed in sorted(seeds):
        if ranges and seed == int(ranges[-1].split("-")[-1]) + 1:
            ranges[-1] = f"{ranges[-1].split('-')[0]}-{seed}"
        else:
            ranges.append(str(seed))
    return ", ".join(ranges)


def _summary(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], clouds: Sequence[str], steps: int, seconds: float
) -> dict[str, Any]:
    p90s = [r["convergence_s"]["p90"] for r in results if r["convergence_s"]["p90"] is not None]
    return {
        "clouds": list(clouds),
        "runs": len(results),
        "steps_per_run": steps,
        "runs_not_completed": errors,  # the heal failed: no verdict (neither ok nor an anomaly)
        "runs_with_anomalies": sum(1 for r in results if not r["ok"]),
        "anomalies": sum(r["anomalies"] for r in results),
        "acknowledged_posts": sum(r["counts"]["acknowledged_posts"] for r in results),
        "acknowledged_deletes": sum(r["counts"]["acknowledged_deletes"] for r in results),
        "indeterminate": sum(r["counts"]["indeterminate"] for r in results),
        "nemesis_events": sum(r["counts"]["nemesis_events"] for r in results),
        "converged_by_heal": sum(r["counts"]["converged_by_heal"] for r in results),
        "convergence_p90_s_across_runs": percentiles(p90s),
        "seconds": round(seconds, 1),
        "results": results,
    }


def _picture(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = [r["seed"] for r in results]
    fig, ax = plt.subplots(figsize=(max(6, len(results) * 0.25), 4))
    for label in ("p50", "p90", "max"):
        ax.plot(seeds, [r["convergence_s"][label] for r in results], marker="o", label=label)
    bad = [r["seed"] for r in results if not r["ok"]]
    if bad:
        ax.scatter(bad, [0] * len(bad), color="red", marker="x", s=80, label="anomalies")
    ax.set_xlabel("seed")
    ax.set_ylabel("convergence (s): acknowledged → visible on every cloud")
    ax.set_title(f"{len(results)} nemesis runs, {len(bad)} with anomalies")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m failover.nemesis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--steps", type=int, default=150, help="operations and nemesis actions per run")
    parser.add_argument("--clouds", nargs="+", default=["aws", "azure"])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--mesh-runs", type=int, default=10, help="runs per mesh before a fresh one (default 10)")
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="run no mesh: check every saved history-<seed>.jsonl/final-<seed>.json in --out again with this "
        "checker, over every batch that wrote there; writes summary-all.json and convergence-all.png",
    )
    args = parser.parse_args(argv)
    if args.recheck:
        summary = recheck(args.out)
        print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=2))
        return 1 if summary["anomalies"] or not summary["runs"] else 0
    signal.signal(signal.SIGTERM, _interrupt)  # stopped by a supervisor: tear the mesh down as on Ctrl-C
    summary = run(args.clouds, args.runs, args.seed, args.steps, args.out, max(1, args.mesh_runs))
    print(json.dumps({k: v for k, v in summary.items() if k != "results"}, indent=2))
    return 1 if summary["anomalies"] or summary["runs_not_completed"] else 0


if __name__ == "__main__":
    sys.exit(main())

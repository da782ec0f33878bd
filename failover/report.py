"""The drill's figures, each next to its bound: computed from the raw run, printed, saved.

Definitions (all times relative to the moment named):

- time to detect: fault injected → the primary's health check turns unhealthy (> 82% of
  checkers saw ``threshold`` consecutive failures). Bound: interval x threshold.
- all traffic on the secondary: fault injected → the start of the last request that still went
  to the primary. Bound: interval x threshold + TTL (the last client's cached answer expires).
- failed requests: attempts with no HTTP answer or a 5xx, between the fault and the failback;
  writes that were never acknowledged after every retry are counted separately.
- time to fail back: primary restored → the start of the last request still sent to the
  secondary. Bound: interval x threshold + TTL.
- replication catch-up: primary restored → every write acknowledged before the restore is on
  both clouds (the secondary's outage writes reached the primary, and the primary's unsent ones
  the secondary).
- stores converged: load stopped → both clouds list identical content (id, version, author, text);
  the time includes listing both clouds, and the first comparison's count of differing messages
  is shown beside it.
- acknowledged writes lost: a 201 was received but the message is missing on some cloud (must
  be 0). Duplicated: one Idempotency-Key produced more than one message on a cloud (must be 0).

A frozen primary accepts connections and never answers, so each probe also waits out Route 53's
connect and response timeouts: the freeze bounds add them. With its store down the primary
answers /health/deep only after its own store timeout: the store-down bounds add the response
timeout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from failover.config import TIMES

MARGIN_S = 1.0  # the acceptance margin on the bounds ("within the bound plus 1 s")


def metrics(result: dict[str, Any]) -> dict[str, Any]:
    t = result["timings"]
    marks = result["marks"]
    t_fault, t_restored = marks["fault"], marks["restored"]
    primary_addr = result["clouds"]["primary"]["address"]
    secondary_addr = result["clouds"]["secondary"]["address"]
    attempts = result["attempts"]
    # Probes of a hung endpoint wait out Route 53's timeouts before they count as failures.
    slack = {
        "freeze": t["connect_timeout_s"] + t["response_timeout_s"],
        "store-down": t["response_timeout_s"],
    }.get(result["fault"], 0.0)
    detect_bound = t["detect_bound_s"] + slack
    bound = t["bound_s"] + slack

    history = result["health_history"]
    detected = next((h["t"] for h in history if h["t"] >= t_fault and not h["healthy"]), None)
    recovered = next((h["t"] for h in history if h["t"] >= t_restored and h["healthy"]), None)
    samples = result["samples"]
    dns_moved = next((s["t"] for s in samples if s["t"] >= t_fault and s["dns_role"] == "SECONDARY"), None)
    dns_back = next((s["t"] for s in samples if s["t"] >= t_restored and s["dns_role"] == "PRIMARY"), None)

    during = [a for a in attempts if t_fault <= a["start"] < t_restored]
    to_primary = [a["start"] for a in during if a["address"] == primary_addr]
    all_moved = (max(to_primary) - t_fault) if to_primary else 0.0
    after = [a for a in attempts if a["start"] >= t_restored]
    to_secondary = [a["start"] for a in after if a["address"] == secondary_addr]
    failback = (max(to_secondary) - t_restored) if to_secondary else 0.0
    failback_end = t_restored + failback

    def failed(a: dict[str, Any]) -> bool:
        return a["status"] is None or a["status"] >= 500

    window = [a for a in attempts if t_fault <= a["start"] <= failback_end]
    failures = [a for a in window if failed(a)]
    failures_all = [a for a in attempts if failed(a)]
    writes = result["writes"]
    unacked = [w for w in writes if not w["acked"]]
    failed_reads = [a for a in window if a["kind"] != "write" and failed(a)]
    stale_reads = [a for a in attempts if a["kind"] == "read_one" and a["status"] == 404]
    labels = result.get("labels", {})
    served: dict[str, int] = {}
    for a in attempts:
        if not failed(a):  # an error body names no provider: attribute it by address
            name = a["served_by"] or labels.get(a["address"] or "", "?")
            served[name] = served.get(name, 0) + 1

    conv = result["convergence"]
    lost = sorted({m for ids in conv["lost"].values() for m in ids})
    duplicated = sorted({k for keys in conv["duplicated"].values() for k in keys})
    alive = result.get("cleanup", {}).get("alive", [])
    pids = result.get("cleanup", {}).get("pids", [])
    baseline = [a["end"] - a["scheduled"] for a in attempts if a["start"] < t_fault and not failed(a)]
    outage = [a["end"] - a["scheduled"] for a in window]

    refused_writes = [a for a in attempts if a["kind"] == "write" and a["status"] in (401, 403)]
    checks = {
        "all_on_secondary_within_bound": all_moved <= bound + MARGIN_S,
        "failback_within_bound": failback <= bound + MARGIN_S,
        "zero_lost": not lost,
        "zero_duplicated": not duplicated,
        "stores_identical": bool(conv["identical"]),
        "processes_cleaned_up": not alive,
        # Every write carried a token both clouds accepted: none refused with 401/403.
        "writes_authenticated": not refused_writes,
        "secondary_served_traffic": any(a["address"] == secondary_addr and not failed(a) for a in during),
    }
    return {
        "bound_s": bound,
        "detect_bound_s": detect_bound,
        "margin_s": MARGIN_S,
        "detect_s": None if detected is None else detected - t_fault,
        "dns_switch_s": None if dns_moved is None else dns_moved - t_fault,
        "all_on_secondary_s": all_moved,
        "recover_detect_s": None if recovered is None else recovered - t_restored,
        "dns_back_s": None if dns_back is None else dns_back - t_restored,
        "failback_s": failback,
        "error_window_s": (max(a["start"] for a in failures) - min(a["start"] for a in failures)) if failures else 0.0,
        "requests": len(attempts),
        "requests_in_window": len(window),
        "failed_requests": len(failures),
        "failed_requests_total": len(failures_all),
        "writes": len(writes),
        "writes_acked": sum(1 for w in writes if w["acked"]),
        "writes_unacknowledged": len(unacked),
        "writes_refused_auth": len(refused_writes),
        "failed_operations": len(failed_reads)
        + sum(1 for w in unacked if t_fault <= _first_start(w, attempts) <= failback_end),
        "stale_reads": len(stale_reads),
        "served_by": served,
        "latency_p50_baseline_s": _quantile(baseline, 0.5),
        "latency_p99_outage_s": _quantile(outage, 0.99),
        "convergence_s": conv["seconds"],
        "catch_up_s": conv.get("catch_up", {}).get("seconds"),
        "differences_at_load_end": conv["differences_at_load_end"],
        "lost": len(lost),
        "lost_ids": lost[:20],
        "duplicated": len(duplicated),
        "duplicated_keys": duplicated[:20],
        "processes": len(pids),
        "processes_alive": alive,
        "delivered_by_streams": (result.get("replication") or {}).get("delivered_by_streams"),
        "repaired_by_anti_entropy": (result.get("replication") or {}).get("repaired_by_anti_entropy"),
        "replication_note": (result.get("replication") or {}).get("explanation")
        or (result.get("replication") or {}).get("error", ""),
        "checks": checks,
        "passed": all(checks.values()),
    }


def _first_start(write: dict[str, Any], attempts: list[dict[str, Any]]) -> float:
    return min((a["start"] for a in attempts if a["op"] == write["op"]), default=-1.0)


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def write(result: dict[str, Any], out: Path, picture: bool = True) -> dict[str, Any]:
    result["metrics"] = metrics(result)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(result, indent=1, default=str))
    result["files"] = {"json": str(out / "report.json")}
    if picture:
        from failover.timeline import draw

        draw(result, out / "timeline.png")
        result["files"]["picture"] = str(out / "timeline.png")
    return result


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def render(result: dict[str, Any]) -> str:
    m = result.get("metrics") or metrics(result)
    t = result["timings"]
    c = m["checks"]
    primary = result["clouds"]["primary"]["name"]
    secondary = result["clouds"]["secondary"]["name"]
    mode = "fast (time scale {:g})".format(t["scale"]) if result["mode"] == "fast" else "real Route 53 timings"
    ok = lambda flag: "ok" if flag else "FAIL"  # noqa: E731
    bound = f"≤ {m['bound_s']:g} s +{m['margin_s']:g}"
    rows = [
        ("time to detect (health check unhealthy)", _s(m["detect_s"]), f"≤ {m['detect_bound_s']:g} s", ""),
        ("DNS answers the secondary", _s(m["dns_switch_s"]), "", ""),
        (
            f"all traffic on the secondary ({secondary})",
            _s(m["all_on_secondary_s"]),
            bound,
            ok(c["all_on_secondary_within_bound"]),
        ),
        (
            "failed requests, retries included (fault → failback)",
            f"{m['failed_requests']} of {m['requests_in_window']}",
            "",
            "",
        ),
        ("failed operations after retries (reads + writes)", str(m["failed_operations"]), "", ""),
        (
            "failed requests outside the outage (before/after)",
            str(m["failed_requests_total"] - m["failed_requests"]),
            "",
            "",
        ),
        ("writes never acknowledged (client gave up)", str(m["writes_unacknowledged"]), "", ""),
        ("stale reads (404 before replication)", str(m["stale_reads"]), "", ""),
        ("p99 latency fault → failback", _s(m["latency_p99_outage_s"]), "", ""),
        ("primary healthy again after restore", _s(m["recover_detect_s"]), "", ""),
        (f"time to fail back (all traffic on {primary})", _s(m["failback_s"]), bound, ok(c["failback_within_bound"])),
        ("replication catch-up after the restore", _s(m["catch_up_s"]), "", ""),
        (
            "stores converged after the load stopped",
            _s(m["convergence_s"]),
            f"{m['differences_at_load_end']} differed" if m["differences_at_load_end"] is not None else "",
            ok(c["stores_identical"]),
        ),
        ("acknowledged writes lost", f"{m['lost']} of {m['writes_acked']}", "must be 0", ok(c["zero_lost"])),
        ("acknowledged writes duplicated", str(m["duplicated"]), "must be 0", ok(c["zero_duplicated"])),
        (
            "writes refused as unauthenticated",
            str(m.get("writes_refused_auth", 0)),
            "must be 0",
            ok(c.get("writes_authenticated", True)),
        ),
        ("stores identical after failback", "yes" if c["stores_identical"] else "NO", "", ok(c["stores_identical"])),
        ("delivered by streams (records applied from peers)", _n(m.get("delivered_by_streams")), "", ""),
        (
            "repaired by anti-entropy",
            _n(m.get("repaired_by_anti_entropy")),
            "0 or explained",
            "" if not m.get("repaired_by_anti_entropy") else "see note",
        ),
        (
            "processes left running",
            f"{len(m['processes_alive'])} of {m['processes']}",
            "must be 0",
            ok(c["processes_cleaned_up"]),
        ),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [
        "",
        f"Failover drill: fault {result['fault']} — {result['fault_description']}",
        f"{mode}: interval {t['interval_s']:g} s {TIMES} threshold {t['failure_threshold']} + TTL {t['ttl_s']} s"
        f" = bound {t['bound_s']:g} s; {t['checkers']} checkers, healthy while > 18% say so",
        f"clouds: {primary} (primary) and {secondary} (secondary), backend {result['backend']}"
        + ("" if result.get("replicating", True) else " — NO REPLICATION (local servers only)"),
        f"requests: {m['requests']} ({', '.join(f'{k} {v}' for k, v in sorted(m['served_by'].items()))});"
        f" writes {m['writes']}, acknowledged {m['writes_acked']}",
        "",
        f"  {'measure':<{width}}  {'value':>12}  {'bound':<12}",
    ]
    for name, value, limit, verdict in rows:
        lines.append(f"  {name:<{width}}  {value:>12}  {limit:<12}  {verdict}")
    if m.get("replication_note"):
        lines.append(f"  note: {m['replication_note']}")
    sdk = result.get("sdk")
    if sdk:
        lines += [
            "",
            f"  SDK clients beside the DNS-only ones above (overcast_client: both endpoints known; {sdk['clients']} clients):",
            f"    failed operations window {sdk['failed_window_s']:.2f} s, failed after retries {sdk['failed_after_retries']}"
            f" of {sdk['operations']}, all moved {_s(sdk['moved_s'])} after the fault, back {_s(sdk['back_s'])} after the restore",
        ]
    lines.append("")
    lines.append(f"RESULT: {'PASS' if m['passed'] else 'FAIL (' + ', '.join(k for k, v in c.items() if not v) + ')'}")
    files = result.get("files", {})
    if files:
        lines.append("files: " + ", ".join(files.values()))
    return "\n".join(lines)


def _n(value: int | None) -> str:
    return "n/a" if value is None else str(value)

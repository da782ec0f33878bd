"""The drill's timeline picture: what happened, readable at a glance.

Four panels on one time axis (seconds since the drill started):

1. requests per second by the cloud that served them, failed requests in red on top;
2. latency of every request (from its scheduled time: open loop), failures marked;
3. the primary's health check: how many checkers say healthy, the 18% line, and its status;
4. the DNS answer for the failover name.

Vertical lines mark the fault, detection, the last request to the primary, the restore and the
failback; the shaded span is the bound (interval x threshold + TTL) after the fault.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from adapters.registry import providers

#: Each provider's colour comes from its spec (adapters/<name>/provider.py); "error" marks failures.
COLOURS = {**{name: spec.colour for name, spec in providers().items()}, "error": "#d62728"}


def _colour(name: str) -> str:
    return COLOURS.get(name, "#9467bd")


def draw(result: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    m = result["metrics"]
    t = result["timings"]
    marks = result["marks"]
    attempts = result["attempts"]
    primary = result["clouds"]["primary"]["name"]
    secondary = result["clouds"]["secondary"]["name"]
    end = max([marks["load_end"]] + [a["end"] for a in attempts]) + 1
    bucket = 1.0 if t["scale"] >= 1 else 0.5
    labels = result.get("labels", {})

    fig, axes = plt.subplots(
        4,
        1,
        figsize=(13, 9.5),
        sharex=True,
        gridspec_kw={"height_ratios": [3.2, 1.6, 1.6, 0.7]},
        constrained_layout=True,
    )
    ax_rps, ax_lat, ax_hc, ax_dns = axes

    # 1. requests per second by serving cloud, errors stacked on top
    buckets = math.ceil(end / bucket) + 1
    xs = [i * bucket for i in range(buckets)]
    series: dict[str, list[float]] = {}
    errors = [0.0] * buckets
    for a in attempts:
        i = min(buckets - 1, int(a["start"] / bucket))
        if a["status"] is None or a["status"] >= 500:
            errors[i] += 1 / bucket
        else:
            name = a["served_by"] or labels.get(a["address"] or "", "?")
            series.setdefault(name, [0.0] * buckets)[i] += 1 / bucket
    bottom = [0.0] * buckets
    for name in [primary, secondary, *sorted(set(series) - {primary, secondary})]:
        if name not in series:
            continue
        ax_rps.bar(
            xs, series[name], width=bucket, bottom=bottom, align="edge", color=_colour(name), label=f"served by {name}"
        )
        bottom = [b + v for b, v in zip(bottom, series[name], strict=True)]
    ax_rps.bar(
        xs,
        errors,
        width=bucket,
        bottom=bottom,
        align="edge",
        color=COLOURS["error"],
        label="failed (timeout, refused, 5xx)",
    )
    ax_rps.set_ylabel("requests / s")
    ax_rps.legend(loc="lower left", ncols=4, fontsize=9, framealpha=0.9)
    ax_rps.set_ylim(0, max(bottom[i] + errors[i] for i in range(buckets)) * 1.6 + 1)

    # 2. latency
    ok_x = [a["start"] for a in attempts if a["status"] is not None and a["status"] < 500]
    ok_y = [max(1e-3, a["end"] - a["scheduled"]) for a in attempts if a["status"] is not None and a["status"] < 500]
    ok_c = [_colour(a["served_by"] or "?") for a in attempts if a["status"] is not None and a["status"] < 500]
    bad = [a for a in attempts if a["status"] is None or a["status"] >= 500]
    ax_lat.scatter(ok_x, ok_y, s=4, c=ok_c, alpha=0.6, linewidths=0)
    ax_lat.scatter(
        [a["start"] for a in bad],
        [max(1e-3, a["end"] - a["scheduled"]) for a in bad],
        s=10,
        c=COLOURS["error"],
        marker="x",
        linewidths=0.8,
    )
    ax_lat.set_yscale("log")
    ax_lat.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 1000:g} ms" if v < 1 else f"{v:g} s"))
    ax_lat.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax_lat.set_ylabel("latency\n(from schedule)")

    # 3. health check: healthy checkers over time
    history = result["health_history"]
    hx = [h["t"] for h in history] + [end]
    hy = [h["healthy_checkers"] for h in history] + [history[-1]["healthy_checkers"] if history else 0]
    checkers = t["checkers"]
    ax_hc.step(hx, hy, where="post", color="#333333", linewidth=1.5, label="checkers saying healthy")
    ax_hc.axhline(checkers * 0.18, color="#999999", linestyle=":", linewidth=1)
    ax_hc.text(0.2, checkers * 0.18 + 0.2, "18%", fontsize=8, color="#666666")
    for start, stop, healthy in _spans([(h["t"], h["healthy"]) for h in history], end):
        ax_hc.axvspan(start, stop, color="#2ca02c" if healthy else COLOURS["error"], alpha=0.12, linewidth=0)
    inverted = _spans([(h["t"], h["inverted"]) for h in history], end)
    for start, stop, flag in inverted:
        if flag:
            ax_hc.annotate(
                "",
                xy=(stop, checkers + 0.6),
                xytext=(start, checkers + 0.6),
                arrowprops={"arrowstyle": "<->", "color": "#555555"},
            )
            ax_hc.text((start + stop) / 2, checkers + 0.9, "Inverted=true", ha="center", fontsize=8)
    ax_hc.set_ylim(-0.3, checkers + 1.8)
    ax_hc.set_ylabel(f"primary check\n(of {checkers})")
    ax_hc.legend(
        handles=[
            Patch(color="#2ca02c", alpha=0.3, label="status healthy"),
            Patch(color=COLOURS["error"], alpha=0.3, label="status unhealthy"),
        ],
        loc="lower left",
        fontsize=8,
        ncols=2,
    )

    # 4. DNS answer
    roles = {"PRIMARY": primary, "SECONDARY": secondary}
    for start, stop, role in _spans([(s["t"], s["dns_role"]) for s in result["samples"]], end):
        name = roles.get(role, "")
        ax_dns.axvspan(start, stop, color=_colour(name) if name else "#cccccc", alpha=0.85, linewidth=0)
        if stop - start > end * 0.04:
            ax_dns.text(
                (start + stop) / 2,
                0.5,
                f"{role} → {name}",
                ha="center",
                va="center",
                fontsize=9,
                color="white",
                weight="bold",
            )
    ax_dns.set_yticks([])
    ax_dns.set_ylabel("DNS answer")
    ax_dns.set_xlabel("seconds since the drill started")
    ax_dns.set_xlim(0, end)

    # marks on every panel
    t_fault, t_restored = marks["fault"], marks["restored"]
    lines = [(t_fault, "fault", "#000000")]
    if m["detect_s"] is not None:
        lines.append((t_fault + m["detect_s"], "detected", "#555555"))
    lines.append((t_fault + m["all_on_secondary_s"], f"all on {secondary}", _colour(secondary)))
    lines.append((t_restored, "restored", "#000000"))
    lines.append((t_restored + m["failback_s"], f"all on {primary}", _colour(primary)))
    for ax in axes:
        ax.axvspan(t_fault, t_fault + m["bound_s"], color="#bbbbbb", alpha=0.12, linewidth=0)
        for x, _, colour in lines:
            ax.axvline(x, color=colour, linestyle="--", linewidth=1)
        ax.grid(axis="x", alpha=0.3)
    # labels of the marks: horizontal, stacked when marks are close together
    placed: list[tuple[float, int]] = []
    for x, label, colour in sorted(lines):
        level = 0
        while any(abs(x - px) < end * 0.09 and pl == level for px, pl in placed):
            level += 1
        placed.append((x, level))
        ax_rps.annotate(
            label,
            xy=(x, 1.0 - 0.075 * level),
            xycoords=("data", "axes fraction"),
            xytext=(3, -3),
            textcoords="offset points",
            va="top",
            fontsize=8,
            color=colour,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
        )
    ax_rps.annotate(
        f"bound {m['bound_s']:g} s after the fault",
        xy=(t_fault + m["bound_s"], 0.62),
        xycoords=("data", "axes fraction"),
        xytext=(3, 0),
        textcoords="offset points",
        fontsize=8,
        color="#555555",
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
    )

    verdict = "PASS" if m["passed"] else "FAIL"
    fig.suptitle(
        f"Failover drill ({result['fault']}, {'time scale ' + format(t['scale'], 'g') if result['mode'] == 'fast' else 'real timings'}): "
        f"detected {_fmt(m['detect_s'])}, all traffic on {secondary} after {_fmt(m['all_on_secondary_s'])} (bound {m['bound_s']:g} s)\n"
        f"failed attempts {m['failed_requests']} (operations {m['failed_operations']}), back on {primary} after {_fmt(m['failback_s'])}, "
        f"lost {m['lost']}, duplicated {m['duplicated']} — {verdict}",
        fontsize=11,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _spans(points: list[tuple[float, Any]], end: float) -> list[tuple[float, float, Any]]:
    """Consecutive runs of equal values as (start, stop, value)."""
    spans: list[tuple[float, float, Any]] = []
    for i, (t, value) in enumerate(points):
        stop = points[i + 1][0] if i + 1 < len(points) else end
        if spans and spans[-1][2] == value:
            spans[-1] = (spans[-1][0], stop, value)
        else:
            spans.append((t, stop, value))
    return spans

"""Ask clouds for their replication status (``GET /replication/status``, signed as a peer).

The route takes only peers' signatures, so the tool signs as one of the cloud's peers with that
pair's secret: from a local mesh file (every cloud's peers and secrets), or ``--url`` with
``--as`` (the peer's origin id) and the secret in an environment variable.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from core.replication import STATUS_PATH, signed_headers


def fetch_status(url: str, origin: str, secret: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """One signed status read; raises OSError (unreachable) or ValueError (refused, not JSON)."""
    headers = signed_headers(origin, secret, int(time.time()), b"")
    request = urllib.request.Request(url.rstrip("/") + STATUS_PATH, headers=headers, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ValueError(f"{url}: HTTP {exc.code} {exc.read()[:200]!r}") from exc
    if not isinstance(answer, dict):
        raise ValueError(f"{url}: the status is not a JSON object")
    return answer


def mesh_signer(cloud: Mapping[str, Any]) -> tuple[str, str]:
    """(peer origin, pair secret) to sign a status read to a mesh cloud: its first peer's."""
    env = cloud["env"]
    peers = json.loads(env.get("OVERCAST_PEERS", "[]"))
    if not peers:
        raise ValueError("the cloud has no peers, so nobody may read its status")
    return str(peers[0]["name"]), str(env[peers[0]["secret_env"]])


def render(name: str, status: Mapping[str, Any]) -> str:
    """A few lines per cloud: degraded or ok, then one line per peer."""
    state = "DEGRADED" if status.get("degraded") else "ok"
    lines = [f"{name}: {state}" + "".join(f"\n  ! {reason}" for reason in status.get("reasons", []))]
    now_ms = time.time_ns() // 1_000_000
    for peer in status.get("peers", []):
        lag = peer.get("lag_ms") or {}
        anti_entropy = peer.get("anti_entropy") or {}
        lines.append(
            f"  {peer['peer']:<12} push {_ago(peer.get('last_push_ok_ms'), now_ms)}"
            f"  pull {_ago(peer.get('last_pull_ok_ms'), now_ms)}"
            f"  received {_ago(peer.get('last_received_ms'), now_ms)}"
            f"  pending {peer.get('pending', 0)}  failed {peer.get('failed_pushes', 0)}"
            f"  clock {_offset(peer.get('clock_offset_s'))}"
            f"  lag p50/p99 {_ms(lag.get('p50'))}/{_ms(lag.get('p99'))}"
            f"  anti-entropy {_anti_entropy(anti_entropy)}"
        )
    return "\n".join(lines)


def _ago(at_ms: int | None, now_ms: int) -> str:
    return "never" if at_ms is None else f"{max(0, now_ms - at_ms) / 1000:.0f}s ago"


def _offset(offset_s: int | None) -> str:
    return "?" if offset_s is None else f"{offset_s:+d}s"


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value}ms"


def _anti_entropy(result: Mapping[str, Any]) -> str:
    if not result:
        return "none yet"
    return ("ok" if result.get("ok") else "FAILED") + f" (pushed {result.get('pushed')}, pulled {result.get('pulled')})"

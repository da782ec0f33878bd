"""Anti-entropy by hand: build a cloud's Overcast around its store and run one pass.

The operator has the cloud's store credentials and its replication settings (``OVERCAST_PEERS``
and the pair secrets, as the cloud's functions get them); the pass then talks to every peer's
signed ``/replication/digest``, ``/replication/fetch`` and ``/replication/batch`` like the
scheduled function does. ``window_s=0`` compares everything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.anti_entropy import AntiEntropyReport, run
from core.bootstrap import bootstrap
from core.settings import Settings
from tools.replication.stores import open_store


def repair_cloud(
    store_spec: str,
    environ: Mapping[str, str],
    *,
    window_s: int = 0,
    peers: list[str] | None = None,
    pull: bool = True,
    budget_s: float = 600.0,
    start_leaf: int = 0,
    until_done: bool = False,
    max_passes: int = 1000,
) -> AntiEntropyReport:
    """One pass (from ``start_leaf``); with ``until_done``, passes until one is ``ok``, each
    resuming where the previous one stopped, while each still repairs or gets further."""
    from adapters.http_peer import UrllibPeerTransport

    store = open_store(store_spec)
    try:
        overcast = bootstrap(Settings.from_env(environ), store, UrllibPeerTransport())
        report = run(overcast, window_s=window_s, peers=peers, pull=pull, budget_s=budget_s, start_leaf=start_leaf)
        for _ in range(max_passes - 1):
            if not until_done or report.ok or any(p.errors for p in report.peers):
                break
            resume = min((p.resume_leaf for p in report.peers if p.resume_leaf is not None), default=None)
            if resume is None:
                break
            report = run(overcast, window_s=window_s, peers=peers, pull=pull, budget_s=budget_s, start_leaf=resume)
        return report
    finally:
        store.close()


def load_mesh(path: str | Path) -> dict[str, Any]:
    """A mesh file written by ``runtime.mesh`` (clouds with url, store spec and environment)."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("clouds"), dict):
        raise ValueError(f"{path}: not a mesh file (expected {{'clouds': {{name: ...}}}})")
    return data


def repair_mesh(
    mesh: Mapping[str, Any], clouds: list[str] | None = None, *, window_s: int = 0, budget_s: float = 600.0
) -> dict[str, AntiEntropyReport]:
    """One pass from each named cloud (default all) in order; one round converges the mesh."""
    reports = {}
    for name, cloud in mesh["clouds"].items():
        if clouds and name not in clouds:
            continue
        env = {**os.environ, **cloud["env"]}
        reports[name] = repair_cloud(cloud["store"], env, window_s=window_s, budget_s=budget_s)
    return reports

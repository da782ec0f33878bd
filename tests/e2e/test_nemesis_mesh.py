"""A short nemesis run on the local mesh (aws + azure, real emulators, real runtimes): seeded
client operations under combined faults (link partitions, delays and duplicates, crash and
restart with clock skew, store outage), healed, one anti-entropy pass, then the checker.
``make nemesis RUNS=N`` runs many; this is the one CI runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from failover.nemesis.checker import read_final, read_history
from failover.nemesis.run import run
from tests.e2e.test_replication_mesh import _missing_prerequisite

pytestmark = [pytest.mark.emulator("moto"), pytest.mark.emulator("cosmos"), pytest.mark.slow]


def test_a_seeded_nemesis_run_on_the_mesh_has_no_anomaly(tmp_path: Path) -> None:
    reason = _missing_prerequisite()
    if reason:
        pytest.fail(f"nemesis e2e cannot run: {reason}")
    summary = run(["aws", "azure"], runs=1, seed=7, steps=50, out=tmp_path)
    result = summary["results"][0]
    assert summary["anomalies"] == 0, json.dumps(result["examples"], indent=2)
    assert result["counts"]["acknowledged_posts"] > 5
    history = read_history(tmp_path / "history-7.jsonl")
    faults = {e["f"] for e in history if e["process"] == "nemesis"} - {"noop", "lift-all", "link-stats"}
    assert faults, "the nemesis injected nothing"
    assert any(e["f"] == "healed" for e in history)
    # Replication between the clouds went through the link proxies the nemesis controls.
    links = next(e["links"] for e in history if e["f"] == "link-stats")
    assert all(link["requests"] > 0 for link in links.values()), links
    final = read_final(tmp_path / "final-7.json")
    assert set(final) == {"aws", "azure"} and final["aws"] == final["azure"]
    assert (tmp_path / "summary.json").exists() and (tmp_path / "convergence.png").stat().st_size > 0

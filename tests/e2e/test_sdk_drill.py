"""The SDK clients' drill on the local mesh: overcast_client fleets against AWS (primary) and
Azure (secondary) while the primary crashes and comes back."""

from __future__ import annotations

from pathlib import Path

import pytest

from failover.sdk_drill import run
from tests.e2e.test_replication_mesh import _missing_prerequisite

pytestmark = [pytest.mark.emulator("moto"), pytest.mark.emulator("cosmos"), pytest.mark.slow]


def test_sdk_clients_ride_out_a_primary_crash_and_return(tmp_path: Path) -> None:
    reason = _missing_prerequisite()
    if reason:
        pytest.fail(f"sdk drill cannot run: {reason}")
    report = run("crash", clients=3, rate=4.0, warmup_s=3.0, hold_s=6.0, recover_s=8.0, out=tmp_path)
    assert report["failed_after_retries"] == 0, report
    assert report["operations_during_fault"] > 0
    assert report["served_by_secondary_during_fault"] == report["operations_during_fault"], report
    assert report["moved_s"] is not None and report["back_s"] is not None, report
    # Trouble is confined to the moment of the crash, not spread over the whole outage.
    assert report["failed_window_s"] < 6.0, report
    assert (tmp_path / "report.json").exists()

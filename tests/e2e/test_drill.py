"""The fast failover drill end to end, as the command a team runs (CI's copy of `make drill-fast`).

Twice — with the production-safe lever (inverted health check) and with a SIGKILLed primary —
and asserts the outcomes the issue demands: all traffic on the secondary within the bound
(scaled) plus 1 s, zero acknowledged writes lost, zero duplicated, stores identical after
failback, the report files written, and every process the drill started gone. Then once more,
interrupted with SIGINT mid-drill: every process still goes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from emulators.base import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.emulator("moto")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def drill_argv(fault: str, out: Path) -> list[str]:
    # --port 0: a free port on both loopback addresses, so a developer's `make drill` or another
    # suite's server on :8080 cannot collide with CI's run.
    return [sys.executable, "-m", "failover", "drill", "--fast", "--fault", fault, "--port", "0", "--out", str(out)]


def run_drill(fault: str, out: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    result = subprocess.run(drill_argv(fault, out), cwd=REPO_ROOT, capture_output=True, text=True, timeout=170)
    report_path = out / "report.json"
    assert report_path.exists(), (
        f"no report (exit {result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result, json.loads(report_path.read_text())


@pytest.mark.parametrize("fault", ["inverted", "crash"])
def test_fast_drill(fault: str, tmp_path: Path) -> None:
    result, report = run_drill(fault, tmp_path)
    m = report["metrics"]
    summary = result.stdout[-3000:]
    assert report["replicating"], "the drill ran without replication between the clouds"
    # the AWS stack (runtime.aws on moto's DynamoDB) and the Azure stack (runtime.azure on cosmosdb-server)
    assert report["backend"] == "MeshClouds", report["backend"]
    assert report["mode"] == "fast" and report["fault"] == fault

    bound = report["timings"]["bound_s"]
    assert m["all_on_secondary_s"] <= bound + 1.0, summary
    assert m["failback_s"] <= bound + 1.0, summary
    assert m["checks"]["secondary_served_traffic"], summary
    assert m["detect_s"] is not None and m["detect_s"] > 0
    assert m["writes_acked"] > 30, summary
    assert m["lost"] == 0, f"acknowledged writes lost: {m['lost_ids']}\n{summary}"
    assert m["duplicated"] == 0, f"duplicated keys: {m['duplicated_keys']}\n{summary}"
    assert report["convergence"]["identical"], summary
    counts = set(report["convergence"]["messages"].values())
    assert len(counts) == 1, counts
    # Which mechanism delivered: the streams, and anti-entropy only with the reason it had to.
    replication = report["replication"]
    assert replication["delivered_by_streams"] > 0, replication
    assert m["delivered_by_streams"] == replication["delivered_by_streams"]
    assert replication["repaired_by_anti_entropy"] == 0 or replication["explanation"], replication
    assert "delivered by streams" in result.stdout and "repaired by anti-entropy" in result.stdout

    pids = report["cleanup"]["pids"]
    assert len(pids) >= 3  # moto + both clouds (+ the restarted primary after a crash)
    assert not [p for p in pids if alive(p)], "processes left running"
    assert result.returncode == 0, summary
    assert "RESULT: PASS" in result.stdout
    assert (tmp_path / "timeline.png").stat().st_size > 20_000
    served = m["served_by"]
    assert set(served) == {report["clouds"]["primary"]["name"], report["clouds"]["secondary"]["name"]}


def _sigint_as_in_a_terminal() -> None:
    """The drill as a user runs it in the foreground, where Ctrl-C delivers SIGINT. A test run
    started as a background job (``cmd &`` in a non-interactive shell) inherits SIGINT ignored,
    and Python then never turns it into KeyboardInterrupt: the signal this test sends would be
    lost and the drill would simply run to its end."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    process = subprocess.Popen(
        drill_argv("freeze", tmp_path),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_sigint_as_in_a_terminal,
    )
    pids_file = tmp_path / "processes.json"
    output = ""
    try:
        deadline = time.monotonic() + 90
        while True:  # wait until the fault is in (the primary frozen: the hardest state to clean)
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the drill never got to its fault"
            line = process.stdout.readline() if process.stdout else ""
            output += line
            if "fault injected" in line:
                break
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        output += process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output[-3000:]
    pids = json.loads(pids_file.read_text())["pids"]
    assert len(pids) >= 3
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if alive(p)], f"left running after Ctrl-C: {pids}"

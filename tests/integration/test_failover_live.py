"""Live mode against moto server (the Route 53 API) and the local DNS data plane, run as the
real command in a subprocess: the dry run changes nothing; --confirm inverts the check, sees DNS
move, and restores it; SIGINT mid-drill still restores it; nothing is ever created or deleted."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from emulators.base import REPO_ROOT
from failover import config as cfgmod
from tests.fixtures.failover import FailoverPlane

pytestmark = pytest.mark.emulator("moto")


def live_config(tmp_path: Path, port: int) -> Path:
    raw: dict[str, Any] = yaml.safe_load(cfgmod.DEFAULT_PATH.read_text())
    raw["live"].update(scheme="http", port=port, rate=2, timeout=20)
    path = tmp_path / "failover.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def live_argv(fp: FailoverPlane, tmp_path: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "failover",
        "live",
        "--config",
        str(live_config(tmp_path, fp.clouds.primary.port)),
        "--endpoint-url",
        fp.moto.url,
        "--health-check-id",
        fp.created.health_check_id,
        "--resolver",
        f"127.0.0.1:{fp.dns.port}",
        "--out",
        str(tmp_path / "out"),
        *extra,
    ]


def run(argv: list[str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


def test_dry_run_shows_the_plan_and_changes_nothing(failover_plane: FailoverPlane, tmp_path: Path) -> None:
    before = failover_plane.snapshot()
    result = run(live_argv(failover_plane, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "The plan:" in out and "Inverted=true" in out and "Inverted=false" in out
    assert "DRY RUN" in out
    assert f"127.0.0.1:{failover_plane.dns.port} → 127.0.0.2" in out  # the current DNS answer
    assert not failover_plane.inverted()
    assert failover_plane.snapshot() == before


def test_confirm_inverts_sees_dns_move_and_restores(failover_plane: FailoverPlane, tmp_path: Path) -> None:
    fp = failover_plane
    before = fp.snapshot()
    process = subprocess.Popen(
        live_argv(fp, tmp_path, "--confirm", "--hold", "1"),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen_inverted = False
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            seen_inverted = seen_inverted or fp.inverted()
            time.sleep(0.1)
        out = process.communicate(timeout=30)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out
    assert seen_inverted, "the check was never inverted"
    assert not fp.inverted()
    assert fp.snapshot() == before
    assert "failover health" in out and "127.0.0.3" in out  # DNS watched through our resolver moved
    assert "UpdateHealthCheck Inverted=false" in out
    report = (tmp_path / "out" / "live.json").read_text()
    assert '"moved_after_s"' in report and '"back_after_s"' in report
    assert fp.answer() == "127.0.0.2" or fp.fleet.snapshot().inverted is False


def test_sigint_mid_drill_restores_the_check(failover_plane: FailoverPlane, tmp_path: Path) -> None:
    fp = failover_plane
    before = fp.snapshot()
    process = subprocess.Popen(
        live_argv(fp, tmp_path, "--confirm", "--hold", "60"),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not fp.inverted():
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the check was never inverted"
            time.sleep(0.1)
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        out = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, out
    assert "Inverted=false" in out
    assert not fp.inverted()
    assert fp.snapshot() == before


def test_sigterm_restores_too(failover_plane: FailoverPlane, tmp_path: Path) -> None:
    fp = failover_plane
    process = subprocess.Popen(
        live_argv(fp, tmp_path, "--confirm", "--hold", "60"),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not fp.inverted():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out = process.communicate(timeout=60)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, out
    assert not fp.inverted()


def test_refuses_when_already_inverted(failover_plane: FailoverPlane, tmp_path: Path) -> None:
    fp = failover_plane
    fp.route53.update_health_check(HealthCheckId=fp.created.health_check_id, Inverted=True)
    result = run(live_argv(fp, tmp_path, "--confirm"))
    assert result.returncode == 2, result.stdout
    assert "refusing" in result.stdout
    assert fp.inverted()  # left exactly as found: not ours to restore

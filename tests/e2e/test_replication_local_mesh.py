"""runtime.mesh and runtime.local end to end, on local-provider clouds (SQLite, no emulator):
three clouds on their own loopback addresses, and the controls the failover drill relies on —
freeze/thaw, kill/restart, store outage — with replication catching up after each."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime.mesh import Cloud, Mesh

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    env = {"OVERCAST_REPLICATION_TIMEOUT_S": "1"}  # a frozen peer costs 1 s per attempt, not 5
    with Mesh.start(["east=local", "west=local", "north=local"], workdir=tmp_path_factory.mktemp("mesh"), env=env) as m:
        yield m


def post(cloud: Cloud, text: str) -> str:
    status, body = cloud.request("POST", "/channels/london/messages", {"author": "ada", "text": text})
    assert status == 201, body
    return str(body["id"])


def eventually(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s")


def readable(cloud: Cloud, message_id: str) -> bool:
    try:
        return cloud.request("GET", f"/channels/london/messages/{message_id}", timeout=2)[0] == 200
    except OSError:
        return False


def test_each_cloud_has_its_own_address_and_peers(mesh: Mesh) -> None:
    hosts = {c.host for c in mesh.clouds.values()}
    assert len(hosts) == 3 and all(h.startswith("127.0.0.") and h != "127.0.0.1" for h in hosts)
    for cloud in mesh.clouds.values():
        status, body = cloud.request("GET", "/health")
        assert status == 200 and body["served_by"]["region"] == f"local-{cloud.name}"
    assert mesh.config_path.stat().st_mode & 0o077 == 0  # the mesh file holds the pair secrets
    secrets = {
        c.env[f"OVERCAST_PEER_SECRET_{o.upper()}"] for c in mesh.clouds.values() for o in mesh.clouds if o != c.name
    }
    assert len(secrets) == 3  # one per pair, shared by its two clouds


def test_a_write_reaches_every_cloud(mesh: Mesh) -> None:
    message_id = post(mesh.cloud("east"), "hello")
    for name in ("west", "north"):
        eventually(lambda n=name: readable(mesh.cloud(n), message_id), 10)


def test_a_frozen_peer_catches_up_when_thawed(mesh: Mesh) -> None:
    west = mesh.cloud("west")
    west.freeze()
    try:
        message_id = post(mesh.cloud("east"), "while west is frozen")
        eventually(lambda: readable(mesh.cloud("north"), message_id), 10)  # north is not held up
    finally:
        west.thaw()
    eventually(lambda: readable(west, message_id))


def test_a_killed_cloud_restarts_with_its_data_and_receives_what_it_missed(mesh: Mesh) -> None:
    north = mesh.cloud("north")
    before = post(north, "before the crash")
    eventually(lambda: readable(mesh.cloud("east"), before), 10)
    north.kill()
    assert not north.running
    missed = post(mesh.cloud("east"), "while north is down")
    north.start()
    assert readable(north, before)
    eventually(lambda: readable(north, missed))  # east's poller kept it and retried


def test_a_store_outage_fails_deep_health_and_recovers(mesh: Mesh) -> None:
    west = mesh.cloud("west")
    west.stop_store()
    try:
        assert west.request("GET", "/health/deep")[0] == 503
        assert west.request("POST", "/channels/london/messages", {"author": "a", "text": "b"})[0] == 503
        assert west.request("GET", "/health")[0] == 200  # the function still runs
    finally:
        west.start_store()
    assert west.request("GET", "/health/deep")[0] == 200


def test_verify_and_repair_commands_over_the_mesh_file(mesh: Mesh) -> None:
    reports = mesh.repair(window_s=0)
    assert all(r.ok for r in reports.values())
    for command in ("repair", "verify"):
        result = subprocess.run(
            [sys.executable, "-m", "tools.replication", command, "--mesh", str(mesh.config_path)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert "IDENTICAL" in result.stdout
    assert mesh.verify().identical


def test_clouds_can_share_one_port_on_their_own_addresses(tmp_path: Path) -> None:
    """What a DNS failover between clouds needs: one port, the address decides the cloud."""
    from emulators.base import free_port

    port = free_port("127.0.0.5")
    with Mesh.start(["local", "other=local"], workdir=tmp_path, port=port) as shared:
        assert {c.port for c in shared.clouds.values()} == {port}
        assert len({c.host for c in shared.clouds.values()}) == 2
        message_id = post(shared.cloud("local"), "same port")
        eventually(lambda: readable(shared.cloud("other"), message_id), 10)

"""Anti-entropy repairs what no stream delivered, over real HTTP between runtime processes.

``mute`` runs with its change delivery switched off (a stream that drops everything), so none
of its writes leave it by streaming; ``east`` runs the scheduled pass every second (as a timer
function would, on a shorter period); ``west`` only streams. Everything still converges.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.mesh import Cloud, Mesh


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    args = {"mute": ["--no-replication"], "east": ["--anti-entropy-every-s", "1", "--anti-entropy-window-s", "60"]}
    with Mesh.start(
        ["mute=local", "east=local", "west=local"], workdir=tmp_path_factory.mktemp("ae"), runtime_args=args
    ) as running:
        yield running


def post(cloud: Cloud, text: str) -> str:
    status, body = cloud.request("POST", "/channels/london/messages", {"author": "ada", "text": text})
    assert status == 201, body
    return str(body["id"])


def held_by(cloud: Cloud, message_id: str) -> int:
    return cloud.request("GET", f"/channels/london/messages/{message_id}")[0]


def test_the_scheduled_pass_repairs_what_no_stream_carried(mesh: Mesh) -> None:
    mute, east, west = mesh.cloud("mute"), mesh.cloud("east"), mesh.cloud("west")
    ids = [post(mute, f"unstreamed {i}") for i in range(5)]
    time.sleep(0.5)
    assert all(held_by(west, i) == 404 for i in ids)  # no stream carried them
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(held_by(east, i) == 200 for i in ids):
        time.sleep(0.2)
    assert all(held_by(east, i) == 200 for i in ids), "east's periodic pass did not pull mute's writes"
    # east pulled them; they are mute's records, so east's stream rightly does not forward them
    # (loop prevention) — east's next pass pushes them to west instead.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(held_by(west, i) == 200 for i in ids):
        time.sleep(0.2)
    assert all(held_by(west, i) == 200 for i in ids)


def test_a_manual_full_pass_converges_everything(mesh: Mesh) -> None:
    mute = mesh.cloud("mute")
    deleted = post(mesh.cloud("west"), "to be deleted on mute")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and held_by(mute, deleted) != 200:
        time.sleep(0.1)
    assert mute.request("DELETE", f"/channels/london/messages/{deleted}")[0] == 204
    reports = mesh.repair(window_s=0)
    assert all(r.ok for r in reports.values()), {n: r.to_dict() for n, r in reports.items()}
    report = mesh.verify()
    assert report.identical, report.render()
    assert all(held_by(c, deleted) == 404 for c in mesh.clouds.values())


@pytest.mark.emulator("moto")
def test_the_aws_scheduled_function_repairs_on_its_schedule(tmp_path: Path) -> None:
    """handlers.aws.anti_entropy, invoked with an EventBridge scheduled event by the mesh's
    schedule stand-in (``python -m runtime.mesh tick``), pulls what no stream carried."""
    args = {"mute": ["--no-replication"]}  # and no timer of its own: only aws's schedule can repair
    with Mesh.start(["aws", "mute=local"], workdir=tmp_path, runtime_args=args) as mesh:
        aws, mute = mesh.cloud("aws"), mesh.cloud("mute")
        ids = [post(mute, f"unstreamed {i}") for i in range(3)]
        time.sleep(0.5)
        assert all(held_by(aws, i) == 404 for i in ids)
        aws.start_scheduler(1.0)
        assert aws.scheduler is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(held_by(aws, i) == 200 for i in ids):
            time.sleep(0.2)
        assert all(held_by(aws, i) == 200 for i in ids), aws.scheduler.log_tail()
        # The pass writes what it pulls before it returns and the schedule stand-in prints its
        # report, so the records can be readable a moment before the report line exists.
        while time.monotonic() < deadline and '"pulled": 3' not in aws.scheduler.log_tail(200):
            time.sleep(0.2)
        assert '"pulled": 3' in aws.scheduler.log_tail(200)

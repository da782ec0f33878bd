"""``GET /replication/status`` and ``python -m tools.replication status`` on a local mesh (real
runtime.local servers): a write's lag and push show up, and a peer whose clock runs 600 s ahead
is named with its offset after its first exchange, as degraded, with the metric line an alarm
watches in the cloud's log."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.model import Message, Version, new_message_id
from core.replication import BATCH_PATH, STATUS_PATH, encode_batch, signed_headers
from runtime.mesh import Mesh, secret_var
from tools.replication.status import fetch_status

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    with Mesh.start(["east=local", "west=local"], workdir=tmp_path_factory.mktemp("mesh")) as m:
        yield m


def status_cli(mesh: Mesh, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    proc = subprocess.run(
        [sys.executable, "-m", "tools.replication", "status", "--mesh", str(mesh.config_path), "--json", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, {line["cloud"]: line for line in lines}


def peer(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in status["peers"] if p["peer"] == name)


def eventually(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s")


def test_a_write_shows_as_a_push_on_one_side_and_lag_on_the_other(mesh: Mesh) -> None:
    east, west = mesh.cloud("east"), mesh.cloud("west")
    status, body = east.request("POST", "/channels/status/messages", {"author": "ada", "text": "hi"})
    assert status == 201, body

    def arrived() -> bool:
        return peer(fetch_status(west.url, "east", west.env[secret_var("east")]), "east")["applied_records"] >= 1

    eventually(arrived)
    code, answers = status_cli(mesh)
    assert code == 0, answers
    assert peer(answers["east"], "west")["last_push_ok_ms"] is not None
    received = peer(answers["west"], "east")
    assert received["lag_ms"]["samples"] >= 1 and received["lag_ms"]["p99"] is not None
    assert received["clock_offset_s"] in (-1, 0, 1)


def test_a_peer_clock_600_s_ahead_is_named_after_one_exchange(mesh: Mesh) -> None:
    east = mesh.cloud("east")
    # What west's pushes look like when west's clock runs 10 minutes ahead: correctly signed.
    ms = int(time.time() * 1000)
    body = encode_batch("west", [Message("status", new_message_id(ms), "bob", "skewed", ms, Version(ms, 0, "west"))])
    headers = signed_headers("west", east.env[secret_var("west")], int(time.time()) + 600, body)
    request = urllib.request.Request(east.url + BATCH_PATH, data=body, headers=headers, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    error = json.loads(refused.value.read())["error"]
    assert refused.value.code == 401 and error["code"] == "clock_skew" and error["offset_s"] in (599, 600, 601)

    code, answers = status_cli(mesh, "--cloud", "east")
    assert code == 1  # degraded
    seen = peer(answers["east"], "west")
    assert seen["clock_offset_s"] in (599, 600, 601) and seen["clock_skew_rejections"] >= 1
    assert any(reason.startswith("west: clock_skew") for reason in answers["east"]["reasons"])
    # What an operator reads: the cloud degraded, the reason, the peer's clock offset.
    text = subprocess.run(
        [sys.executable, "-m", "tools.replication", "status", "--mesh", str(mesh.config_path), "--cloud", "east"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    ).stdout
    assert text.startswith("east: DEGRADED") and "! west: clock_skew" in text, text
    assert re.search(r"clock \+(599|600|601)s", text), text  # a second may tick between sign and check
    # The metric line the clock-offset alarm watches, in the cloud's own log.
    metrics = [json.loads(line) for line in east.log_tail(400).splitlines() if '"ClockOffsetSeconds"' in line]
    assert any(m["value"] >= 599 and m["Peer"] == "west" for m in metrics), east.log_tail(20)


def test_the_status_route_refuses_an_unsigned_read(mesh: Mesh) -> None:
    status, body = mesh.cloud("east").request("GET", STATUS_PATH)
    assert status == 401 and body["error"]["code"] == "signature_missing"

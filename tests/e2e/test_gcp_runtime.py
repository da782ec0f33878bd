"""runtime.gcp (the local stand-in for Cloud Functions + Eventarc) end to end: a message posted to
the GCP function reaches a peer cloud through the Firestore listener → CloudEvent → event function
→ signed push; a push that fails is retried with backoff until the peer is back."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emulators.base import ServerProcess, free_port
from emulators.firestore import FirestoreEmulator
from tests.http_client import HttpClient

pytestmark = [pytest.mark.emulator("firestore"), pytest.mark.slow]
SECRET = "runtime-pair-secret"
HOST = "127.0.0.4"  # the address the replication drills give the GCP replica


def _peers(name: str, url: str) -> str:
    return json.dumps([{"name": name, "url": url, "secret_env": "PAIR_SECRET"}])


def local_peer(port: int, gcp_url: str, db: Path) -> ServerProcess:
    argv = [sys.executable, "-m", "handlers.local", "--host", "127.0.0.1", "--port", str(port), "--db", str(db)]
    env = {"OVERCAST_ORIGIN": "local", "OVERCAST_PEERS": _peers("gcp", gcp_url), "PAIR_SECRET": SECRET}
    return ServerProcess("overcast-local-peer", argv, port=port, env=env)


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(HOST), free_port()


@pytest.fixture
def runtime(firestore_emulator: FirestoreEmulator, ports: tuple[int, int]) -> Iterator[ServerProcess]:
    firestore_emulator.reset()
    gcp_port, peer_port = ports
    argv = [sys.executable, "-m", "runtime.gcp", "--host", HOST, "--port", str(gcp_port)]
    argv += ["--firestore-emulator", firestore_emulator.host_port, "--project", firestore_emulator.project]
    env = {
        "OVERCAST_ORIGIN": "gcp",
        "OVERCAST_PEERS": _peers("local", f"http://127.0.0.1:{peer_port}"),
        "PAIR_SECRET": SECRET,
    }
    env["OVERCAST_REPLICATION_TIMEOUT_S"] = "1"
    process = ServerProcess("runtime-gcp", argv, host=HOST, port=gcp_port, env=env)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _eventually(check: Callable[[], bool], timeout: float = 15.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def test_posts_and_deletes_reach_the_peer(runtime: ServerProcess, ports: tuple[int, int], tmp_path: Path) -> None:
    with local_peer(ports[1], runtime.url, tmp_path / "peer.sqlite") as peer:
        gcp, local = HttpClient(runtime.url), HttpClient(peer.url)
        posted = gcp.request(
            "POST", "/channels/portland/messages", json_body={"author": "ada", "text": "Hello Portland"}
        )
        assert posted.status == 201
        path = f"/channels/portland/messages/{posted.json()['id']}"
        _eventually(lambda: local.request("GET", path).status == 200)
        copy = local.request("GET", path).json()
        assert (copy["text"], copy["origin"], copy["version"]) == ("Hello Portland", "gcp", posted.json()["version"])
        assert gcp.request("DELETE", path).status == 204
        _eventually(lambda: local.request("GET", path).status == 404)


def test_failed_pushes_are_retried_until_the_peer_is_back(
    runtime: ServerProcess, ports: tuple[int, int], tmp_path: Path
) -> None:
    gcp = HttpClient(runtime.url)
    posted = gcp.request("POST", "/channels/tokyo/messages", json_body={"author": "ada", "text": "Konnichiwa"})
    assert posted.status == 201
    _eventually(lambda: "answered 500" in runtime.log_path.read_text(errors="replace"))  # the peer is down
    with local_peer(ports[1], runtime.url, tmp_path / "peer.sqlite") as peer:
        path = f"/channels/tokyo/messages/{posted.json()['id']}"
        _eventually(lambda: HttpClient(peer.url).request("GET", path).status == 200, timeout=20)


def test_sigterm_stops_cleanly(runtime: ServerProcess) -> None:
    assert runtime.process is not None
    process = runtime.process
    runtime.signal(signal.SIGTERM)
    assert process.wait(10) == 0
    assert "stopped (" in runtime.log_path.read_text(errors="replace")

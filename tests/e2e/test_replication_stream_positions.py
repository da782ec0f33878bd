"""The change-delivery stand-ins keep their position across restarts, as the platforms do (a
DynamoDB event source mapping, a Cosmos DB lease): with anti-entropy OFF, every write a cloud
acknowledged while its peer was down reaches the peer by the stream alone, even when the
writing cloud's runtime is restarted before the peer comes back.

Also the peer-clock-ahead case on Azure: a record applied from a peer whose clock runs far ahead
must not hide a later local write from the change feed (it is read in commit order)."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from core.model import Message, Version, new_message_id
from core.replication import BATCH_PATH, encode_batch, signed_headers
from runtime.mesh import Cloud, Mesh, secret_var

pytestmark = [pytest.mark.emulator("moto"), pytest.mark.emulator("cosmos"), pytest.mark.slow]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    from emulators.cosmos import INSTALL_HINT, find_package

    if find_package() is None:
        if os.environ.get("CI"):
            pytest.fail(INSTALL_HINT)
        pytest.skip(f"STREAM POSITION E2E NOT RUN: {INSTALL_HINT}")
    # Retry until delivered (the platforms' -1), short backoff: an outage of any length is then
    # bridged by the stream alone, and the test waits seconds, not minutes. No anti-entropy.
    runtime_args = {"aws": ["--stream-max-retries", "-1"], "azure": ["--max-retries", "-1", "--retry-max-s", "2"]}
    env = {"OVERCAST_REPLICATION_TIMEOUT_S": "1"}
    with Mesh.start(["aws", "azure"], workdir=tmp_path_factory.mktemp("mesh"), env=env, runtime_args=runtime_args) as m:
        yield m


def post(cloud: Cloud, text: str) -> str:
    status, body = cloud.request("POST", "/channels/outage/messages", {"author": "ada", "text": text})
    assert status == 201, body
    return str(body["id"])


def readable(cloud: Cloud, message_id: str) -> bool:
    try:
        return cloud.request("GET", f"/channels/outage/messages/{message_id}", timeout=2)[0] == 200
    except OSError:
        return False


def eventually(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s")


@pytest.mark.parametrize(("writer", "peer"), [("azure", "aws"), ("aws", "azure")])
def test_writes_acknowledged_during_an_outage_arrive_by_stream_after_the_writer_restarts(
    mesh: Mesh, writer: str, peer: str
) -> None:
    source, target = mesh.cloud(writer), mesh.cloud(peer)
    target.stop()
    try:
        ids = [post(source, f"{writer} during {peer} outage {n}") for n in range(10)]
        time.sleep(1.5)  # the stream has read them and is retrying the push
        source.restart()  # the writer's runtime restarts while its peer is still down
        ids += [post(source, f"{writer} after its restart {n}") for n in range(3)]
    finally:
        target.start()
    eventually(lambda: all(readable(target, i) for i in ids))


def test_a_peer_record_from_a_clock_far_ahead_does_not_hide_a_later_local_azure_write(mesh: Mesh) -> None:
    azure, aws = mesh.cloud("azure"), mesh.cloud("aws")
    # A record from "aws" whose clock runs 10 minutes ahead, applied on azure (as a push would).
    ahead_ms = int(time.time() * 1000) + 600_000
    ahead = Message("outage", new_message_id(ahead_ms), "bob", "from the future", ahead_ms, Version(ahead_ms, 0, "aws"))
    body = encode_batch("aws", [ahead])
    secret = azure.env[secret_var("aws")]
    headers = signed_headers("aws", secret, int(time.time()), body)
    request = urllib.request.Request(azure.url + BATCH_PATH, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:  # the signed bytes, as sent
        assert json.loads(response.read())["applied"] == 1
    time.sleep(1.0)  # the feed has read it
    local = post(azure, "a later local write")
    eventually(lambda: readable(aws, local), timeout_s=30.0)

"""emulators/cosmos_server.js really works around cosmosdb-server's faults: connections stay open,
a missing item is a 404 (not a 500), and it binds loopback only."""

from __future__ import annotations

import http.client
import json
import shutil
import ssl
import subprocess
from typing import Any

import pytest

from emulators.cosmos import LAUNCHER, CosmosEmulator

pytestmark = pytest.mark.emulator("cosmos")


def _connection(emulator: CosmosEmulator) -> http.client.HTTPSConnection:
    context = ssl._create_unverified_context()  # the package's certificate expired in 2021
    return http.client.HTTPSConnection(emulator.host, emulator.port, context=context, timeout=5)


def test_connections_are_kept_alive(cosmos_emulator: CosmosEmulator) -> None:
    connection = _connection(cosmos_emulator)
    try:
        for _ in range(3):  # several requests over one connection
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("connection") == "keep-alive"
        assert connection.sock is not None  # never closed by the server in between
    finally:
        connection.close()


def test_reading_a_missing_item_is_a_404_like_the_service(
    cosmos_emulator: CosmosEmulator, cosmos_container: Any
) -> None:
    database = cosmos_container.container_link.split("/")[1]
    path = f"/dbs/{database}/colls/{cosmos_container.id}/docs/no-such-item"
    connection = _connection(cosmos_emulator)
    try:
        connection.request("GET", path, headers={"x-ms-documentdb-partitionkey": json.dumps(["london"])})
        response = connection.getresponse()
        body = json.loads(response.read())
    finally:
        connection.close()
    assert response.status == 404 and body["code"] == "NotFound"


def test_the_launcher_refuses_to_bind_beyond_loopback() -> None:
    node = shutil.which("node")
    assert node, "node is required"
    result = subprocess.run(
        [node, str(LAUNCHER), "--host", "0.0.0.0", "--port", "0"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and "loopback" in result.stderr

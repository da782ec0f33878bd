"""The documented local run (docs/aws.md): `sls offline --config serverless.aws.yml` with the
project's venv, against moto server, answering curl-style requests on 127.0.0.1."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.aws.table import create_table
from emulators.base import ServerProcess, free_port
from emulators.moto import EMULATOR_CREDENTIALS, EMULATOR_REGION, MotoServer
from tests.http_client import HttpClient, HttpResult
from tests.openapi import assert_response_conforms

ROOT = Path(__file__).resolve().parents[2]
SLS = ROOT / "node_modules" / ".bin" / "sls"
pytestmark = [pytest.mark.emulator("moto"), pytest.mark.slow]


class CheckedClient(HttpClient):
    def request(self, method: str, path: str, **kw: Any) -> HttpResult:
        result = super().request(method, path, **kw)
        assert_response_conforms(method, path, result.status, result.headers, result.body)
        return result


@pytest.fixture(scope="module")
def offline(moto_server: MotoServer) -> Iterator[ServerProcess]:
    if not SLS.exists():
        pytest.fail(f"{SLS} is missing: run `npm ci`", pytrace=False)
    stage = f"e2e{os.getpid()}"
    dynamodb = moto_server.client("dynamodb", **EMULATOR_CREDENTIALS)
    create_table(dynamodb, f"overcast-{stage}-messages")  # the name serverless.aws.yml gives the stage
    http_port, lambda_port = free_port(), free_port()
    argv = [str(SLS), "offline", "--config", "serverless.aws.yml", "--stage", stage]
    argv += ["--httpPort", str(http_port), "--lambdaPort", str(lambda_port)]
    venv = ROOT / ".venv"
    env = {
        # What `. .venv/bin/activate` does for serverless-offline: its python3 comes from here.
        "VIRTUAL_ENV": str(venv),
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
        "OVERCAST_DYNAMODB_ENDPOINT": moto_server.url,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_REGION": EMULATOR_REGION,
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
    }
    try:
        # Ready when this stack's own function answers (an open port alone could be any server's).
        ready = lambda: _serves_aws_health(http_port)  # noqa: E731
        with ServerProcess(
            "sls-offline-aws", argv, port=http_port, env=env, startup_timeout=120, ready=ready
        ) as process:
            yield process
    finally:
        dynamodb.delete_table(TableName=f"overcast-{stage}-messages")


def _serves_aws_health(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
        return response.status == 200 and json.loads(response.read())["served_by"]["provider"] == "aws"


def test_sls_offline_serves_the_api_against_a_local_dynamodb(offline: ServerProcess) -> None:
    client = CheckedClient(offline.url)
    key = {"Idempotency-Key": "offline-1"}
    created = client.request(
        "POST", "/channels/london/messages", json_body={"author": "ada", "text": "Hello"}, headers=key
    )
    assert created.status == 201, created.body
    assert created.json()["served_by"]["provider"] == "aws"
    replay = client.request(
        "POST", "/channels/london/messages", json_body={"author": "ada", "text": "Hello"}, headers=key
    )
    assert replay.status == 201 and replay.json()["id"] == created.json()["id"]
    listing = client.request("GET", "/channels/london/messages", query={"limit": "10"})
    assert [m["id"] for m in listing.json()["items"]] == [created.json()["id"]]
    deep = client.request("GET", "/health/deep")
    assert deep.status == 200 and deep.json()["store"] == "dynamodb"


def test_unknown_routes_reach_the_app(offline: ServerProcess) -> None:
    answer = HttpClient(offline.url).request("GET", "/no/such/route")
    assert answer.status == 404 and answer.json()["error"]["code"] == "route_not_found"

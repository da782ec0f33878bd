"""The replication secret read from Secrets Manager (moto server over a socket) when the AWS app is
built, cached for the process, and never in the environment."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.aws.secrets import SecretsManagerSecretStore, make_client
from core.errors import ConfigurationError
from emulators.moto import EMULATOR_ENV, EMULATOR_REGION, MotoServer
from handlers import aws as handler
from tests.events import load_event
from tests.fixtures.oidc import AUTH_OFF

pytestmark = pytest.mark.emulator("moto")


class CountingClient:
    """The real client, with its GetSecretValue calls counted."""

    def __init__(self, client: Any) -> None:
        self.client, self.reads = client, 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads += 1
        return self.client.get_secret_value(**kwargs)


@pytest.fixture
def secret(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    for name, value in EMULATOR_ENV.items():
        monkeypatch.setenv(name, value)
    client = make_client(EMULATOR_REGION, moto_server.url)
    name, value = f"overcast/test-{uuid.uuid4().hex[:8]}/replication", uuid.uuid4().hex * 2
    arn = client.create_secret(Name=name, SecretString=value)["ARN"]
    yield arn, value
    client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def env_for(moto_server: MotoServer, secret_id: str) -> dict[str, str]:
    return {
        **EMULATOR_ENV,
        **AUTH_OFF,
        "OVERCAST_DYNAMODB_TABLE": "t",
        "OVERCAST_DYNAMODB_ENDPOINT": moto_server.url,
        "OVERCAST_SECRETSMANAGER_ENDPOINT": moto_server.url,
        "OVERCAST_PEERS": json.dumps([{"name": "azure", "url": "https://azure.example.com"}]),
        "OVERCAST_REPLICATION_SECRET_ID": secret_id,
    }


def test_the_handler_reads_the_secret_by_arn_at_build(moto_server: MotoServer, secret: tuple[str, str]) -> None:
    arn, value = secret
    built = handler.build(env_for(moto_server, arn))
    assert built.settings.peers[0].secret == value
    assert value not in os.environ.values() and value not in repr(built.settings)


def test_the_secret_is_read_once_per_process(moto_server: MotoServer, secret: tuple[str, str]) -> None:
    arn, value = secret
    counting = CountingClient(make_client(EMULATOR_REGION, moto_server.url))
    store = SecretsManagerSecretStore(lambda: counting)
    assert store.get(arn) == value and store.get(arn) == value
    assert counting.reads == 1


def test_by_name_too(moto_server: MotoServer, secret: tuple[str, str]) -> None:
    arn, value = secret
    name = arn.split(":secret:")[1].rsplit("-", 1)[0]  # moto's ARN suffix, like the real service's
    store = SecretsManagerSecretStore(lambda: make_client(EMULATOR_REGION, moto_server.url))
    assert store.get(name) == value


def test_a_missing_secret_is_a_configuration_error_and_a_503(
    moto_server: MotoServer, secret: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_for(moto_server, "overcast/nowhere/replication")
    with pytest.raises(ConfigurationError, match="ResourceNotFound"):
        handler.build(env)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    handler.reset()
    try:
        result = handler.http(load_event("aws", "apigw_v2_deep_health_named_stage"), None)
    finally:
        handler.reset()
    assert result["statusCode"] == 503 and json.loads(result["body"])["error"]["code"] == "misconfigured"
    assert "nowhere" not in result["body"]  # the secret's name stays in the logs

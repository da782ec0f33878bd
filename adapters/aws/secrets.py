"""AWS Secrets Manager as the ``SecretStore``: the replication secret is fetched with
``GetSecretValue`` when the app is built (first invocation), cached for the life of the execution
environment, and never placed in the function's environment variables — so
``lambda:GetFunctionConfiguration`` (and the CloudFormation template) show only its name.

The client is built on the first read, so a deployment without peers never builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from core.errors import ConfigurationError, Unavailable
from core.ports import SecretStore

CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 3, "mode": "standard"})
#: Codes that no retry fixes: the secret's name, its policy or the role's.
_MISCONFIGURED = {
    "ResourceNotFoundException",
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidRequestException",
    "DecryptionFailure",
}


def make_client(region: str | None = None, endpoint_url: str | None = None, **kwargs: Any) -> Any:
    try:
        return botocore.session.get_session().create_client(
            "secretsmanager", region_name=region, endpoint_url=endpoint_url, config=CLIENT_CONFIG, **kwargs
        )
    except (NoRegionError, ValueError) as exc:
        raise ConfigurationError(f"Secrets Manager client: {exc} (set AWS_REGION)") from exc


class SecretsManagerSecretStore(SecretStore):
    def __init__(self, client_factory: Callable[[], Any]) -> None:
        super().__init__()
        self._client_factory = client_factory
        self._client: Any = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SecretsManagerSecretStore:
        """``OVERCAST_SECRETSMANAGER_ENDPOINT`` points it at an emulator (moto server)."""
        return cls(
            lambda: make_client(env.get("AWS_REGION") or None, env.get("OVERCAST_SECRETSMANAGER_ENDPOINT") or None)
        )

    def _fetch(self, secret_id: str) -> str:
        if self._client is None:
            self._client = self._client_factory()
        try:
            response = self._client.get_secret_value(SecretId=secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _MISCONFIGURED:
                raise ConfigurationError(f"secret {secret_id!r} cannot be read: {code}") from exc
            raise Unavailable(f"Secrets Manager did not answer for {secret_id!r}: {code}", retry_after=5) from exc
        except NoCredentialsError as exc:
            raise ConfigurationError(f"secret {secret_id!r}: no AWS credentials") from exc
        except BotoCoreError as exc:
            raise Unavailable(f"Secrets Manager unreachable: {type(exc).__name__}", retry_after=5) from exc
        value = response.get("SecretString")
        if not isinstance(value, str):
            raise ConfigurationError(f"secret {secret_id!r} has no SecretString (a binary secret is not supported)")
        return value

"""The Azure provider's registration (see ``adapters.registry``); importing it imports no SDK."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.registry import ProviderSpec, is_loopback
from core.errors import ConfigurationError

if TYPE_CHECKING:
    from core.ports import MessageStore

SPEC = ProviderSpec(
    name="azure",
    vendor_modules=("azure",),
    handler="handlers.azure",
    events="adapters.azure.events",
    store_class="adapters.azure.store:CosmosMessageStore",
    store_scheme="cosmos",
    store_opener="adapters.azure.provider:open_store",
    cloud="runtime.azure:AzureCloud",
    address="127.0.0.3",
    emulator="emulators.cosmos:CosmosEmulator",
    fixtures=("tests.fixtures.cosmos",),
    colour="#0078d4",
)


def open_store(target: str, query: Mapping[str, str]) -> MessageStore:
    """``cosmos://DATABASE/CONTAINER?endpoint=https://...&key_env=COSMOS_KEY``: the key is read
    from the variable ``key_env`` names, never from the spec; a loopback endpoint is the local
    emulator (its expired self-signed certificate accepted, see emulators/cosmos.py)."""
    from adapters.azure.store import CosmosMessageStore, cosmos_client

    database, _, container = target.strip("/").partition("/")
    endpoint = query.get("endpoint", "")
    if not (database and container and endpoint):
        raise ConfigurationError("cosmos spec: cosmos://DATABASE/CONTAINER?endpoint=https://...&key_env=VAR")
    key_env = query.get("key_env", "COSMOS_KEY")
    key = os.environ.get(key_env, "")
    if is_loopback(endpoint):
        from emulators.cosmos import emulator_client

        client = emulator_client(endpoint, key) if key else emulator_client(endpoint)
    else:
        if not key:
            raise ConfigurationError(f"cosmos spec: set {key_env} to the account key")
        client = cosmos_client(endpoint, key)
    return CosmosMessageStore(client.get_database_client(database).get_container_client(container))

"""The Google Cloud provider's registration (see ``adapters.registry``); importing it imports no SDK."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from adapters.registry import ProviderSpec, is_loopback
from core.errors import ConfigurationError

if TYPE_CHECKING:
    from core.ports import MessageStore

SPEC = ProviderSpec(
    name="gcp",
    vendor_modules=("google.cloud", "google.api_core", "functions_framework"),
    handler="handlers.gcp",
    events="adapters.gcp.events",
    store_class="adapters.gcp.store:FirestoreMessageStore",
    store_scheme="firestore",
    store_opener="adapters.gcp.provider:open_store",
    cloud="runtime.gcp:GcpCloud",
    address="127.0.0.4",
    emulator="emulators.firestore:FirestoreEmulator",
    fixtures=("tests.fixtures.firestore",),
    colour="#34a853",
)


def open_store(target: str, query: Mapping[str, str]) -> MessageStore:
    """``firestore://PROJECT[?database=(default)&collection=channels&emulator=127.0.0.1:8086]``:
    Google credentials come from the SDK's chain; ``emulator`` must be a loopback host:port."""
    from adapters.gcp.store import FirestoreMessageStore

    project = target.strip("/")
    database = query.get("database", "(default)")
    emulator = query.get("emulator", "")
    if emulator:
        if not is_loopback(emulator):
            raise ConfigurationError("firestore spec: emulator must be a loopback host:port")
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore

        from emulators.firestore import emulator_env

        with emulator_env(emulator):
            client = firestore.Client(project=project, database=database, credentials=AnonymousCredentials())
    else:
        from handlers.gcp import make_client

        client = make_client(project, database)
    return FirestoreMessageStore(client, collection=query.get("collection", "channels"))

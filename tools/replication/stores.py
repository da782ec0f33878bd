"""Open a store from a spec string, importing only that store's SDK (libcloud-style registry).

    sqlite:///abs/path/messages.sqlite          sqlite:relative/path.sqlite
    dynamodb://TABLE?region=eu-west-1[&endpoint=http://127.0.0.1:8000]
    cosmos://DATABASE/CONTAINER?endpoint=https://ACCOUNT.documents.azure.example&key_env=COSMOS_KEY
    firestore://PROJECT[?database=(default)&collection=channels&emulator=127.0.0.1:8086]
    cloudant://DATABASE?url=https://ACCOUNT.cloudantnosqldb.example[&apikey_env=CLOUDANT_APIKEY]

Secrets never go in a spec: Cosmos keys are read from the variable named by ``key_env``
(default ``COSMOS_KEY``); AWS and Google credentials come from their SDKs' usual chains. A
loopback endpoint is treated as a local emulator (emulator credentials, the Cosmos emulator's
expired certificate accepted).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from core.errors import ConfigurationError
from core.ports import MessageStore

#: scheme → "module:function" building the store from (netloc+path, query). Imported on demand,
#: so verifying two SQLite files never imports boto3, azure or google.
OPENERS: dict[str, str] = {
    "sqlite": "tools.replication.stores:open_sqlite",
    "dynamodb": "tools.replication.stores:open_dynamodb",
    "cosmos": "tools.replication.stores:open_cosmos",
    "firestore": "tools.replication.stores:open_firestore",
    "cloudant": "adapters.openwhisk.store:open_spec",
}
#: scheme → the adapter class each opener builds (for docs and `--help`).
STORE_CLASSES: dict[str, str] = {
    "sqlite": "adapters.local.store:SqliteMessageStore",
    "dynamodb": "adapters.aws.store:DynamoDBMessageStore",
    "cosmos": "adapters.azure.store:CosmosMessageStore",
    "firestore": "adapters.gcp.store:FirestoreMessageStore",
    "cloudant": "adapters.openwhisk.store:CloudantMessageStore",
}


def load(dotted: str) -> Any:
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)


def open_store(spec: str) -> MessageStore:
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in OPENERS:
        raise ConfigurationError(f"store spec {spec!r}: use one of {', '.join(s + '://...' for s in OPENERS)}")
    opener: Callable[[str, Mapping[str, str]], MessageStore] = load(OPENERS[scheme])
    target, _, query = rest.removeprefix("//").partition("?")
    return opener(target, dict(parse_qsl(query)))


def is_loopback(url_or_host: str) -> bool:
    host = urlsplit(url_or_host).hostname if "://" in url_or_host else url_or_host.rsplit(":", 1)[0]
    return bool(host) and (host or "").startswith("127.")


def open_sqlite(target: str, query: Mapping[str, str]) -> MessageStore:
    from pathlib import Path

    path = Path(target)
    if not path.is_file():
        raise ConfigurationError(f"no SQLite database at {path}")
    return load(STORE_CLASSES["sqlite"])(path)


def open_dynamodb(target: str, query: Mapping[str, str]) -> MessageStore:
    table = target.strip("/")
    endpoint = query.get("endpoint") or None
    region = query.get("region") or os.environ.get("AWS_REGION") or "us-east-1"
    extra: dict[str, str] = {}
    if endpoint and is_loopback(endpoint):  # a local emulator accepts any credentials
        extra = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    make_client = load("adapters.aws.store:make_client")
    return load(STORE_CLASSES["dynamodb"])(make_client(region, endpoint, **extra), table)


def open_cosmos(target: str, query: Mapping[str, str]) -> MessageStore:
    database, _, container = target.strip("/").partition("/")
    endpoint = query.get("endpoint", "")
    if not (database and container and endpoint):
        raise ConfigurationError("cosmos spec: cosmos://DATABASE/CONTAINER?endpoint=https://...&key_env=VAR")
    key_env = query.get("key_env", "COSMOS_KEY")
    key = os.environ.get(key_env, "")
    if is_loopback(endpoint):
        emulator_client = load("emulators.cosmos:emulator_client")
        client = emulator_client(endpoint, key) if key else emulator_client(endpoint)
    else:
        if not key:
            raise ConfigurationError(f"cosmos spec: set {key_env} to the account key")
        client = load("adapters.azure.store:cosmos_client")(endpoint, key)
    proxy = client.get_database_client(database).get_container_client(container)
    return load(STORE_CLASSES["cosmos"])(proxy)


def open_firestore(target: str, query: Mapping[str, str]) -> MessageStore:
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
        client = load("handlers.gcp:make_client")(project, database)
    store_class = load(STORE_CLASSES["firestore"])
    return store_class(client, collection=query.get("collection", "channels"))

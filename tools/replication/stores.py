"""Open a store from a spec string, importing only that store's SDK (libcloud-style registry).

    sqlite:///abs/path/messages.sqlite          sqlite:relative/path.sqlite
    dynamodb://TABLE?region=eu-west-1[&endpoint=http://127.0.0.1:8000]
    cosmos://DATABASE/CONTAINER?endpoint=https://ACCOUNT.documents.azure.example&key_env=COSMOS_KEY
    firestore://PROJECT[?database=(default)&collection=channels&emulator=127.0.0.1:8086]
    cloudant://DATABASE?url=https://ACCOUNT.cloudantnosqldb.example[&apikey_env=CLOUDANT_APIKEY]

Each scheme is a provider's (``adapters/<name>/provider.py``: ``store_scheme``, ``store_opener``,
``store_class``); this module names none itself. Secrets never go in a spec: Cosmos keys are read
from the variable named by ``key_env`` (default ``COSMOS_KEY``); AWS and Google credentials come
from their SDKs' usual chains. A loopback endpoint is treated as a local emulator (emulator
credentials, the Cosmos emulator's expired certificate accepted).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl

from adapters.registry import is_loopback, load, providers
from core.errors import ConfigurationError
from core.ports import MessageStore

__all__ = ["OPENERS", "STORE_CLASSES", "is_loopback", "load", "open_store"]

#: scheme → "module:function" building the store from (netloc+path, query). Imported on demand,
#: so verifying two SQLite files never imports boto3, azure or google.
_STORES = [spec for spec in providers().values() if spec.store_scheme and spec.store_opener]
OPENERS: dict[str, str] = {spec.store_scheme: spec.store_opener for spec in _STORES}
#: scheme → the adapter class each opener builds (for docs and `--help`).
STORE_CLASSES: dict[str, str] = {spec.store_scheme: spec.store_class for spec in _STORES}


def open_store(spec: str) -> MessageStore:
    scheme, sep, rest = spec.partition(":")
    if not sep or scheme not in OPENERS:
        raise ConfigurationError(f"store spec {spec!r}: use one of {', '.join(s + '://...' for s in OPENERS)}")
    opener: Callable[[str, Mapping[str, str]], MessageStore] = load(OPENERS[scheme])
    target, _, query = rest.removeprefix("//").partition("?")
    return opener(target, dict(parse_qsl(query)))

"""The Cosmos client's connection pool is as large as a worker's concurrency (no network needed)."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from adapters.azure import store as cosmos_store
from adapters.azure.store import POOL_CONNECTIONS, pooled_transport_class


def test_the_transport_pools_as_many_connections_as_asked() -> None:
    transport = pooled_transport_class()(pool_size=24)
    transport.open()
    try:
        assert transport.session is not None
        for url in ("https://account.documents.example/", "http://127.0.0.1:8081/"):
            adapter = transport.session.get_adapter(url)
            assert isinstance(adapter, requests.adapters.HTTPAdapter)
            assert adapter._pool_maxsize == 24 and adapter._pool_connections == 24
            assert adapter.max_retries.total is False  # retries stay the SDK's, as in azure-core's own
    finally:
        transport.close()


def test_cosmos_client_gets_the_pooled_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}
    monkeypatch.setattr(cosmos_store, "CosmosClient", lambda endpoint, **kwargs: built.update(kwargs) or object())
    cosmos_store.cosmos_client("https://account.documents.example:443/", "a2V5")
    transport = built["transport"]
    assert isinstance(transport, pooled_transport_class()) and transport.pool_size == POOL_CONNECTIONS
    assert POOL_CONNECTIONS > 10  # more than requests' default, which the worker's threads outnumber

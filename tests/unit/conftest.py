from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from core.bootstrap import Overcast, bootstrap
from core.http import Request, Response
from core.model import HybridLogicalClock
from core.settings import Settings
from tests.fakes import InMemoryMessageStore, ManualClock, RecordingTransport
from tests.fixtures.oidc import AUTH_OFF
from tests.openapi import assert_response_conforms


class ApiClient:
    """Calls HttpApp.handle directly and holds every response to openapi.yaml."""

    def __init__(self, overcast: Overcast) -> None:
        self.overcast = overcast

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        check_spec: bool = True,
    ) -> Response:
        if json_body is not None:
            body = json.dumps(json_body).encode()
        request = Request(
            method, path, dict(query or {}), {k.lower(): v for k, v in (headers or {}).items()}, body or b""
        )
        response = self.overcast.app.handle(request)
        if check_spec:
            assert_response_conforms(method, path, response.status, response.headers, response.body)
        return response

    def get(self, path: str, **kw: Any) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Response:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Response:
        return self.request("DELETE", path, **kw)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store() -> InMemoryMessageStore:
    return InMemoryMessageStore()


@pytest.fixture
def overcast(store: InMemoryMessageStore, clock: ManualClock) -> Overcast:
    settings = Settings.from_env({"OVERCAST_PROVIDER": "aws", "OVERCAST_REGION": "eu-west-1", **AUTH_OFF})
    return bootstrap(settings, store, RecordingTransport(), HybridLogicalClock("aws", clock.now_ms))


@pytest.fixture
def api(overcast: Overcast) -> ApiClient:
    return ApiClient(overcast)

"""Authentication through every provider's HTTP entrypoint, each on its real emulator (moto
server, cosmosdb-server, the Firestore emulator, pouchdb-server) or the local server, with a real
OIDC issuer on 127.0.0.1: every forged or missing token is refused and stores nothing; a valid
token posts as its subject; only the author or an admin deletes; a user token never reaches
replication."""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.bootstrap import Overcast
from core.settings import Settings
from emulators.moto import EMULATOR_ENV, MotoServer
from emulators.oidc import OidcIssuer
from tests.auth_cases import assert_refused, bearer, refused_credentials
from tests.openapi import assert_response_conforms

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = "/channels/london/messages"
Call = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


@dataclass
class Deployed:
    overcast: Overcast
    call: Call

    def request(
        self, method: str, path: str, headers: dict[str, str], body: Any = None
    ) -> tuple[int, dict[str, str], bytes]:
        raw = b"" if body is None else json.dumps(body).encode()
        status, response_headers, response_body = self.call(
            method, path, {"content-type": "application/json", **headers}, raw
        )
        lowered = {k.lower(): v for k, v in response_headers.items()}
        assert_response_conforms(method, path.split("?")[0], status, lowered, response_body)
        return status, lowered, response_body

    def stored(self) -> list[Any]:
        return self.overcast.store.changes_since(None, 1000)


# -- one driver per provider: build the app on the emulator, call the real entrypoint -------------


def _aws(request: pytest.FixtureRequest, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Deployed:
    import handlers.aws

    moto: MotoServer = request.getfixturevalue("moto_server")
    table = request.getfixturevalue("dynamodb_table")
    for name, value in EMULATOR_ENV.items():  # botocore reads credentials from the process environment
        monkeypatch.setenv(name, value)
    built = handlers.aws.build(
        {**EMULATOR_ENV, **env, "OVERCAST_DYNAMODB_TABLE": table, "OVERCAST_DYNAMODB_ENDPOINT": moto.url}
    )
    monkeypatch.setattr(handlers.aws.overcast, "_app", built)

    def call(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        event = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": "",
            "headers": headers,
            "requestContext": {"http": {"method": method, "path": path}, "requestId": "r-1", "stage": "$default"},
            "body": body.decode(),
            "isBase64Encoded": False,
        }
        result = handlers.aws.http(event, None)
        return result["statusCode"], result.get("headers", {}), (result.get("body") or "").encode()

    return Deployed(built, call)


def _azure(request: pytest.FixtureRequest, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Deployed:
    import azure.functions as func

    import handlers.azure

    built = handlers.azure.build(env, container=request.getfixturevalue("cosmos_container"))
    monkeypatch.setattr(handlers.azure.overcast, "_app", built)
    monkeypatch.setenv("OVERCAST_AZURE_ROUTE_PREFIX", "")

    def call(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        req = func.HttpRequest(
            method,
            f"https://overcast.example.com{path}",
            headers=headers,
            route_params={"path": path.lstrip("/")},
            body=body,
        )
        response = handlers.azure.http(req, SimpleNamespace(invocation_id="i-1"))  # type: ignore[arg-type]
        return response.status_code, dict(response.headers), response.get_body()

    return Deployed(built, call)


def _gcp(request: pytest.FixtureRequest, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Deployed:
    import functions_framework

    import handlers.gcp

    built = handlers.gcp.build(env, client=request.getfixturevalue("firestore_db"))
    monkeypatch.setattr(handlers.gcp.overcast, "_app", built)
    client = functions_framework.create_app("http", str(ROOT / "main.py"), "http").test_client()

    def call(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        answer = client.open(path, method=method, headers=headers, data=body)
        return answer.status_code, dict(answer.headers), answer.get_data()

    return Deployed(built, call)


def _openwhisk(request: pytest.FixtureRequest, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Deployed:
    import handlers.openwhisk

    database = request.getfixturevalue("cloudant_db")
    built = handlers.openwhisk.build(
        {**env, "CLOUDANT_DB": database}, client=request.getfixturevalue("cloudant_client")
    )
    monkeypatch.setattr(handlers.openwhisk.overcast, "_app", built)

    def call(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        params = {
            "__ow_method": method.lower(),
            "__ow_path": path,
            "__ow_headers": {k.lower(): v for k, v in headers.items()},
            "__ow_query": "",
            "__ow_body": base64.b64encode(body).decode(),
        }
        result = handlers.openwhisk.http(params)
        return result["statusCode"], result.get("headers", {}), (result.get("body") or "").encode()

    return Deployed(built, call)


def _local(request: pytest.FixtureRequest, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Deployed:
    import handlers.local
    from adapters.local.http_server import LocalHttpServer

    tmp: Path = request.getfixturevalue("tmp_path")
    built = handlers.local.build(tmp / "local.sqlite", Settings.from_env(env))
    server = LocalHttpServer(built.app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    request.addfinalizer(lambda: (server.shutdown(), server.server_close(), built.store.close()))
    host, port = "127.0.0.1", server.server_address[1]

    def call(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    return Deployed(built, call)


DRIVERS = {
    "aws": pytest.param(_aws, marks=pytest.mark.emulator("moto"), id="aws"),
    "azure": pytest.param(_azure, marks=pytest.mark.emulator("cosmos"), id="azure"),
    "gcp": pytest.param(_gcp, marks=pytest.mark.emulator("firestore"), id="gcp"),
    "openwhisk": pytest.param(_openwhisk, marks=pytest.mark.emulator("pouchdb"), id="openwhisk"),
    "local": pytest.param(_local, id="local"),
}


@pytest.fixture(params=list(DRIVERS.values()))
def deployed(
    request: pytest.FixtureRequest, auth_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deployed]:
    driver = request.param
    yield driver(request, {**auth_env, "OVERCAST_LOG_LEVEL": "WARNING"}, monkeypatch)


@pytest.fixture
def dynamodb_server(moto_server: MotoServer) -> MotoServer:
    return moto_server


def test_forged_and_missing_tokens_change_nothing(deployed: Deployed, oidc_issuer: OidcIssuer) -> None:
    cases = refused_credentials(oidc_issuer)
    for name, authorization in cases.items():
        headers = {} if authorization is None else {"authorization": authorization}
        status, response_headers, body = deployed.request("POST", MESSAGES, headers, {"text": f"forged {name}"})
        assert_refused(status, response_headers, body, name)
    assert deployed.stored() == []

    status, _, body = deployed.request("POST", MESSAGES, bearer(oidc_issuer, "ada"), {"text": "Hello London"})
    assert status == 201 and json.loads(body)["author"] == "ada"
    message_id = json.loads(body)["id"]
    for name, authorization in cases.items():
        headers = {} if authorization is None else {"authorization": authorization}
        status, response_headers, body = deployed.request("DELETE", f"{MESSAGES}/{message_id}", headers)
        assert_refused(status, response_headers, body, name)
    [record] = deployed.stored()
    assert not record.deleted and record.author == "ada"


def test_author_rules(deployed: Deployed, oidc_issuer: OidcIssuer) -> None:
    status, _, body = deployed.request("POST", MESSAGES, bearer(oidc_issuer, "mallory"), {"author": "ada", "text": "x"})
    assert status == 403 and json.loads(body)["error"]["code"] == "author_mismatch"
    assert deployed.stored() == []

    status, _, body = deployed.request("POST", MESSAGES, bearer(oidc_issuer, "ada"), {"text": "mine"})
    assert status == 201
    path = f"{MESSAGES}/{json.loads(body)['id']}"
    status, _, body = deployed.request("DELETE", path, bearer(oidc_issuer, "mallory"))
    assert status == 403 and json.loads(body)["error"]["code"] == "forbidden"
    assert not deployed.stored()[0].deleted
    assert deployed.request("GET", path, {})[0] == 200  # reads are public
    assert deployed.request("DELETE", path, bearer(oidc_issuer, "ada"))[0] == 204
    assert deployed.stored()[0].deleted


def test_admin_scope_deletes_and_user_tokens_never_reach_replication(
    deployed: Deployed, oidc_issuer: OidcIssuer
) -> None:
    status, _, body = deployed.request("POST", MESSAGES, bearer(oidc_issuer, "ada"), {"text": "moderate me"})
    path = f"{MESSAGES}/{json.loads(body)['id']}"
    admin = bearer(oidc_issuer, "ops", scope="overcast:admin")
    batch = {"origin": "azure", "records": []}
    for route in ("/replication/batch", "/replication/digest", "/replication/fetch"):
        status, _, body = deployed.request("POST", route, admin, batch)
        assert status == 401, (route, body)
    assert deployed.request("DELETE", path, admin)[0] == 204

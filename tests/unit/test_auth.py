"""Authentication and the access rules through the HTTP app, with a real issuer on 127.0.0.1
(discovery + JWKS over HTTP, keys generated for the session) and the JWT adapter."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from adapters.jwt_auth import JwksCache, JwtAuthorizer, authorizer_for
from core.bootstrap import Overcast, bootstrap
from core.errors import ConfigurationError, InvalidToken
from core.model import HybridLogicalClock
from core.replication import BATCH_PATH
from core.settings import Settings
from emulators.oidc import OidcIssuer
from tests.auth_cases import AUDIENCE, assert_refused, bearer, refused_credentials
from tests.fakes import InMemoryMessageStore, ManualClock, RecordingTransport
from tests.unit.conftest import ApiClient

MESSAGES = "/channels/london/messages"


def make_api(env: dict[str, str], store: InMemoryMessageStore, clock: ManualClock) -> ApiClient:
    settings = Settings.from_env({"OVERCAST_PROVIDER": "aws", "OVERCAST_REGION": "eu-west-1", **env})
    overcast: Overcast = bootstrap(
        settings,
        store,
        RecordingTransport(),
        HybridLogicalClock("aws", clock.now_ms),
        authorizer=authorizer_for(settings.auth),
    )
    return ApiClient(overcast)


@pytest.fixture
def secured(auth_env: dict[str, str], store: InMemoryMessageStore, clock: ManualClock) -> ApiClient:
    return make_api(auth_env, store, clock)


def post(api: ApiClient, headers: dict[str, str], body: dict[str, Any] | None = None) -> Any:
    return api.post(MESSAGES, json_body=body or {"text": "Hello London"}, headers=headers)


def test_every_forged_or_missing_token_is_refused_and_stores_nothing(
    secured: ApiClient, oidc_issuer: OidcIssuer, store: InMemoryMessageStore
) -> None:
    cases = refused_credentials(oidc_issuer)
    for name, authorization in cases.items():
        headers = {} if authorization is None else {"authorization": authorization}
        response = post(secured, headers, {"author": "ada", "text": f"forged {name}"})
        assert_refused(response.status, response.headers, response.body, name)
    assert store.changes_since(None, 100) == []
    # DELETE with the same credentials: refused, and the message stays.
    created = post(secured, bearer(oidc_issuer, "ada")).json_body()
    for name, authorization in cases.items():
        headers = {} if authorization is None else {"authorization": authorization}
        response = secured.delete(f"{MESSAGES}/{created['id']}", headers=headers)
        assert_refused(response.status, response.headers, response.body, name)
    assert secured.get(f"{MESSAGES}/{created['id']}").status == 200


def test_missing_token_challenge_has_no_error_code(secured: ApiClient) -> None:
    response = post(secured, {})
    assert response.headers["www-authenticate"] == 'Bearer realm="overcast"'
    assert response.json_body()["error"]["code"] == "token_missing"


def test_valid_tokens_post_as_their_subject(secured: ApiClient, oidc_issuer: OidcIssuer) -> None:
    rs = post(secured, bearer(oidc_issuer, "ada"))
    assert rs.status == 201 and rs.json_body()["author"] == "ada"
    es = post(secured, {"authorization": "Bearer " + oidc_issuer.token("grace", AUDIENCE, algorithm="ES256")})
    assert es.status == 201 and es.json_body()["author"] == "grace"
    same = post(secured, bearer(oidc_issuer, "ada"), {"author": "ada", "text": "named myself"})
    assert same.status == 201 and same.json_body()["author"] == "ada"


def test_a_body_author_other_than_the_token_is_refused(
    secured: ApiClient, oidc_issuer: OidcIssuer, store: InMemoryMessageStore
) -> None:
    response = post(secured, bearer(oidc_issuer, "mallory"), {"author": "ada", "text": "I am ada"})
    assert response.status == 403 and response.json_body()["error"]["code"] == "author_mismatch"
    assert store.changes_since(None, 10) == []


def test_only_the_author_or_an_admin_deletes(secured: ApiClient, oidc_issuer: OidcIssuer) -> None:
    message = post(secured, bearer(oidc_issuer, "ada")).json_body()
    path = f"{MESSAGES}/{message['id']}"
    other = secured.delete(path, headers=bearer(oidc_issuer, "mallory", scope="overcast:write"))
    assert other.status == 403 and other.json_body()["error"]["code"] == "forbidden"
    assert secured.get(path).status == 200
    assert secured.delete(path, headers=bearer(oidc_issuer, "ada")).status == 204
    assert secured.get(path).status == 404

    second = post(secured, bearer(oidc_issuer, "ada")).json_body()
    admin = secured.delete(f"{MESSAGES}/{second['id']}", headers=bearer(oidc_issuer, "ops", scope="overcast:admin"))
    assert admin.status == 204


def test_required_scopes(oidc_issuer: OidcIssuer, store: InMemoryMessageStore, clock: ManualClock) -> None:
    api = make_api(oidc_issuer.env(AUDIENCE, OVERCAST_AUTH_REQUIRED_SCOPES="messages:write"), store, clock)
    lacking = post(api, bearer(oidc_issuer, "ada", scope="messages:read"))
    assert lacking.status == 403 and lacking.json_body()["error"]["code"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in lacking.headers["www-authenticate"]
    assert 'scope="messages:write"' in lacking.headers["www-authenticate"]
    assert store.changes_since(None, 10) == []
    assert post(api, bearer(oidc_issuer, "ada", scope="messages:read messages:write")).status == 201
    assert post(api, bearer(oidc_issuer, "ada", permissions=["messages:write"])).status == 201  # Auth0 RBAC


def test_reads_are_public_unless_configured(
    secured: ApiClient, oidc_issuer: OidcIssuer, store: InMemoryMessageStore, clock: ManualClock
) -> None:
    assert secured.get(MESSAGES).status == 200
    private = make_api(oidc_issuer.env(AUDIENCE, OVERCAST_AUTH_PUBLIC_READS="false"), store, clock)
    refused = private.get(MESSAGES)
    assert_refused(refused.status, refused.headers, refused.body, "private read")
    assert private.get(MESSAGES, headers=bearer(oidc_issuer, "ada")).status == 200
    assert private.get("/health").status == 200  # Route 53 never carries a token


def test_replication_is_never_reachable_with_a_user_token(secured: ApiClient, oidc_issuer: OidcIssuer) -> None:
    body = {"origin": "azure", "records": []}
    for path in (BATCH_PATH, "/replication/digest", "/replication/fetch"):
        response = secured.post(path, json_body=body, headers=bearer(oidc_issuer, "ops", scope="overcast:admin"))
        assert response.status == 401, path
        assert response.json_body()["error"]["code"].startswith(("signature_", "unknown_peer")), response.body


def test_unconfigured_auth_refuses_writes_naming_the_setting(
    store: InMemoryMessageStore, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    api = make_api({}, store, clock)
    response = api.post(MESSAGES, json_body={"author": "ada", "text": "hi"})
    assert response.status == 503 and response.json_body()["error"]["code"] == "misconfigured"
    logged = [json.dumps(getattr(r, "fields", {})) + r.getMessage() for r in caplog.records]
    assert any("OVERCAST_AUTH_ISSUER" in line and "OVERCAST_AUTH_DISABLED" in line for line in logged), logged
    assert api.get(MESSAGES).status == 200 and api.get("/health/deep").status == 200
    assert store.changes_since(None, 10) == []


def test_an_unreachable_issuer_is_a_503_not_a_401(store: InMemoryMessageStore, clock: ManualClock) -> None:
    issuer = OidcIssuer().start()
    token = issuer.token("ada", AUDIENCE)
    env = issuer.env(AUDIENCE)
    issuer.stop()
    api = make_api(env, store, clock)
    response = api.post(MESSAGES, json_body={"text": "hi"}, headers={"authorization": "Bearer " + token})
    assert response.status == 503 and "retry-after" in response.headers
    assert store.changes_since(None, 10) == []


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"OVERCAST_AUTH_ISSUER": "https://login.example.com/"}, "OVERCAST_AUTH_AUDIENCE"),
        ({"OVERCAST_AUTH_ISSUER": "http://login.example.com/", "OVERCAST_AUTH_AUDIENCE": "a"}, "https"),
        ({"OVERCAST_AUTH_ISSUER": "https://login.example.com/", "OVERCAST_AUTH_DISABLED": "true"}, "both"),
        ({"OVERCAST_AUTH_ALGORITHMS": "RS256 HS256"}, "HS256"),
        ({"OVERCAST_AUTH_ALGORITHMS": "none"}, "none"),
        ({"OVERCAST_AUTH_DISABLED": "maybe"}, "true or false"),
    ],
)
def test_auth_settings_are_validated(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        Settings.from_env(env)


def test_key_rotation_refetches_once_within_bounds(oidc_issuer: OidcIssuer) -> None:
    issuer = OidcIssuer().start()
    try:
        now = [1000.0]
        settings = Settings.from_env(issuer.env(AUDIENCE)).auth
        jwks = JwksCache(settings.issuer, min_refetch_s=30, monotonic=lambda: now[0])
        authorizer = JwtAuthorizer(settings, jwks)
        assert authorizer.authenticate("Bearer " + issuer.token("ada", AUDIENCE)).author == "ada"
        assert issuer.jwks_requests == 1 and issuer.discovery_requests == 1
        for _ in range(20):  # cached: no fetch per request
            authorizer.authenticate("Bearer " + issuer.token("ada", AUDIENCE))
        assert issuer.jwks_requests == 1

        # Unknown kids in a flood: at most one refetch per cooldown.
        stranger = OidcIssuer()
        strangers = [stranger.sign(issuer.claims("eve", AUDIENCE)) for _ in range(5)]
        stranger._server.server_close()
        now[0] += 31
        for token in strangers:
            with pytest.raises(InvalidToken):
                authorizer.authenticate("Bearer " + token)
        assert issuer.jwks_requests == 2

        # The issuer rotates its key: a token under the new kid is accepted after the cooldown.
        issuer.rotate("RS256")
        rotated = "Bearer " + issuer.token("ada", AUDIENCE)
        with pytest.raises(InvalidToken):  # within the cooldown the new kid is not fetched yet
            authorizer.authenticate(rotated)
        assert issuer.jwks_requests == 2
        now[0] += 31
        assert authorizer.authenticate(rotated).author == "ada"
        assert issuer.jwks_requests == 3
    finally:
        issuer.stop()


@pytest.mark.parametrize("module", ["core.app", "core.bootstrap", "adapters.jwt_auth", "handlers.local"])
def test_jwt_and_cryptography_stay_off_the_import_path(module: str) -> None:
    code = f"import sys, {module}; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('jwt', 'cryptography'))))"
    out = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == [], f"importing {module} imported {out}"

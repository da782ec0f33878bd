"""Forged, broken and missing credentials, built against a real test issuer: every provider's
tests run the same catalogue and expect each one refused with nothing stored."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from emulators.oidc import OidcIssuer, SigningKey

AUDIENCE = "overcast-api"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())


def refused_credentials(issuer: OidcIssuer, subject: str = "ada") -> dict[str, str | None]:
    """name → Authorization header value (None: no header). Each must get a 401."""
    now = int(time.time())
    good = issuer.claims(subject, AUDIENCE)
    rsa = issuer.key("RS256")

    # alg "none": no signature at all.
    alg_none = _segments({"alg": "none", "typ": "JWT"}, good) + "."
    # HS256 "signed" with the issuer's public key as the HMAC secret (key confusion).
    signing_input = _segments({"alg": "HS256", "typ": "JWT", "kid": rsa.kid}, good)
    confusion_mac = hmac.new(rsa.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    hs256_public_key = signing_input + "." + _b64(confusion_mac)
    # A valid signature from a key the issuer never published, under a kid it does not know.
    stranger = SigningKey("RS256")
    import jwt

    unknown_kid = jwt.encode(good, stranger.private, algorithm="RS256", headers={"kid": stranger.kid})
    # A key the issuer does not know, claiming the issuer's own kid.
    wrong_key = jwt.encode(good, stranger.private, algorithm="RS256", headers={"kid": rsa.kid})
    # A valid token whose payload was edited afterwards (the signature no longer matches).
    header, _, signature = issuer.token(subject, AUDIENCE).split(".")
    forged_payload = _b64(json.dumps({**good, "sub": "mallory", "scope": "overcast:admin"}).encode())
    tampered = f"{header}.{forged_payload}.{signature}"

    return {
        "missing": None,
        "basic scheme": "Basic YWRhOnNlY3JldA==",
        "empty bearer": "Bearer ",
        "not a jwt": "Bearer not-a-jwt",
        "expired": "Bearer " + issuer.sign({**good, "iat": now - 3600, "nbf": now - 3600, "exp": now - 600}),
        "not yet valid": "Bearer " + issuer.sign({**good, "nbf": now + 600, "exp": now + 1200}),
        "no exp": "Bearer " + issuer.sign({k: v for k, v in good.items() if k != "exp"}),
        "wrong audience": "Bearer " + issuer.token(subject, "another-api"),
        "wrong issuer": "Bearer " + issuer.sign({**good, "iss": "https://issuer.example.com/"}),
        "alg none": "Bearer " + alg_none,
        "hs256 with public key": "Bearer " + hs256_public_key,
        "unknown kid": "Bearer " + unknown_kid,
        "wrong key for kid": "Bearer " + wrong_key,
        "tampered payload": "Bearer " + tampered,
        "huge token": "Bearer " + issuer.sign({**good, "pad": "x" * 20_000}),
    }


def bearer(issuer: OidcIssuer, subject: str = "ada", **claims: Any) -> dict[str, str]:
    """Headers carrying a valid token for ``subject``."""
    return {"authorization": "Bearer " + issuer.token(subject, AUDIENCE, **claims)}


def assert_refused(status: int, headers: dict[str, str], body: bytes, name: str) -> None:
    """A 401 JSON error with an RFC 6750 challenge."""
    lowered = {k.lower(): v for k, v in headers.items()}
    assert status == 401, f"{name}: {status} {body[:300]!r}"
    challenge = lowered.get("www-authenticate", "")
    assert challenge.startswith("Bearer "), f"{name}: WWW-Authenticate {challenge!r}"
    code = json.loads(body)["error"]["code"]
    assert code in {"token_missing", "invalid_token"}, f"{name}: {code}"
    if code == "invalid_token":
        assert 'error="invalid_token"' in challenge, f"{name}: {challenge}"

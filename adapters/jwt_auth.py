"""Bearer JWTs verified against an OIDC issuer's JWKS (Auth0, Entra ID, Cognito, Keycloak ...).

PyJWT with cryptography does every cryptographic step; this module decides which key and which
rules: the algorithm must be on the allow-list (asymmetric only, so ``none`` and HS256-with-the-
public-key are refused before any key is touched), the key comes from the issuer's JWKS by
``kid``, and ``iss``, ``aud``, ``exp`` (required), ``nbf`` and ``iat`` are checked with a small
leeway.

The JWKS is fetched over HTTPS (http only from a loopback test issuer) with a timeout, cached,
and refreshed when it grows old or a token names an unknown ``kid`` (key rotation) — at most once
per ``min_refetch_s``, so a flood of tokens with made-up kids cannot turn into a flood of fetches.
A refresh that fails keeps the keys already held.

``jwt`` and ``cryptography`` are imported on the first verification, not with this module: a
cold start that serves only reads never pays for them.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from core.auth import AuthSettings, scopes_of
from core.errors import ConfigurationError, InvalidToken, Unavailable
from core.logs import get_logger, log
from core.ports import Authorizer, Principal
from core.settings import is_secure_url

logger = get_logger("auth")

#: Largest JWKS or discovery document read (real ones are a few KB).
MAX_DOCUMENT_BYTES = 256 * 1024

Fetch = Callable[[str, float], bytes]


def fetch_json_document(url: str, timeout_s: float) -> bytes:
    """GET a small JSON document over HTTPS (or loopback http), bounded in time and size."""
    if not is_secure_url(url):
        raise ConfigurationError(f"refusing to fetch signing keys from {url!r}: use https://")
    request = urllib.request.Request(url, headers={"accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # the scheme is checked above
            body: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise Unavailable(f"cannot fetch {url}: {exc}", retry_after=5, code="unavailable") from exc
    if len(body) > MAX_DOCUMENT_BYTES:
        raise Unavailable(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes", retry_after=30)
    return body


class JwksCache:
    """The issuer's keys by ``kid``, fetched on first use and refreshed within bounds."""

    def __init__(
        self,
        issuer: str,
        jwks_url: str = "",
        *,
        fetch: Fetch = fetch_json_document,
        timeout_s: float = 3.0,
        max_age_s: float = 3600.0,
        min_refetch_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.jwks_url = jwks_url
        self._fetch = fetch
        self.timeout_s = timeout_s
        self.max_age_s = max_age_s
        self.min_refetch_s = min_refetch_s
        self._monotonic = monotonic
        self._keys: dict[str | None, Any] = {}  # kid → PyJWK
        self._fetched_at: float | None = None  # last successful download
        self._attempted_at: float | None = None  # last download attempted
        self._lock = threading.Lock()
        self.fetches = 0  # JWKS downloads so far (tests and logs)

    def key(self, kid: str | None) -> Any:
        """The PyJWK for ``kid``; raises InvalidToken when the issuer has no such key."""
        now = self._monotonic()
        keys = self._keys
        expired = self._fetched_at is None or now - self._fetched_at > self.max_age_s
        if expired or kid not in keys:
            keys = self._refresh(now)
        if kid in keys:
            return keys[kid]
        if kid is None and len(keys) == 1:  # a single-key issuer may omit kid
            return next(iter(keys.values()))
        raise InvalidToken("the token's signing key is not one of the issuer's keys")

    def _refresh(self, now: float) -> dict[str | None, Any]:
        with self._lock:
            # Bounded: at most one download per cooldown, whatever kids the tokens name (and a
            # thread that waited on the lock finds the keys another one just fetched).
            cooldown = self.min_refetch_s if self._keys else min(self.min_refetch_s, 5.0)
            if self._attempted_at is not None and now - self._attempted_at < cooldown:
                if not self._keys:
                    raise Unavailable("the issuer's signing keys are not available yet", retry_after=cooldown)
                return self._keys
            self._attempted_at = now
            try:
                self._keys = self._download()
                self._fetched_at = now
            except Unavailable as error:  # ConfigurationError included
                if not self._keys:
                    raise
                log(logger, logging.WARNING, "JWKS refresh failed; keeping cached keys", error=error.message)
            return self._keys

    def _download(self) -> dict[str | None, Any]:
        import jwt  # first verification only: keeps PyJWT and cryptography off the cold path

        if not jwt.algorithms.has_crypto:  # PyJWT without cryptography can verify no RS/ES token
            raise ConfigurationError("cryptography is not installed: bearer tokens cannot be verified (PyJWT[crypto])")
        url = self.jwks_url or self._discover()
        document = _json_object(self._fetch(url, self.timeout_s), url)
        self.fetches += 1
        keys: dict[str | None, Any] = {}
        for entry in document.get("keys") or []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") not in {"RSA", "EC"}:  # never a symmetric ("oct") key
                continue
            try:
                keys[entry.get("kid")] = jwt.PyJWK(entry)
            except jwt.PyJWTError as exc:  # unusable or unsupported key type: skip it, keep the rest
                log(logger, logging.WARNING, "skipping JWKS key", kid=entry.get("kid"), error=str(exc))
        if not keys:
            raise Unavailable(f"{url} holds no usable signing key", retry_after=30)
        log(logger, logging.INFO, "JWKS fetched", url=url, keys=len(keys))
        return keys

    def _discover(self) -> str:
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = _json_object(self._fetch(url, self.timeout_s), url)
        if document.get("issuer") != self.issuer:  # OpenID Connect Discovery 1.0, section 4.3
            raise ConfigurationError(f"{url} names issuer {document.get('issuer')!r}, not {self.issuer!r}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not is_secure_url(jwks_uri):
            raise ConfigurationError(f"{url}: jwks_uri {jwks_uri!r} is not an https:// URL")
        self.jwks_url = jwks_uri
        return jwks_uri


class JwtAuthorizer(Authorizer):
    """Verifies RS256/ES256 (or other allowed asymmetric) bearer JWTs from one issuer."""

    def __init__(self, settings: AuthSettings, jwks: JwksCache | None = None) -> None:
        self.settings = settings
        self.algorithms = tuple(settings.algorithms)
        self.jwks = jwks or JwksCache(settings.issuer, settings.jwks_url)

    def _verify(self, token: str) -> Principal:
        import jwt  # first verification only: keeps PyJWT and cryptography off the cold path

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("the bearer token is not a JWT") from exc
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:  # before any key: no "none", no HS256 with a public key
            raise InvalidToken(f"algorithm {algorithm!r} is not accepted")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("the token's kid is not a string")
        jwk = self.jwks.key(kid)
        if jwk.algorithm_name != algorithm and not _same_family(jwk.algorithm_name, algorithm):
            raise InvalidToken("the token's algorithm does not match its key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                jwk.key,
                algorithms=[algorithm],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(_reason(exc)) from exc
        subject = claims.get("sub")
        author = claims.get(self.settings.author_claim)
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("the token has no subject")
        if not isinstance(author, str) or not author.strip():
            raise InvalidToken(f"the token has no {self.settings.author_claim} claim to use as author")
        return Principal(subject=subject, author=author, scopes=scopes_of(claims))


def authorizer_for(settings: AuthSettings) -> JwtAuthorizer | None:
    """The token verifier for a handler's ``bootstrap`` call: None unless an issuer is set (then
    core refuses writes with a 503 naming the setting, or lets them through when disabled)."""
    if settings.disabled or not settings.configured:
        return None
    return JwtAuthorizer(settings)


def _same_family(key_algorithm: str, token_algorithm: str) -> bool:
    """An RSA JWK without ``alg`` defaults to RS256 in PyJWT but may sign RS384/PS256 too."""
    return key_algorithm[:2] in {"RS", "PS"} and token_algorithm[:2] in {"RS", "PS"}


def _reason(exc: Exception) -> str:
    import jwt

    if isinstance(exc, jwt.ExpiredSignatureError):
        return "the token has expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "the token is not valid yet"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "the token is for another audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "the token is from another issuer"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "the token's signature does not verify"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"the token lacks the {exc.claim} claim"
    return "the token is invalid"


def _json_object(body: bytes, url: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Unavailable(f"{url} did not answer JSON", retry_after=30) from exc
    if not isinstance(document, dict):
        raise Unavailable(f"{url} did not answer a JSON object", retry_after=30)
    return document

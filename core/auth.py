"""Who may do what: the access rules, the same on every provider because they live here.

- Reading (health, listings, single messages) is public unless ``OVERCAST_AUTH_PUBLIC_READS`` is
  false; then a listing or a read needs a valid token too. Health is always public (Route 53).
- Posting needs a valid bearer token carrying every required scope. The author of the message is
  the token's author claim (``sub`` by default), never a body field a client can forge: a body
  ``author`` that differs from the token's is refused (403), one that matches is accepted, and
  it may be omitted.
- Deleting needs a valid token whose author is the message's author, or the admin scope.
- ``/replication/*`` never looks at a user token: peers sign with the pair's HMAC secret.

Verifying a token is the ``Authorizer`` port's job (``core.ports``); a JWT/OIDC adapter
implements it. With auth explicitly disabled (local demos) writes need no token and the body's
author is taken as before; with auth neither configured nor disabled, every write is a 503 that
names the missing setting — never an open write path by accident.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from core.errors import ConfigurationError, Forbidden, InsufficientScope
from core.ports import Authorizer, Principal

#: The asymmetric algorithms a deployment may allow. HS* (shared secrets) and ``none`` are never
#: accepted: a public JWKS must not double as an HMAC key.
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})


@dataclass(frozen=True)
class AuthSettings:
    """The ``OVERCAST_AUTH_*`` settings (validated by ``core.settings``)."""

    issuer: str = ""
    audience: str = ""
    jwks_url: str = ""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    required_scopes: frozenset[str] = field(default_factory=frozenset)
    admin_scope: str = "overcast:admin"
    author_claim: str = "sub"
    public_reads: bool = True
    disabled: bool = False
    leeway_s: int = 30

    @property
    def configured(self) -> bool:
        return bool(self.issuer)


class DisabledAuthorizer(Authorizer):
    """Auth explicitly switched off (``OVERCAST_AUTH_DISABLED=true``): nobody is identified, and
    the access policy lets every request through. Bootstrap logs a warning when it is used."""

    def _verify(self, token: str) -> Principal:  # never called: the policy does not ask
        raise AssertionError("DisabledAuthorizer verifies nothing")


class UnconfiguredAuthorizer(Authorizer):
    """No issuer and not disabled, or an issuer the handler passed no verifier for: every request
    that needs a token is a 503 naming what to set."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def authenticate(self, authorization: str | None) -> Principal:
        raise ConfigurationError(self.reason)

    def _verify(self, token: str) -> Principal:
        raise ConfigurationError(self.reason)


NOT_CONFIGURED = (
    "authentication is not configured: set OVERCAST_AUTH_ISSUER and OVERCAST_AUTH_AUDIENCE, "
    "or OVERCAST_AUTH_DISABLED=true for a local demo"
)


def authorizer_for(settings: AuthSettings, verifier: Authorizer | None) -> Authorizer:
    """The authorizer a deployment runs with: the handler's verifier when auth is configured."""
    if settings.disabled:
        return DisabledAuthorizer()
    if not settings.configured:
        return UnconfiguredAuthorizer(NOT_CONFIGURED)
    if verifier is None:
        return UnconfiguredAuthorizer(
            "OVERCAST_AUTH_ISSUER is set but this handler builds no token verifier (pass one to bootstrap)"
        )
    return verifier


class AccessPolicy:
    """The rules above, applied by the HTTP app before any use case runs."""

    def __init__(self, authorizer: Authorizer, settings: AuthSettings) -> None:
        self.authorizer = authorizer
        self.settings = settings
        self.disabled = isinstance(authorizer, DisabledAuthorizer)

    def reader(self, authorization: str | None) -> Principal | None:
        """Raises unless this request may read messages."""
        if self.disabled or self.settings.public_reads:
            return None
        return self.authorizer.authenticate(authorization)

    def writer(self, authorization: str | None) -> Principal | None:
        """The verified principal of a write (None when auth is disabled); raises 401/403/503."""
        if self.disabled:
            return None
        principal = self.authorizer.authenticate(authorization)
        missing = self.settings.required_scopes - principal.scopes
        if missing:
            raise InsufficientScope(sorted(missing))
        return principal

    def author(self, principal: Principal | None, claimed: object) -> object:
        """The author to store: the token's, or the body's when auth is disabled."""
        if principal is None:
            return claimed
        if claimed is not None and claimed != principal.author:
            raise Forbidden("author must be omitted or equal the token's author", code="author_mismatch")
        return principal.author

    def may_delete(self, principal: Principal | None, author: str) -> None:
        """Raises Forbidden unless the principal wrote the message or holds the admin scope."""
        if principal is None:
            return
        if principal.author == author:
            return
        if self.settings.admin_scope and self.settings.admin_scope in principal.scopes:
            return
        raise Forbidden("only the message's author or an admin may delete it")


def scopes_of(claims: dict[str, object]) -> frozenset[str]:
    """OAuth ``scope`` (space separated), Azure AD ``scp`` and Auth0 RBAC ``permissions``."""
    found: set[str] = set()
    for name in ("scope", "scp", "permissions"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, Iterable):
            found.update(item for item in value if isinstance(item, str))
    return frozenset(found)

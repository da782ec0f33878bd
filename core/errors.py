"""One error taxonomy for the whole kit.

Adapters translate every vendor exception into one of these at their boundary
(``raise ... from exc``); the HTTP layer turns them into JSON errors with stable codes.
"""

from __future__ import annotations


class OvercastError(Exception):
    """Base class. ``code`` is stable and documented in openapi.yaml; ``status`` is the HTTP status."""

    code = "internal"
    status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ValidationError(OvercastError):
    code = "invalid_request"
    status = 400


class PayloadTooLarge(OvercastError):
    code = "payload_too_large"
    status = 413


class NotFound(OvercastError):
    code = "not_found"
    status = 404


class MethodNotAllowed(OvercastError):
    code = "method_not_allowed"
    status = 405

    def __init__(self, message: str, *, allow: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.allow = allow


class AlreadyExists(OvercastError):
    """A create hit an existing id. Raised by stores; the service decides what it means."""

    code = "already_exists"
    status = 409


class Conflict(OvercastError):
    code = "conflict"
    status = 409


class IdempotencyMismatch(OvercastError):
    """The same Idempotency-Key was reused with a different request body."""

    code = "idempotency_key_reused"
    status = 422


class Unauthorized(OvercastError):
    code = "unauthorized"
    status = 401


class ClockSkew(Unauthorized):
    """A correctly signed peer request whose timestamp is outside the freshness window: the
    sender's clock is off by ``offset_s`` (or the request is an old one replayed). Named apart
    from a bad signature, and the offset is in the answer, so both sides can say what is wrong."""

    code = "clock_skew"

    def __init__(self, message: str, *, offset_s: int) -> None:
        super().__init__(message)
        self.offset_s = offset_s


class Unauthenticated(Unauthorized):
    """No usable bearer token (RFC 6750). The response carries a ``WWW-Authenticate`` challenge:
    without an error code when the request had no token, ``invalid_token`` when it had a bad one."""

    code = "token_missing"
    bearer_error: str | None = None

    def challenge(self) -> str:
        return _bearer_challenge(self.bearer_error, self.message)


class InvalidToken(Unauthenticated):
    """A bearer token that fails verification (signature, issuer, audience, expiry, algorithm...)."""

    code = "invalid_token"
    bearer_error = "invalid_token"


class Forbidden(OvercastError):
    """A verified caller who may not do this (not the message's author, author mismatch)."""

    code = "forbidden"
    status = 403


class InsufficientScope(Forbidden):
    code = "insufficient_scope"

    def __init__(self, scopes: list[str]) -> None:
        super().__init__(f"the token lacks the scope(s): {' '.join(scopes)}")
        self.scopes = scopes

    def challenge(self) -> str:
        return _bearer_challenge("insufficient_scope", self.message) + f', scope="{" ".join(self.scopes)}"'


def _bearer_challenge(error: str | None, description: str) -> str:
    if error is None:  # RFC 6750 3.1: no error code when the request carried no credentials
        return 'Bearer realm="overcast"'
    # error_description is limited to %x20-21 / %x23-5B / %x5D-7E: no quote, no backslash.
    text = "".join(c for c in description if 0x20 <= ord(c) <= 0x7E and c not in '"\\')[:200]
    return f'Bearer realm="overcast", error="{error}", error_description="{text}"'


class Unavailable(OvercastError):
    """A dependency (the store, a peer) cannot answer now. Clients should retry after ``retry_after``."""

    code = "unavailable"
    status = 503

    def __init__(self, message: str, *, retry_after: float = 1.0, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class ConfigurationError(Unavailable):
    """The deployment is wired wrongly (missing table, bad endpoint, missing secret).

    It is still a 503 to callers — a failover health check must see it as unhealthy — but its
    code and log line say exactly what to fix.
    """

    code = "misconfigured"

    def __init__(self, message: str, *, retry_after: float = 30.0) -> None:
        super().__init__(message, retry_after=retry_after)

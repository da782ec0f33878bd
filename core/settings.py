"""Settings from environment variables: one table of names, defaults and meanings, read once.

``python -m core.settings`` prints the table (the README's copy is generated from it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.auth import ASYMMETRIC_ALGORITHMS, AuthSettings
from core.errors import ConfigurationError, ValidationError
from core.metrics import FORMATS
from core.model import ORIGIN_RE, Limits
from core.ports import SecretStore


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    meaning: str


SETTINGS: tuple[Setting, ...] = (
    Setting("OVERCAST_PROVIDER", "local", "Provider name reported in served_by and logs (aws, azure, gcp, local)."),
    Setting("OVERCAST_REGION", "local", "Region reported in served_by and logs."),
    Setting(
        "OVERCAST_ORIGIN", "", "This replica's origin id in versions, 1-32 of [a-z0-9-]; defaults to the provider."
    ),
    Setting("OVERCAST_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR."),
    Setting(
        "OVERCAST_DEEP_HEALTH_TIMEOUT_MS", "1500", "Bound on the store round trip in /health/deep (Route 53 waits 2 s)."
    ),
    Setting("OVERCAST_MAX_AUTHOR_CHARS", "64", "Longest author name accepted."),
    Setting("OVERCAST_MAX_TEXT_CHARS", "4000", "Longest message text accepted (characters)."),
    Setting("OVERCAST_MAX_BODY_BYTES", "65536", "Largest request body accepted."),
    Setting("OVERCAST_PAGE_SIZE", "20", "Default page size of listings (the maximum is 100)."),
    Setting(
        "OVERCAST_PEERS",
        "[]",
        'Replication peers as JSON: [{"name": "azure", "url": "https://host/api", "secret_env": "VAR"}]. '
        "name is the peer's origin id; secret_env names the variable holding the pair's shared secret.",
    ),
    Setting(
        "OVERCAST_REPLICATION_SECRET",
        "",
        "Shared secret for peers that name no secret_env (inject from a secret store).",
    ),
    Setting(
        "OVERCAST_REPLICATION_SECRET_ID",
        "",
        "Instead of OVERCAST_REPLICATION_SECRET: the secret's id in the platform's secret store (AWS Secrets "
        "Manager name or ARN), read when the app is built and cached per process.",
    ),
    Setting(
        "OVERCAST_REPLICATION_MAX_SKEW_S",
        "60",
        "Freshness window of signed peer requests: one further from this clock is refused as clock_skew "
        "(with the offset). It bounds how long a captured request stays usable (replays apply nothing new).",
    ),
    Setting("OVERCAST_REPLICATION_TIMEOUT_S", "5", "Timeout of one push to a peer."),
    Setting(
        "OVERCAST_REPLICATION_LAG_BOUND_S",
        "60",
        "Replication lag (origin write to apply here) above which /replication/status says degraded.",
    ),
    Setting(
        "OVERCAST_METRICS_FORMAT",
        "",
        "Metric lines: emf (CloudWatch), appinsights, cloudlogging, log or off; default: the provider's own.",
    ),
    Setting(
        "OVERCAST_AUTH_ISSUER",
        "",
        "OIDC issuer of the bearer tokens writes need (https://; e.g. an Auth0 tenant's URL, trailing slash "
        "included). Unset and auth not disabled: every write answers 503 misconfigured.",
    ),
    Setting(
        "OVERCAST_AUTH_AUDIENCE",
        "",
        "The audience (aud) tokens must carry: the API identifier. Required with an issuer.",
    ),
    Setting(
        "OVERCAST_AUTH_JWKS_URL",
        "",
        "Where the issuer's signing keys are; default: the jwks_uri of the issuer's /.well-known/openid-configuration.",
    ),
    Setting(
        "OVERCAST_AUTH_ALGORITHMS", "RS256 ES256", "Signature algorithms accepted (asymmetric only; never HS* or none)."
    ),
    Setting("OVERCAST_AUTH_REQUIRED_SCOPES", "", "Scopes (space separated) every write's token must carry."),
    Setting("OVERCAST_AUTH_ADMIN_SCOPE", "overcast:admin", "Scope that may delete anyone's message."),
    Setting(
        "OVERCAST_AUTH_AUTHOR_CLAIM",
        "sub",
        "Token claim stored as the message's author and compared on delete: sub, or a name claim unique per user.",
    ),
    Setting("OVERCAST_AUTH_PUBLIC_READS", "true", "false: listing and reading messages need a valid token too."),
    Setting("OVERCAST_AUTH_LEEWAY_S", "30", "Clock skew allowed on a token's exp, nbf and iat."),
    Setting(
        "OVERCAST_AUTH_DISABLED",
        "false",
        "true: writes need no token and the body's author is stored (local demos only; logged as a warning).",
    ),
)


@dataclass(frozen=True)
class Peer:
    name: str
    url: str
    secret: str

    def __repr__(self) -> str:  # never print secrets
        return f"Peer(name={self.name!r}, url={self.url!r})"


@dataclass(frozen=True)
class Settings:
    provider: str
    region: str
    origin: str
    log_level: str
    deep_health_timeout_s: float
    limits: Limits
    peers: tuple[Peer, ...]
    replication_max_skew_s: int
    replication_timeout_s: float
    replication_lag_bound_s: float = 60.0
    metrics_format: str = ""
    auth: AuthSettings = field(default_factory=AuthSettings)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, secrets: SecretStore | None = None, **overrides: Any
    ) -> Settings:
        """Read and validate every setting; raises ConfigurationError naming the bad variable.
        ``secrets`` reads OVERCAST_REPLICATION_SECRET_ID (only if a peer needs it)."""
        env = os.environ if environ is None else environ

        def raw(name: str) -> str:
            spec = next(s for s in SETTINGS if s.env == name)
            return env.get(name, spec.default)

        provider = raw("OVERCAST_PROVIDER").strip() or "local"
        origin = raw("OVERCAST_ORIGIN").strip() or provider
        if not ORIGIN_RE.match(origin):
            raise ConfigurationError(f"OVERCAST_ORIGIN={origin!r}: use 1-32 of [a-z0-9-]")
        level = raw("OVERCAST_LOG_LEVEL").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigurationError(f"OVERCAST_LOG_LEVEL={level!r}: use DEBUG, INFO, WARNING or ERROR")
        page_size = _number(raw, "OVERCAST_PAGE_SIZE", int, 1, 100)
        limits = Limits(
            max_author_chars=_number(raw, "OVERCAST_MAX_AUTHOR_CHARS", int, 1, 1024),
            max_text_chars=_number(raw, "OVERCAST_MAX_TEXT_CHARS", int, 1, 64_000),
            max_body_bytes=_number(raw, "OVERCAST_MAX_BODY_BYTES", int, 1024, 1024 * 1024),
            default_page_size=page_size,
        )
        values: dict[str, Any] = {
            "provider": provider,
            "region": raw("OVERCAST_REGION").strip() or "local",
            "origin": origin,
            "log_level": level,
            "deep_health_timeout_s": _number(raw, "OVERCAST_DEEP_HEALTH_TIMEOUT_MS", int, 50, 60_000) / 1000,
            "limits": limits,
            "peers": _peers(
                raw("OVERCAST_PEERS"),
                env,
                _default_secret(raw, secrets, bool(raw("OVERCAST_PEERS").strip("[] "))),
                origin,
            ),
            "replication_max_skew_s": _number(raw, "OVERCAST_REPLICATION_MAX_SKEW_S", int, 1, 86_400),
            "replication_timeout_s": _number(raw, "OVERCAST_REPLICATION_TIMEOUT_S", float, 0.1, 120),
            "replication_lag_bound_s": _number(raw, "OVERCAST_REPLICATION_LAG_BOUND_S", float, 0.1, 86_400),
            "metrics_format": _metrics_format(raw("OVERCAST_METRICS_FORMAT")),
            "auth": _auth(raw),
        }
        values.update(overrides)
        return cls(**values)

    def peer(self, name: str) -> Peer | None:
        return next((p for p in self.peers if p.name == name), None)


def _number(raw: Callable[[str], str], name: str, kind: type, low: float, high: float) -> Any:
    text = raw(name)
    try:
        value = kind(text)
    except ValueError:
        raise ConfigurationError(f"{name}={text!r} is not a number") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name}={text!r} must be between {low} and {high}")
    return value


def _default_secret(raw: Callable[[str], str], secrets: SecretStore | None, needed: bool) -> str:
    """OVERCAST_REPLICATION_SECRET, or the secret store's value of OVERCAST_REPLICATION_SECRET_ID."""
    secret_id = raw("OVERCAST_REPLICATION_SECRET_ID").strip()
    if raw("OVERCAST_REPLICATION_SECRET") or not secret_id or not needed:
        return raw("OVERCAST_REPLICATION_SECRET")
    if secrets is None:
        raise ConfigurationError("OVERCAST_REPLICATION_SECRET_ID is set but this provider reads no secret store")
    return secrets.get(secret_id)


def _peers(text: str, env: Mapping[str, str], default_secret: str, origin: str) -> tuple[Peer, ...]:
    try:
        entries = json.loads(text or "[]")
        if not isinstance(entries, list):
            raise ValueError("expected a JSON list")
        peers: list[Peer] = []
        for entry in entries:
            name, url = str(entry["name"]), str(entry["url"]).rstrip("/")
            secret_env = entry.get("secret_env")
            secret = env.get(secret_env, "") if secret_env else default_secret
            if not ORIGIN_RE.match(name) or name == origin:
                raise ValueError(f"peer name {name!r} must be another replica's origin id")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"peer {name}: url must be http(s)")
            if "?" in url or "#" in url:  # routes are appended to it: /replication/batch
                raise ValueError(f"peer {name}: url must be a base URL without query or fragment")
            if any(p.name == name for p in peers):
                raise ValueError(f"peer {name!r} is listed twice")
            if not secret:
                raise ValueError(f"peer {name}: no secret (set {secret_env or 'OVERCAST_REPLICATION_SECRET'})")
            peers.append(Peer(name, url, secret))
    except (ValueError, KeyError, TypeError, ValidationError) as exc:
        raise ConfigurationError(f"OVERCAST_PEERS: {exc}") from None
    return tuple(peers)


def _flag(raw: Callable[[str], str], name: str) -> bool:
    text = raw(name).strip().lower()
    if text in {"true", "1", "yes"}:
        return True
    if text in {"false", "0", "no", ""}:
        return False
    raise ConfigurationError(f"{name}={text!r}: use true or false")


def _auth(raw: Callable[[str], str]) -> AuthSettings:
    issuer = raw("OVERCAST_AUTH_ISSUER").strip()
    audience = raw("OVERCAST_AUTH_AUDIENCE").strip()
    jwks_url = raw("OVERCAST_AUTH_JWKS_URL").strip()
    disabled = _flag(raw, "OVERCAST_AUTH_DISABLED")
    if disabled and issuer:
        raise ConfigurationError("OVERCAST_AUTH_DISABLED=true and OVERCAST_AUTH_ISSUER are both set: choose one")
    for name, url in (("OVERCAST_AUTH_ISSUER", issuer), ("OVERCAST_AUTH_JWKS_URL", jwks_url)):
        if url and not is_secure_url(url):
            raise ConfigurationError(f"{name}={url!r}: use https:// (http:// only on a loopback address)")
    if issuer and not audience:
        raise ConfigurationError("OVERCAST_AUTH_AUDIENCE is required with OVERCAST_AUTH_ISSUER")
    algorithms = tuple(raw("OVERCAST_AUTH_ALGORITHMS").split())
    refused = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
    if refused or not algorithms:
        raise ConfigurationError(
            f"OVERCAST_AUTH_ALGORITHMS: {' '.join(refused) or '(none)'} not allowed; "
            f"use some of {' '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
        )
    claim = raw("OVERCAST_AUTH_AUTHOR_CLAIM").strip()
    if not claim:
        raise ConfigurationError("OVERCAST_AUTH_AUTHOR_CLAIM must name a claim (e.g. sub)")
    return AuthSettings(
        issuer=issuer,
        audience=audience,
        jwks_url=jwks_url,
        algorithms=algorithms,
        required_scopes=frozenset(raw("OVERCAST_AUTH_REQUIRED_SCOPES").split()),
        admin_scope=raw("OVERCAST_AUTH_ADMIN_SCOPE").strip(),
        author_claim=claim,
        public_reads=_flag(raw, "OVERCAST_AUTH_PUBLIC_READS"),
        leeway_s=_number(raw, "OVERCAST_AUTH_LEEWAY_S", int, 0, 300),
        disabled=disabled,
    )


def is_secure_url(url: str) -> bool:
    """https://, or http:// to a loopback address (a test issuer on this machine)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and (parts.hostname or "").startswith("127.")


def markdown_table() -> str:
    lines = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    lines += [f"| `{s.env}` | {f'`{s.default}`' if s.default else '(empty)'} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())


def _metrics_format(text: str) -> str:
    value = text.strip()
    if value and value not in FORMATS:
        raise ConfigurationError(f"OVERCAST_METRICS_FORMAT must be one of {', '.join(FORMATS)}")
    return value

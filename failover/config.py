"""failover.yml: load, validate, and derive the timings the drill measures against.

The file is the single source for serverless.aws.yml's Route 53 resources, the local drill and
live mode. Validation follows Route 53's own limits (interval 10 or 30 s, threshold 1-10), so a
configuration the drill accepts is one Route 53 accepts.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "failover.yml"
# Route 53's health checkers wait 4 s for the TCP connection and 2 s more for the response.
CONNECT_TIMEOUT_S = 4.0
RESPONSE_TIMEOUT_S = 2.0
TIMES = "\u00d7"  # the multiplication sign in printed bounds
_NAME_RE = re.compile(r"^(?=.{1,253}\.?$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\.?$")


class ConfigError(ValueError):
    """failover.yml is missing a key or holds a value Route 53 would reject."""


@dataclass(frozen=True)
class HealthCheckSpec:
    type: str = "HTTPS"
    resource_path: str = "/health/deep"
    port: int = 443
    request_interval: int = 10
    failure_threshold: int = 3
    healthy_fraction: float = 0.18


@dataclass(frozen=True)
class Endpoint:
    provider: str
    set_identifier: str
    target: str
    health_check: bool = True


@dataclass(frozen=True)
class DrillSpec:
    primary_address: str = "127.0.0.2"
    secondary_address: str = "127.0.0.3"
    port: int = 8080
    dns_address: str = "127.0.0.1"
    dns_port: int = 0
    checkers: int = 8
    rate: float = 10.0
    write_share: float = 0.3
    clients: int = 8
    write_attempts: int = 6
    client_timeout: float = 2.0
    warmup: float = 20.0
    hold: float = 20.0
    fast_scale: float = 0.1


@dataclass(frozen=True)
class LiveSpec:
    health_check_id: str = ""
    hosted_zone_id: str = ""
    resolvers: tuple[str, ...] = ()
    rate: float = 2.0
    scheme: str = "https"
    port: int = 443
    timeout: float = 300.0


@dataclass(frozen=True)
class Profile:
    """A named set of Route 53 timings (failover.yml ``profiles``): how fast DNS moves clients."""

    name: str
    request_interval: int
    failure_threshold: int
    ttl: int
    description: str = ""

    @property
    def bound_s(self) -> int:
        return self.request_interval * self.failure_threshold + self.ttl


@dataclass(frozen=True)
class FailoverConfig:
    domain: str
    hosted_zone_name: str
    ttl: int
    record_type: str
    health_check: HealthCheckSpec
    primary: Endpoint
    secondary: Endpoint
    drill: DrillSpec = field(default_factory=DrillSpec)
    live: LiveSpec = field(default_factory=LiveSpec)
    source: str = ""
    profiles: dict[str, Profile] = field(default_factory=dict)
    #: The profile whose timings are in effect ("" when the top-level values match none).
    profile: str = ""

    @property
    def fqdn(self) -> str:
        return self.domain.rstrip(".") + "."

    def bound_s(self, scale: float = 1.0) -> float:
        """Route 53's end-to-end bound: a client moves within interval x threshold + TTL."""
        return timings(self, scale).bound_s


@dataclass(frozen=True)
class Timings:
    """The Route 53 durations the local data plane runs with, after the time scale."""

    scale: float
    interval_s: float
    failure_threshold: int
    ttl_s: int
    connect_timeout_s: float
    response_timeout_s: float

    @property
    def detect_bound_s(self) -> float:
        return self.interval_s * self.failure_threshold

    @property
    def bound_s(self) -> float:
        return self.detect_bound_s + self.ttl_s


def timings(config: FailoverConfig, scale: float = 1.0) -> Timings:
    """Durations scaled by ``scale`` (1.0 = real Route 53).

    The TTL stays a whole number of seconds (DNS has no finer unit), and the probe timeouts keep
    a 1 s floor: a scaled 0.2 s response timeout would fail healthy endpoints on a busy machine
    and measure the machine instead of the failover.
    """
    if not 0 < scale <= 1:
        raise ConfigError(f"time scale must be in (0, 1], not {scale}")
    hc = config.health_check
    connect_s, response_s = probe_timeouts(scale)
    return Timings(
        scale=scale,
        interval_s=hc.request_interval * scale,
        failure_threshold=hc.failure_threshold,
        ttl_s=scaled_ttl(config.ttl, scale),
        connect_timeout_s=connect_s,
        response_timeout_s=response_s,
    )


def scaled_ttl(ttl: int, scale: float) -> int:
    return ttl if scale >= 1 else max(1, round(ttl * scale))


def probe_timeouts(scale: float) -> tuple[float, float]:
    """Route 53's connect and response timeouts under ``scale`` (1 s floor when scaled)."""
    floor = 1.0 if scale < 1 else 0.0
    return max(CONNECT_TIMEOUT_S * scale, floor), max(RESPONSE_TIMEOUT_S * scale, floor)


def load(path: str | Path | None = None) -> FailoverConfig:
    path = Path(path or DEFAULT_PATH)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    return parse(raw, source=str(path))


def parse(raw: Any, source: str = "<dict>") -> FailoverConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    r = _Reader(raw, source)
    hc_raw = _Reader(r.mapping("healthCheck"), f"{source}: healthCheck")
    health_check = HealthCheckSpec(
        type=hc_raw.choice("type", ("HTTP", "HTTPS"), "HTTPS"),
        resource_path=hc_raw.string("resourcePath", "/health/deep"),
        port=hc_raw.integer("port", 443, 1, 65535),
        request_interval=hc_raw.integer("requestInterval", 10, 10, 30),
        failure_threshold=hc_raw.integer("failureThreshold", 3, 1, 10),
        healthy_fraction=hc_raw.number("healthyFraction", 0.18, 0.0, 0.99),
    )
    if health_check.request_interval not in (10, 30):
        raise ConfigError(f"{source}: healthCheck.requestInterval must be 10 or 30 (Route 53 offers only these)")
    if not health_check.resource_path.startswith("/"):
        raise ConfigError(f"{source}: healthCheck.resourcePath must start with '/'")
    config = FailoverConfig(
        domain=r.name("domain"),
        hosted_zone_name=r.name("hostedZoneName").rstrip(".") + ".",
        ttl=r.integer("ttl", 60, 0, 172_800),
        record_type=r.choice("recordType", ("CNAME", "A"), "CNAME"),
        health_check=health_check,
        primary=_endpoint(r.mapping("primary"), f"{source}: primary", True),
        secondary=_endpoint(r.mapping("secondary"), f"{source}: secondary", False),
        drill=_drill(_Reader(r.mapping("drill", required=False), f"{source}: drill")),
        live=_live(_Reader(r.mapping("live", required=False), f"{source}: live")),
        source=source,
        profiles=_profiles(r.mapping("profiles", required=False), f"{source}: profiles"),
    )
    config = replace(config, profile=_matching_profile(config))
    zone = config.hosted_zone_name.rstrip(".")
    if config.domain.rstrip(".") != zone and not config.domain.rstrip(".").endswith("." + zone):
        raise ConfigError(f"{source}: domain {config.domain} is not inside hostedZoneName {config.hosted_zone_name}")
    if config.primary.set_identifier == config.secondary.set_identifier:
        raise ConfigError(f"{source}: primary and secondary need different setIdentifier values")
    if not config.primary.health_check:
        raise ConfigError(f"{source}: the primary record needs its health check (healthCheck: true)")
    return config


def with_profile(config: FailoverConfig, name: str) -> FailoverConfig:
    """A copy running with profile ``name``'s interval, threshold and TTL. The top-level values
    (what serverless.aws.yml deploys) are unchanged in the file."""
    try:
        profile = config.profiles[name]
    except KeyError:
        known = ", ".join(config.profiles) or "none"
        raise ConfigError(f"{config.source}: no failover profile {name!r} (profiles: {known})") from None
    health_check = replace(
        config.health_check, request_interval=profile.request_interval, failure_threshold=profile.failure_threshold
    )
    return replace(config, ttl=profile.ttl, health_check=health_check, profile=name)


def _profiles(raw: dict[str, Any], where: str) -> dict[str, Profile]:
    profiles = {}
    for name, body in raw.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: {name} must be a mapping")
        r = _Reader(body, f"{where}.{name}")
        profile = Profile(
            name=str(name),
            request_interval=r.integer("requestInterval", 10, 10, 30),
            failure_threshold=r.integer("failureThreshold", 3, 1, 10),
            ttl=r.integer("ttl", 60, 0, 172_800),
            description=r.string("description", ""),
        )
        if profile.request_interval not in (10, 30):
            raise ConfigError(f"{where}.{name}: requestInterval must be 10 or 30 (Route 53 offers only these)")
        profiles[profile.name] = profile
    return profiles


def _matching_profile(config: FailoverConfig) -> str:
    hc = config.health_check
    for profile in config.profiles.values():
        if (profile.request_interval, profile.failure_threshold, profile.ttl) == (
            hc.request_interval,
            hc.failure_threshold,
            config.ttl,
        ):
            return profile.name
    return ""


def with_overrides(config: FailoverConfig, **drill: Any) -> FailoverConfig:
    """A copy with some drill settings replaced (command-line flags, tests)."""
    return replace(config, drill=replace(config.drill, **drill))


def _endpoint(raw: dict[str, Any], where: str, default_check: bool) -> Endpoint:
    r = _Reader(raw, where)
    return Endpoint(
        provider=r.string("provider"),
        set_identifier=r.string("setIdentifier"),
        target=r.name("target"),
        health_check=r.boolean("healthCheck", default_check),
    )


def _drill(r: _Reader) -> DrillSpec:
    d = DrillSpec()
    spec = DrillSpec(
        primary_address=r.loopback("primaryAddress", d.primary_address),
        secondary_address=r.loopback("secondaryAddress", d.secondary_address),
        port=r.integer("port", d.port, 1, 65535),
        dns_address=r.loopback("dnsAddress", d.dns_address),
        dns_port=r.integer("dnsPort", d.dns_port, 0, 65535),
        checkers=r.integer("checkers", d.checkers, 1, 64),
        rate=r.number("rate", d.rate, 0.5, 1000),
        write_share=r.number("writeShare", d.write_share, 0.0, 1.0),
        clients=r.integer("clients", d.clients, 1, 256),
        write_attempts=r.integer("writeAttempts", d.write_attempts, 1, 50),
        client_timeout=r.number("clientTimeout", d.client_timeout, 0.1, 60),
        warmup=r.number("warmup", d.warmup, 0, 3600),
        hold=r.number("hold", d.hold, 0, 3600),
        fast_scale=r.number("fastScale", d.fast_scale, 0.01, 1.0),
    )
    if spec.primary_address == spec.secondary_address:
        raise ConfigError(
            f"{r.where}: primaryAddress and secondaryAddress must differ (one loopback address per cloud)"
        )
    return spec


def _live(r: _Reader) -> LiveSpec:
    d = LiveSpec()
    resolvers = r.raw.get("resolvers") or []
    if not isinstance(resolvers, list) or not all(isinstance(x, str) and x for x in resolvers):
        raise ConfigError(f"{r.where}: resolvers must be a list of host or host:port strings")
    return LiveSpec(
        health_check_id=r.string("healthCheckId", d.health_check_id),
        hosted_zone_id=r.string("hostedZoneId", d.hosted_zone_id),
        resolvers=tuple(resolvers),
        rate=r.number("rate", d.rate, 0.0, 100),
        scheme=r.choice("scheme", ("http", "https"), d.scheme),
        port=r.integer("port", d.port, 1, 65535),
        timeout=r.number("timeout", d.timeout, 1, 3600),
    )


class _Reader:
    """Typed access to one mapping of the YAML file, with errors that name the key."""

    def __init__(self, raw: dict[str, Any], where: str) -> None:
        self.raw = raw
        self.where = where

    def _get(self, key: str, default: Any) -> Any:
        value = self.raw.get(key, default)
        if value is None:
            raise ConfigError(f"{self.where}: {key} is required")
        return value

    def mapping(self, key: str, required: bool = True) -> dict[str, Any]:
        value = self.raw.get(key)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.where}: {key} must be a mapping")
        return value

    def string(self, key: str, default: str | None = None) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise ConfigError(f"{self.where}: {key} must be a string")
        return value

    def name(self, key: str) -> str:
        value = self.string(key).strip().lower()
        if not _NAME_RE.match(value):
            raise ConfigError(f"{self.where}: {key}={value!r} is not a DNS name")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in choices:
            raise ConfigError(f"{self.where}: {key} must be one of {', '.join(choices)}, not {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where}: {key} must be true or false")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{self.where}: {key} must be an integer from {low} to {high}, not {value!r}")
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            raise ConfigError(f"{self.where}: {key} must be a number from {low} to {high}, not {value!r}")
        return float(value)

    def loopback(self, key: str, default: str) -> str:
        value = self.string(key, default)
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise ConfigError(f"{self.where}: {key}={value!r} is not an IP address") from None
        if not (address.version == 4 and address.is_loopback):
            raise ConfigError(f"{self.where}: {key}={value!r}: the local drill binds 127.0.0.0/8 addresses only")
        return value

"""failover.yml: the shipped file loads, Route 53's limits are enforced, timings scale."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from failover import config as cfgmod
from failover.config import ConfigError, parse, timings


@pytest.fixture
def raw() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(cfgmod.DEFAULT_PATH.read_text())
    return data


def test_shipped_file_loads_with_route53_defaults() -> None:
    config = cfgmod.load()
    assert config.domain == "api.example.com"
    assert config.fqdn == "api.example.com."
    assert config.health_check.resource_path == "/health/deep"
    assert config.health_check.request_interval == 10
    assert config.health_check.failure_threshold == 3
    assert config.primary.provider == "aws" and config.secondary.provider == "azure"
    assert config.primary.health_check and not config.secondary.health_check
    assert config.drill.primary_address == "127.0.0.2" and config.drill.secondary_address == "127.0.0.3"
    assert config.ttl <= 60  # Route 53's recommendation for failover records


def test_real_and_fast_bounds() -> None:
    config = cfgmod.load()
    real = timings(config)
    assert (real.interval_s, real.ttl_s, real.bound_s) == (10, 60, 90)
    assert (real.connect_timeout_s, real.response_timeout_s) == (4.0, 2.0)
    fast = timings(config, 0.1)
    assert fast.interval_s == pytest.approx(1.0)
    assert fast.ttl_s == 6
    assert fast.bound_s == pytest.approx(9.0)
    assert fast.connect_timeout_s >= 1.0 and fast.response_timeout_s >= 1.0  # floors, see timings()
    with pytest.raises(ConfigError):
        timings(config, 0)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("healthCheck", "requestInterval"), 20, "10 or 30"),
        (("healthCheck", "failureThreshold"), 11, "failureThreshold"),
        (("healthCheck", "failureThreshold"), 0, "failureThreshold"),
        (("healthCheck", "resourcePath"), "health", "start with '/'"),
        (("healthCheck", "type"), "TCP", "type"),
        (("drill", "primaryAddress"), "0.0.0.0", "127.0.0.0/8"),
        (("drill", "secondaryAddress"), "127.0.0.2", "must differ"),
        (("domain",), "api.example.org", "not inside"),
        (("domain",), "not a name", "not a DNS name"),
        (("ttl",), -1, "ttl"),
        (("secondary", "setIdentifier"), "aws-primary", "different setIdentifier"),
        (("primary", "healthCheck"), False, "needs its health check"),
        (("live", "resolvers"), "one", "resolvers"),
    ],
)
def test_rejects_what_route53_or_the_drill_would(
    raw: dict[str, Any], path: tuple[str, ...], value: Any, message: str
) -> None:
    data = copy.deepcopy(raw)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        parse(data)


def test_missing_sections_are_named(raw: dict[str, Any]) -> None:
    data = copy.deepcopy(raw)
    del data["primary"]
    with pytest.raises(ConfigError, match="primary"):
        parse(data)
    data = copy.deepcopy(raw)
    del data["drill"], data["live"]
    config = parse(data)  # optional sections fall back to their defaults
    assert config.drill.checkers == 8 and config.live.scheme == "https"


def test_with_overrides_changes_only_the_drill(raw: dict[str, Any]) -> None:
    config = parse(raw)
    changed = cfgmod.with_overrides(config, rate=5.0)
    assert changed.drill.rate == 5.0 and changed.health_check == config.health_check


def test_profiles_name_the_deployed_timings_and_a_fast_one() -> None:
    config = cfgmod.load()
    assert config.profile == "auth0" and config.bound_s() == 90.0
    assert config.profiles["auth0"].bound_s == 90 and config.profiles["fast"].bound_s == 20
    fast = cfgmod.with_profile(config, "fast")
    assert fast.profile == "fast" and fast.ttl == 10 and fast.health_check.failure_threshold == 1
    assert fast.bound_s() == 20.0 and fast.health_check.resource_path == config.health_check.resource_path


def test_an_unknown_profile_or_an_interval_route53_lacks_is_refused() -> None:
    with pytest.raises(ConfigError, match="no failover profile"):
        cfgmod.with_profile(cfgmod.load(), "instant")
    raw = yaml.safe_load(cfgmod.DEFAULT_PATH.read_text())
    raw["profiles"]["fast"]["requestInterval"] = 5
    with pytest.raises(ConfigError, match="requestInterval"):
        parse(raw)

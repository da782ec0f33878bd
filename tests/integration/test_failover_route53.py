"""The Route 53 configuration on moto server, read back through the API by the local data plane:
health checks probe real servers on loopback, UpdateHealthCheck moves DNS, the load generator
follows DNS with its TTL cache."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from failover.loadgen import DnsClientResolver, LoadGenerator, LoadSpec
from failover.route53_setup import health_check_config, read_failover, record_sets
from tests.fixtures.failover import SCALE, FailoverPlane

pytestmark = pytest.mark.emulator("moto")


def wait_until(condition: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def test_resources_created_through_the_api(failover_plane: FailoverPlane) -> None:
    r53, created, config = failover_plane.route53, failover_plane.created, failover_plane.config
    zone = r53.get_hosted_zone(Id=created.hosted_zone_id)["HostedZone"]
    assert zone["Name"] == "example.com."
    check = r53.get_health_check(HealthCheckId=created.health_check_id)["HealthCheck"]["HealthCheckConfig"]
    clouds = failover_plane.clouds
    assert check["Type"] == "HTTP" and check["IPAddress"] == clouds.primary.address == "127.0.0.2"
    assert check["Port"] == clouds.primary.port and check["ResourcePath"] == "/health/deep"
    assert check["RequestInterval"] == 10 and check["FailureThreshold"] == 3
    assert not check["Inverted"] and not check["Disabled"]
    records = {r.role: r for r in read_failover(r53, created.hosted_zone_id, config.domain)}
    assert records["PRIMARY"].values == ("127.0.0.2",) and records["PRIMARY"].health_check_id == created.health_check_id
    assert records["SECONDARY"].values == ("127.0.0.3",) and records["SECONDARY"].health_check_id is None
    assert records["PRIMARY"].ttl == config.ttl and records["PRIMARY"].type == "A"


def test_production_shapes_come_from_failover_yml(failover_plane: FailoverPlane) -> None:
    config = failover_plane.config
    check = health_check_config(config)
    assert check == {
        "Type": "HTTPS",
        "ResourcePath": "/health/deep",
        "Port": 443,
        "RequestInterval": 10,
        "FailureThreshold": 3,
        "FullyQualifiedDomainName": "aws.api.example.com",
    }
    primary, secondary = record_sets(config, "HC")
    assert primary["Failover"] == "PRIMARY" and primary["Type"] == "CNAME" and primary["HealthCheckId"] == "HC"
    assert primary["ResourceRecords"] == [{"Value": "aws.api.example.com"}]
    assert secondary["Failover"] == "SECONDARY" and "HealthCheckId" not in secondary
    assert primary["TTL"] == secondary["TTL"] == 60


def test_inverting_moves_dns_within_the_bound_and_back(failover_plane: FailoverPlane) -> None:
    fp = failover_plane
    wait_until(lambda: fp.fleet.probes >= 16, 5, "checkers probing")
    assert fp.fleet.healthy and fp.answer() == "127.0.0.2"
    fp.route53.update_health_check(HealthCheckId=fp.created.health_check_id, Inverted=True)
    bound = 10 * SCALE * 3 + 0.5 + 1.0  # interval x threshold + config poll + slack
    took = wait_until(lambda: fp.answer() == "127.0.0.3", bound, "DNS answers the secondary")
    assert took >= 10 * SCALE * 2 * 0.8  # not at once: the checkers need consecutive observations
    assert fp.fleet.snapshot().healthy_checkers <= 1
    # Disabled wins over everything: considered healthy
    fp.route53.update_health_check(HealthCheckId=fp.created.health_check_id, Disabled=True)
    wait_until(lambda: fp.answer() == "127.0.0.2", 2, "Disabled makes the check healthy")
    fp.route53.update_health_check(HealthCheckId=fp.created.health_check_id, Disabled=False, Inverted=False)
    wait_until(
        lambda: fp.answer() == "127.0.0.2" and fp.fleet.snapshot().healthy_checkers == 8,
        bound,
        "all checkers healthy again",
    )


def test_crashed_primary_fails_over(failover_plane: FailoverPlane) -> None:
    fp = failover_plane
    cloud = fp.clouds.primary
    wait_until(lambda: fp.fleet.probes >= 8, 5, "checkers probing")
    cloud.kill()
    try:
        wait_until(lambda: fp.answer() == "127.0.0.3", 10 * SCALE * 3 + 1.5, "DNS answers the secondary")
        last = fp.fleet.state.checkers[0].last
        assert last is not None and last.error.startswith("connect")
    finally:
        cloud.restart()
    wait_until(lambda: fp.answer() == "127.0.0.2", 10 * SCALE * 3 + 1.5, "DNS answers the primary again")


def test_load_follows_dns_with_ttl_and_retries_writes_with_the_same_key(failover_plane: FailoverPlane) -> None:
    fp = failover_plane
    port = fp.clouds.primary.port
    spec = LoadSpec(domain=fp.config.domain, port=port, rate=25, write_share=0.5, clients=2, timeout_s=1.0)
    load = LoadGenerator(spec, lambda: DnsClientResolver([("127.0.0.1", fp.dns.port)])).start()
    try:
        time.sleep(1.0)
        fp.route53.update_health_check(HealthCheckId=fp.created.health_check_id, Inverted=True)
        wait_until(lambda: any(a.address == "127.0.0.3" for a in load.attempts), 10, "load reached the secondary")
        time.sleep(0.5)
    finally:
        load.stop()
    attempts = load.attempts
    assert len(attempts) >= 25 * 2
    # open loop: scheduled exactly 1/rate apart, whatever the responses did
    scheduled = sorted({a.scheduled for a in attempts if a.attempt == 1})
    gaps = [b - a for a, b in itertools.pairwise(scheduled)]
    assert max(gaps) == pytest.approx(1 / 25, abs=0.002)
    served = {a.address: a.served_by for a in attempts if a.ok}
    assert served == {"127.0.0.2": "aws", "127.0.0.3": "azure"}
    acked = load.acked()
    assert acked and all(w.message_id for w in acked)
    for write in acked:
        assert write.key in write.text  # the key is embedded, so duplicates can be counted later
    # nothing moved before the TTL-cached answer could have expired (TTL 6 s at this scale)
    first_secondary = min(a.start for a in attempts if a.address == "127.0.0.3")
    assert first_secondary > 10 * SCALE * 2 * 0.8


def test_secondary_with_its_own_check_and_all_unhealthy_answers_primary(moto_server: Any, loopback_clouds: Any) -> None:
    """failover.yml `secondary.healthCheck: true` gets the secondary its own check; when both
    checks are unhealthy Route 53 answers the primary."""
    from dataclasses import replace

    from failover import config as cfgmod
    from failover.dns_server import FailoverResolver, api_records_reader
    from failover.healthcheck import DataPlane
    from failover.route53_setup import LocalTargets, create

    base = cfgmod.load()
    config = replace(base, secondary=replace(base.secondary, health_check=True))
    r53 = moto_server.client("route53")
    local = LocalTargets(
        loopback_clouds.primary.address, loopback_clouds.secondary.address, loopback_clouds.primary.port
    )
    created = create(r53, config, local)
    assert created.secondary_health_check_id and created.secondary_health_check_id != created.health_check_id
    secondary_check = r53.get_health_check(HealthCheckId=created.secondary_health_check_id)["HealthCheck"]
    assert secondary_check["HealthCheckConfig"]["IPAddress"] == "127.0.0.3"
    records = {r.role: r for r in read_failover(r53, created.hosted_zone_id)}
    assert records["SECONDARY"].health_check_id == created.secondary_health_check_id
    plane = DataPlane(
        r53, [created.health_check_id, created.secondary_health_check_id], checkers=8, scale=SCALE
    ).start()
    try:
        resolver = FailoverResolver(api_records_reader(r53, created.hosted_zone_id), plane.is_healthy, scale=SCALE)

        def answer() -> str:
            record = resolver.answer_for(config.domain)
            return record.values[0] if record else ""

        bound = 10 * SCALE * 3 + 1.5
        r53.update_health_check(HealthCheckId=created.secondary_health_check_id, Inverted=True)
        wait_until(lambda: not plane.is_healthy(created.secondary_health_check_id), bound, "secondary unhealthy")
        assert answer() == "127.0.0.2"  # the primary is healthy: nothing moves
        r53.update_health_check(HealthCheckId=created.health_check_id, Inverted=True)
        wait_until(lambda: not plane.is_healthy(created.health_check_id), bound, "primary unhealthy")
        assert answer() == "127.0.0.2"  # both unhealthy: Route 53 answers the primary
        r53.update_health_check(HealthCheckId=created.secondary_health_check_id, Inverted=False)
        wait_until(lambda: answer() == "127.0.0.3", bound, "the healthy secondary answers")
    finally:
        plane.stop()

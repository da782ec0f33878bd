"""Route 53 resources of the failover set-up, from failover.yml, through the Route 53 API.

``health_check_config`` and ``record_sets`` produce the same shapes serverless.aws.yml declares
(CloudFormation's ``AWS::Route53::HealthCheck`` HealthCheckConfig and ``AWS::Route53::RecordSet``
properties are the API's shapes). The local drill creates them on moto server with its loopback
overrides: the health check probes ``IPAddress`` 127.0.0.2 over HTTP, and the failover records are
A records to 127.0.0.2 (primary) and 127.0.0.3 (secondary).

Reading goes through the API too (``read_failover``): the health checkers and the DNS server
never see failover.yml, only what Route 53 holds, so an ``UpdateHealthCheck`` takes effect the
way it does in production.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from failover.config import FailoverConfig


@dataclass(frozen=True)
class LocalTargets:
    """Where the drill's clouds listen: one loopback address each, one port for both."""

    primary_address: str
    secondary_address: str
    port: int


@dataclass(frozen=True)
class Created:
    hosted_zone_id: str
    health_check_id: str
    record_name: str
    secondary_health_check_id: str | None = None


@dataclass(frozen=True)
class FailoverRecord:
    name: str
    type: str
    role: str  # PRIMARY or SECONDARY
    set_identifier: str
    ttl: int
    values: tuple[str, ...]
    health_check_id: str | None


def health_check_config(
    config: FailoverConfig, local: LocalTargets | None = None, role: str = "PRIMARY"
) -> dict[str, Any]:
    """HealthCheckConfig of a record's check (production, or the drill's loopback override).

    The primary always has one; the secondary only when failover.yml gives it ``healthCheck: true``
    (same path, interval and threshold, probing the secondary's target)."""
    hc = config.health_check
    endpoint = config.primary if role == "PRIMARY" else config.secondary
    shape: dict[str, Any] = {
        "Type": hc.type,
        "ResourcePath": hc.resource_path,
        "Port": hc.port,
        "RequestInterval": hc.request_interval,
        "FailureThreshold": hc.failure_threshold,
        "FullyQualifiedDomainName": endpoint.target,
    }
    if local is not None:
        # Locally there is no TLS and no public name: probe the cloud's loopback address.
        address = local.primary_address if role == "PRIMARY" else local.secondary_address
        shape.update(Type="HTTP", Port=local.port, IPAddress=address)
        del shape["FullyQualifiedDomainName"]
    return shape


def record_sets(
    config: FailoverConfig,
    health_check_id: str,
    local: LocalTargets | None = None,
    secondary_health_check_id: str | None = None,
) -> list[dict[str, Any]]:
    """The PRIMARY and SECONDARY failover record sets (ResourceRecordSet shapes)."""
    records = []
    for role, endpoint, address, check_id in (
        ("PRIMARY", config.primary, local.primary_address if local else "", health_check_id),
        ("SECONDARY", config.secondary, local.secondary_address if local else "", secondary_health_check_id),
    ):
        record: dict[str, Any] = {
            "Name": config.fqdn,
            "Type": "A" if local else config.record_type,
            "SetIdentifier": endpoint.set_identifier,
            "Failover": role,
            "TTL": config.ttl,
            "ResourceRecords": [{"Value": address if local else endpoint.target}],
        }
        if endpoint.health_check and check_id:
            record["HealthCheckId"] = check_id
        records.append(record)
    return records


def create(client: Any, config: FailoverConfig, local: LocalTargets) -> Created:
    """Create the hosted zone, the health check(s) and both failover records (drill only)."""
    zone = client.create_hosted_zone(Name=config.hosted_zone_name, CallerReference=f"overcast-drill-{uuid.uuid4()}")
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]

    def new_check(role: str) -> str:
        check = client.create_health_check(
            CallerReference=f"overcast-drill-{uuid.uuid4()}", HealthCheckConfig=health_check_config(config, local, role)
        )
        return str(check["HealthCheck"]["Id"])

    check_id = new_check("PRIMARY")
    secondary_id = new_check("SECONDARY") if config.secondary.health_check else None
    records = record_sets(config, check_id, local, secondary_id)
    client.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Comment": "overcast failover drill",
            "Changes": [{"Action": "CREATE", "ResourceRecordSet": r} for r in records],
        },
    )
    return Created(zone_id, check_id, config.fqdn, secondary_id)


def find_zone_id(client: Any, zone_name: str) -> str:
    wanted = zone_name.rstrip(".") + "."
    for page in client.get_paginator("list_hosted_zones").paginate():
        for zone in page["HostedZones"]:
            if zone["Name"] == wanted:
                return str(zone["Id"]).split("/")[-1]
    raise LookupError(f"no hosted zone named {wanted}")


def read_failover(client: Any, zone_id: str, name: str | None = None) -> list[FailoverRecord]:
    """The failover record sets (of ``name``, or all) as Route 53 holds them (ListResourceRecordSets)."""
    wanted = name.rstrip(".").lower() + "." if name else None
    found: list[FailoverRecord] = []
    for page in client.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone_id):
        for rrset in page["ResourceRecordSets"]:
            if (wanted and rrset["Name"].lower() != wanted) or "Failover" not in rrset:
                continue
            found.append(
                FailoverRecord(
                    name=rrset["Name"].lower(),
                    type=rrset["Type"],
                    role=rrset["Failover"],
                    set_identifier=rrset.get("SetIdentifier", ""),
                    ttl=int(rrset.get("TTL", 60)),
                    values=tuple(r["Value"] for r in rrset.get("ResourceRecords", [])),
                    health_check_id=rrset.get("HealthCheckId"),
                )
            )
    return found


def find_health_check_id(client: Any, fqdn: str, resource_path: str) -> str:
    """The id of the health check that probes ``fqdn`` + ``resource_path`` (live mode)."""
    matches = []
    for page in client.get_paginator("list_health_checks").paginate():
        for check in page["HealthChecks"]:
            cfg = check["HealthCheckConfig"]
            if (cfg.get("FullyQualifiedDomainName") or "").rstrip(".") == fqdn.rstrip(".") and cfg.get(
                "ResourcePath"
            ) == resource_path:
                matches.append(check["Id"])
    if len(matches) != 1:
        raise LookupError(f"expected one health check for {fqdn}{resource_path}, found {len(matches)}: {matches}")
    return str(matches[0])


def route53_client(endpoint_url: str | None = None, region: str = "us-east-1") -> Any:
    """A boto3 Route 53 client; ``endpoint_url`` points it at moto server (dummy credentials)."""
    import boto3

    if endpoint_url is None:
        return boto3.client("route53", region_name=region)
    return boto3.client(
        "route53",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="drill",
        aws_secret_access_key="drill",  # moto accepts any; never real credentials locally
    )

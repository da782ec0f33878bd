"""failover.yml is the single source of the Route 53 set-up: every `${file(./failover.yml):key}`
that a serverless.<provider>.yml uses must name a key that exists there (a renamed key would
otherwise deploy an empty value), and the shapes the drill creates are CloudFormation's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover import config as cfgmod
from failover.route53_setup import health_check_config, record_sets

REPO = Path(__file__).resolve().parents[2]
REF = re.compile(r"\$\{file\(\./failover\.yml\):([A-Za-z0-9_.]+)\}")
# serverless.aws.yml loads the whole file as custom.failover and refers to its keys, some with a
# default (`${self:custom.failover.healthCheck.inverted, false}`).
CUSTOM = re.compile(r"^\s*(\w+):\s*\$\{file\(\./failover\.yml\)\}\s*$", re.M)


def lookup(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            raise KeyError(dotted)
        data = data[part]
    return data


def references() -> list[tuple[str, str]]:
    found = []
    for path in sorted(REPO.glob("serverless.*.yml")):
        text = path.read_text()
        found += [(path.name, key) for key in REF.findall(text)]
        for name in CUSTOM.findall(text):
            pattern = re.compile(r"\$\{self:custom\." + name + r"\.([A-Za-z0-9_.]+)\s*(,[^}]*)?\}")
            found += [(path.name, key + ("?" if default else "")) for key, default in pattern.findall(text)]
    return sorted(set(found))


@pytest.mark.parametrize(("source", "key"), references() or [("(none yet)", "")])
def test_every_reference_names_an_existing_key(source: str, key: str) -> None:
    raw = yaml.safe_load(cfgmod.DEFAULT_PATH.read_text())
    if not key:  # no serverless file refers to failover.yml yet: the lookup itself must work
        assert lookup(raw, "healthCheck.requestInterval") == 10
        with pytest.raises(KeyError):
            lookup(raw, "healthCheck.missing")
        return
    if key.endswith("?"):  # has a default in the serverless file: may be absent, must not be malformed
        try:
            value = lookup(raw, key[:-1])
        except KeyError:
            return
    else:
        value = lookup(raw, key)
    assert value is not None and value != "", f"{source}: failover.yml key {key} is empty"


def test_shapes_use_cloudformation_property_names() -> None:
    config = cfgmod.load()
    allowed_check = {
        "Type",
        "ResourcePath",
        "Port",
        "RequestInterval",
        "FailureThreshold",
        "FullyQualifiedDomainName",
        "IPAddress",
    }
    assert set(health_check_config(config)) <= allowed_check
    allowed_record = {"Name", "Type", "SetIdentifier", "Failover", "TTL", "ResourceRecords", "HealthCheckId"}
    for record in record_sets(config, "HC"):
        assert set(record) <= allowed_record
        assert record["Name"] == "api.example.com."

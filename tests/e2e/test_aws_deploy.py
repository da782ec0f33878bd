"""A real `sls deploy --stage local` of serverless.aws.yml into moto server's CloudFormation, then
`sls remove` (docs/aws.md, "Deploying locally").

The stack is packaged first (tools.packaging: pip fetches the pinned wheels from the package
index, as any packaging does), then deployed from that package through serverless-localstack,
which points osls' AWS SDK at moto server on 127.0.0.1 (custom.localstack). With `failoverRecords`
on, the Route 53 health check and failover pair are deployed without the custom domains (moto
skips API Gateway v2, so the domains could not be created there). What the deployed resources
are is read back from moto's APIs and compared with the template and failover.yml.

moto proves wiring (Refs, GetAtts, the stream mapping, the environment after params, the Route
53 record's health check id); cfn-lint proves properties (tests/packaging/test_validators.py).
One deploy and one remove per run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aws.table import TABLE_PROPERTIES
from emulators.moto import EMULATOR_ENV, MotoServer
from tools.packaging import REPO_ROOT, package, private_service, sls_env

pytestmark = [pytest.mark.emulator("moto"), pytest.mark.slow]

SLS = REPO_ROOT / "node_modules" / ".bin" / "sls"
STACK = "overcast-local"
FAILOVER = yaml.safe_load((REPO_ROOT / "failover.yml").read_text())
PEERS = [{"name": "azure", "url": "https://azure.api.example.com/api"}]
PARAMS = ("--param", "failoverRecords=true", "--param", f"peers={json.dumps(PEERS)}")
# What moto's CloudFormation accepts but does not create (it records them with no id); the
# deploy's own template shows they are asked for. docs/aws.md lists the same.
MOTO_SKIPS = {"AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Route"}
MOTO_SKIPS |= {"AWS::ApiGatewayV2::Stage", "AWS::S3::BucketPolicy"}
# moto 5.2.5 has CloudWatch alarms in its API but no CloudFormation handler for them.
MOTO_SKIPS |= {"AWS::CloudWatch::Alarm"}


@dataclass
class Deployment:
    server: MotoServer
    template: dict[str, Any]
    service_dir: Path
    env: dict[str, str]
    seconds: float
    connections: list[str]  # every non-local connect() the deploy made (empty without strace)

    def client(self, service: str) -> Any:
        return self.server.client(service)

    def sls(self, *args: str) -> tuple[subprocess.CompletedProcess[str], float, list[str]]:
        return run_sls(self.service_dir, self.env, *args)


def run_sls(
    service_dir: Path, env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[str], float, list[str]]:
    """Run sls in service_dir; under strace when it is installed, to list where it connected."""
    argv = [str(SLS), *args, "--config", "serverless.aws.yml", "--stage", "local", *PARAMS]
    trace = service_dir.parent / f"connect-{time.monotonic_ns()}.txt"
    strace = shutil.which("strace")
    if strace:
        argv = [strace, "-f", "-qq", "-e", "trace=connect", "-o", str(trace), *argv]
    started = time.monotonic()
    proc = subprocess.run(
        argv, cwd=service_dir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600
    )
    seconds = time.monotonic() - started
    return proc, seconds, remote_connections(trace) if strace else []


def remote_connections(trace: Path) -> list[str]:
    """connect() calls to anything but 127.0.0.0/8 (Unix sockets aside)."""
    found = []
    for line in trace.read_text().splitlines():
        if "connect(" not in line or "AF_UNIX" in line:
            continue
        address = re.search(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', line)
        if address and not (address.group(1) or "").startswith("127."):
            found.append(line.strip())
    return found


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not SLS.exists():
        pytest.fail(f"{SLS} is missing: run `npm ci`", pytrace=False)
    # custom.localstack names S3 `localhost` (moto's TemplateURL parsing needs it).
    resolved = {info[4][0] for info in socket.getaddrinfo("localhost", 80, proto=socket.IPPROTO_TCP)}
    assert all(a.startswith("127.") for a in resolved), f"localhost resolves to {resolved}, not 127.0.0.0/8"

    out_dir = tmp_path_factory.mktemp("aws-local-package") / "package"
    cache = tmp_path_factory.mktemp("python-requirements-cache")
    package("aws", out_dir, extra_args=("--stage", "local", *PARAMS), requirements_cache=cache, timeout=600)
    template = json.loads((out_dir / "cloudformation-template-update-stack.json").read_text())

    with MotoServer() as server, private_service(prefix="overcast-deploy-") as service_dir:
        server.client("route53").create_hosted_zone(Name=FAILOVER["hostedZoneName"], CallerReference="overcast-e2e")
        env = sls_env() | EMULATOR_ENV | {"OVERCAST_LOCAL_AWS_PORT": str(server.port)}
        for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            env.pop(variable, None)
        proc, seconds, connections = run_sls(service_dir, env, "deploy", "--package", str(out_dir))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        print(f"\nsls deploy --stage local into moto: {seconds:.1f} s")
        yield Deployment(server, template, service_dir, env, seconds, connections)


def stack_resources(deployed: Deployment) -> dict[str, dict[str, Any]]:
    cloudformation = deployed.client("cloudformation")
    summaries = cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r for r in summaries if r["LogicalResourceId"]}


def physical(deployed: Deployment, logical: str) -> str:
    return str(stack_resources(deployed)[logical]["PhysicalResourceId"])


def test_the_stack_is_deployed_over_loopback_only(deployed: Deployment) -> None:
    stack = deployed.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    # osls creates the stack (deployment bucket only), then updates it with everything else.
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    assert deployed.connections == [], deployed.connections


def test_every_resource_is_created_except_what_moto_skips_and_the_custom_domains(deployed: Deployment) -> None:
    resources = deployed.template["Resources"]
    created = stack_resources(deployed)
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in created.values())
    missing = {name: resources[name] for name in set(resources) - set(created)}
    # No certificate: the domains, their mappings and the alias record are conditioned off.
    assert {n for n, r in missing.items() if r.get("Condition") == "ServesFailoverDomain"} == {
        n for n, r in resources.items() if r.get("Condition") == "ServesFailoverDomain"
    }
    skipped = {r["Type"] for r in missing.values() if "Condition" not in r}
    assert skipped == MOTO_SKIPS, "moto's skips changed: update MOTO_SKIPS and docs/aws.md"


def test_table_has_its_keys_indexes_and_stream(deployed: Deployment) -> None:
    name = physical(deployed, "MessagesTable")
    table = deployed.client("dynamodb").describe_table(TableName=name)["Table"]
    assert name == "overcast-local-messages"
    assert table["KeySchema"] == TABLE_PROPERTIES["KeySchema"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    expected = {i["IndexName"]: i["KeySchema"] for i in TABLE_PROPERTIES["LocalSecondaryIndexes"]}
    assert {i["IndexName"]: i["KeySchema"] for i in table["LocalSecondaryIndexes"]} == expected
    expected = {i["IndexName"]: i["KeySchema"] for i in TABLE_PROPERTIES["GlobalSecondaryIndexes"]}
    assert {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]} == expected


def test_functions_are_configured_as_the_template_says_with_the_params_applied(deployed: Deployment) -> None:
    lambda_ = deployed.client("lambda")
    table = physical(deployed, "MessagesTable")
    functions = {n: r for n, r in deployed.template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert len(functions) == 3
    for logical, resource in functions.items():
        wanted = resource["Properties"]
        config = lambda_.get_function_configuration(FunctionName=physical(deployed, logical))
        assert (config["Handler"], config["Runtime"]) == (wanted["Handler"], "python3.12")
        assert (config["MemorySize"], config["Timeout"]) == (wanted["MemorySize"], wanted["Timeout"])
        env = config["Environment"]["Variables"]
        # Refs resolved by CloudFormation, params applied by the framework.
        assert env["OVERCAST_DYNAMODB_TABLE"] == table and env["OVERCAST_PROVIDER"] == "aws"
        assert json.loads(env["OVERCAST_PEERS"]) == PEERS
        assert config["Role"].endswith("/" + physical(deployed, "IamRoleLambdaExecution"))


def test_stream_mapping_reports_partial_batch_failures(deployed: Deployment) -> None:
    table = deployed.client("dynamodb").describe_table(TableName=physical(deployed, "MessagesTable"))["Table"]
    (mapping,) = deployed.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    assert mapping["EventSourceArn"] == table["LatestStreamArn"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["FunctionArn"].endswith(":function:" + physical(deployed, "ChangesLambdaFunction"))
    assert mapping["StartingPosition"] == "TRIM_HORIZON" and mapping["MaximumRetryAttempts"] == 10
    queue = deployed.client("sqs").get_queue_attributes(
        QueueUrl=physical(deployed, "ReplicationFailuresQueue"), AttributeNames=["QueueArn"]
    )
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == queue["Attributes"]["QueueArn"]


def test_route53_health_check_and_failover_pair(deployed: Deployment) -> None:
    route53 = deployed.client("route53")
    check_id = physical(deployed, "PrimaryHealthCheck")
    stack = deployed.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}["PrimaryHealthCheckId"] == check_id
    config = route53.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
    spec = FAILOVER["healthCheck"]
    assert config["FullyQualifiedDomainName"] == FAILOVER["primary"]["target"]
    assert (config["Type"], config["Port"], config["ResourcePath"]) == (spec["type"], spec["port"], "/health/deep")
    assert (config["RequestInterval"], config["FailureThreshold"]) == (
        spec["requestInterval"],
        spec["failureThreshold"],
    )
    assert config["Inverted"] is False
    zone = route53.list_hosted_zones_by_name(DNSName=FAILOVER["hostedZoneName"])["HostedZones"][0]["Id"]
    records = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    pair = {r["Failover"]: r for r in records if r.get("Failover")}
    assert set(pair) == {"PRIMARY", "SECONDARY"}
    for role, side in (("PRIMARY", "primary"), ("SECONDARY", "secondary")):
        record = pair[role]
        assert record["Name"].rstrip(".") == FAILOVER["domain"] and record["TTL"] == FAILOVER["ttl"]
        assert record["Type"] == FAILOVER["recordType"] and record["SetIdentifier"] == FAILOVER[side]["setIdentifier"]
        assert [v["Value"] for v in record["ResourceRecords"]] == [FAILOVER[side]["target"]]
    assert pair["PRIMARY"]["HealthCheckId"] == check_id and "HealthCheckId" not in pair["SECONDARY"]


def test_remove_deletes_the_stack_and_keeps_the_table(deployed: Deployment) -> None:
    """Last in this module: `sls remove`. The table has DeletionPolicy Retain."""
    table = physical(deployed, "MessagesTable")
    proc, seconds, connections = deployed.sls("remove")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(f"\nsls remove --stage local from moto: {seconds:.1f} s (deploy took {deployed.seconds:.1f} s)")
    assert connections == [], connections
    stacks = deployed.client("cloudformation").list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks if s["StackName"] == STACK] == ["DELETE_COMPLETE"]
    assert deployed.client("lambda").list_functions()["Functions"] == []
    assert deployed.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []
    zone = deployed.client("route53").list_hosted_zones()["HostedZones"][0]["Id"]
    records = deployed.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    assert not [r for r in records if r.get("Failover")]
    assert table in deployed.client("dynamodb").list_tables()["TableNames"]
    assert os.path.isdir(deployed.service_dir)

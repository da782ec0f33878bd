"""`sls package --config serverless.aws.yml`, offline: assertions on the generated CloudFormation
and on the deployment zip."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.aws.table import LISTING_INDEX, TABLE_PROPERTIES, VERSION_INDEX
from tests.events import load_event

ROOT = Path(__file__).resolve().parents[2]
FAILOVER = yaml.safe_load((ROOT / "failover.yml").read_text())
TEMPLATE = "cloudformation-template-update-stack.json"


@pytest.fixture(scope="module")
def template(packaged: Any) -> dict[str, Any]:
    result: dict[str, Any] = packaged["aws"].json(TEMPLATE)
    return result


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def one(template: dict[str, Any], kind: str, **properties: Any) -> dict[str, Any]:
    found = [
        r for r in of_type(template, kind).values() if all(r["Properties"].get(k) == v for k, v in properties.items())
    ]
    assert len(found) == 1, f"expected one {kind} with {properties}, found {len(found)}"
    return found[0]


def table(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]["MessagesTable"]


# -- functions and API -------------------------------------------------------------------------


def test_three_python312_functions_with_the_handlers(template: dict[str, Any]) -> None:
    functions = {
        r["Properties"]["Handler"]: r["Properties"] for r in of_type(template, "AWS::Lambda::Function").values()
    }
    assert set(functions) == {"handlers/aws.http", "handlers/aws.changes", "handlers/aws.anti_entropy"}
    for properties in functions.values():
        assert properties["Runtime"] == "python3.12"
        env = properties["Environment"]["Variables"]
        assert env["OVERCAST_DYNAMODB_TABLE"] == table(template)["Properties"]["TableName"]
        assert env["OVERCAST_PROVIDER"] == "aws" and "OVERCAST_DYNAMODB_ENDPOINT" not in env
    assert functions["handlers/aws.http"]["Timeout"] <= 29  # inside API Gateway's integration timeout


def test_replication_secret_is_read_at_run_time_never_in_the_environment(template: dict[str, Any]) -> None:
    """Only the secret's name is configured; no dynamic reference would put its value into the
    function configuration (which lambda:GetFunctionConfiguration shows)."""
    for function in of_type(template, "AWS::Lambda::Function").values():
        env = function["Properties"]["Environment"]["Variables"]
        assert "OVERCAST_REPLICATION_SECRET" not in env
        assert env["OVERCAST_REPLICATION_SECRET_ID"].endswith("/replication")
    assert "{{resolve:" not in json.dumps(template)


def test_http_api_routes_every_operation_to_the_function(template: dict[str, Any]) -> None:
    api = one(template, "AWS::ApiGatewayV2::Api")
    assert api["Properties"]["ProtocolType"] == "HTTP"
    integration = one(template, "AWS::ApiGatewayV2::Integration")
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    routes = {r["Properties"]["RouteKey"] for r in of_type(template, "AWS::ApiGatewayV2::Route").values()}
    openapi = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    documented = {
        f"{method.upper()} {path}"
        for path, item in openapi["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert documented <= routes, f"routes in openapi.yaml but not in the HTTP API: {documented - routes}"
    assert "GET /health/deep" in routes and "$default" in routes  # unknown routes get the app's JSON 404


# -- table ---------------------------------------------------------------------------------------


def test_table_is_exactly_the_adapters_design(template: dict[str, Any]) -> None:
    properties = table(template)["Properties"]
    for key, expected in TABLE_PROPERTIES.items():
        assert properties[key] == expected, f"serverless.aws.yml MessagesTable.{key} differs from adapters/aws/table.py"
    assert {i["IndexName"] for i in properties["LocalSecondaryIndexes"]} == {LISTING_INDEX}
    assert {i["IndexName"] for i in properties["GlobalSecondaryIndexes"]} == {VERSION_INDEX}


def test_table_is_on_demand_with_streams_and_point_in_time_recovery(template: dict[str, Any]) -> None:
    resource = table(template)
    properties = resource["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert resource["DeletionPolicy"] == "Retain"  # removing the stack never drops the data


# -- stream and schedule ---------------------------------------------------------------------------


def test_stream_event_source_reports_partial_failures_with_bounded_retries(template: dict[str, Any]) -> None:
    mapping = one(template, "AWS::Lambda::EventSourceMapping")["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["MessagesTable", "StreamArn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= mapping["MaximumRetryAttempts"] <= 100
    assert mapping["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["ReplicationFailuresQueue", "Arn"]
    }
    assert mapping["FunctionName"] == {"Fn::GetAtt": ["ChangesLambdaFunction", "Arn"]}


def test_anti_entropy_runs_on_a_schedule(template: dict[str, Any]) -> None:
    rule = one(template, "AWS::Events::Rule")["Properties"]
    assert rule["ScheduleExpression"].startswith("rate(") and rule["State"] == "ENABLED"
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": ["AntiEntropyLambdaFunction", "Arn"]}


# -- Route 53 failover pair ------------------------------------------------------------------------


def test_health_check_probes_the_primarys_deep_health_as_failover_yml_says(template: dict[str, Any]) -> None:
    check = one(template, "AWS::Route53::HealthCheck")["Properties"]["HealthCheckConfig"]
    spec = FAILOVER["healthCheck"]
    assert check["ResourcePath"] == "/health/deep" == spec["resourcePath"]
    assert check["FullyQualifiedDomainName"] == FAILOVER["primary"]["target"]
    assert (check["Type"], check["Port"]) == (spec["type"], spec["port"])
    assert (check["RequestInterval"], check["FailureThreshold"]) == (spec["requestInterval"], spec["failureThreshold"])
    assert check["RequestInterval"] in (10, 30) and 1 <= check["FailureThreshold"] <= 10
    assert check["Inverted"] is False
    # Disabled is an UpdateHealthCheck flag only; in HealthCheckConfig CloudFormation rejects it.
    assert "Disabled" not in check


def test_failover_records_primary_to_this_api_secondary_to_azure(template: dict[str, Any]) -> None:
    primary = one(template, "AWS::Route53::RecordSet", Failover="PRIMARY")["Properties"]
    secondary = one(template, "AWS::Route53::RecordSet", Failover="SECONDARY")["Properties"]
    for record in (primary, secondary):
        assert record["Name"] == FAILOVER["domain"] and record["TTL"] == FAILOVER["ttl"] <= 60
        assert record["Type"] == FAILOVER["recordType"] and record["HostedZoneName"] == FAILOVER["hostedZoneName"]
    assert primary["ResourceRecords"] == [FAILOVER["primary"]["target"]]
    assert primary["HealthCheckId"] == {"Ref": "PrimaryHealthCheck"}
    assert secondary["ResourceRecords"] == [FAILOVER["secondary"]["target"]]
    assert (primary["SetIdentifier"], secondary["SetIdentifier"]) == (
        FAILOVER["primary"]["setIdentifier"],
        FAILOVER["secondary"]["setIdentifier"],
    )
    # The primary's target is this API's custom domain.
    domains = {r["Properties"]["DomainName"] for r in of_type(template, "AWS::ApiGatewayV2::DomainName").values()}
    assert FAILOVER["primary"]["target"] in domains and FAILOVER["domain"] in domains


# -- IAM -------------------------------------------------------------------------------------------


def _statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = one(template, "AWS::IAM::Role")["Properties"]
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_iam_is_least_privilege(template: dict[str, Any]) -> None:
    table_arn = {"Fn::GetAtt": ["MessagesTable", "Arn"]}
    stream_arn = {"Fn::GetAtt": ["MessagesTable", "StreamArn"]}
    index_arns = [{"Fn::Join": ["/", [table_arn, "index", name]]} for name in (LISTING_INDEX, VERSION_INDEX)]
    dynamodb_actions: set[str] = set()
    for statement in _statements(template):
        actions, resources = _as_list(statement["Action"]), _as_list(statement["Resource"])
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in actions), f"wildcard action in {statement}"
        assert "*" not in resources, f"wildcard resource in {statement}"
        table_actions = [a for a in actions if a.startswith("dynamodb:")]
        if table_actions:
            dynamodb_actions |= set(table_actions)
            assert all(r in (table_arn, stream_arn, *index_arns) for r in resources), resources
            if stream_arn in resources:
                assert resources == [stream_arn]
                assert set(table_actions) <= {
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams",
                }
            else:
                assert set(table_actions) == {
                    "dynamodb:BatchGetItem",
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:Query",
                    "dynamodb:UpdateItem",
                }
                assert sorted(map(json.dumps, resources)) == sorted(map(json.dumps, [table_arn, *index_arns]))
        elif any(a.startswith("logs:") for a in actions):
            assert all("log-group:/aws/lambda/" in json.dumps(r) for r in resources)
        elif any(a.startswith("sqs:") for a in actions):
            assert resources == [{"Fn::GetAtt": ["ReplicationFailuresQueue", "Arn"]}]
        elif any(a.startswith("secretsmanager:") for a in actions):
            assert actions == ["secretsmanager:GetSecretValue"]
            [resource] = resources
            assert json.dumps(resource).endswith(':secret:overcast/dev/replication-??????"]]}')
        else:
            pytest.fail(f"unexpected statement {statement}")
    assert {"dynamodb:PutItem", "dynamodb:GetRecords"} <= dynamodb_actions
    assert not dynamodb_actions & {
        "dynamodb:Scan",
        "dynamodb:DeleteItem",
        "dynamodb:DeleteTable",
        "dynamodb:UpdateTable",
    }


# -- the zip ---------------------------------------------------------------------------------------


def test_zip_carries_only_this_providers_code(packaged: Any) -> None:
    names = set(packaged["aws"].names)
    expected = {"handlers/aws.py", "handlers/__init__.py", "handlers/kit.py"}
    expected |= {f"adapters/{p.name}" for p in (ROOT / "adapters").glob("*.py")}  # shared by every provider
    expected |= {f"adapters/aws/{p.name}" for p in (ROOT / "adapters" / "aws").glob("*.py")}
    expected |= {f"core/{p.name}" for p in (ROOT / "core").glob("*.py")}
    assert expected <= names, expected - names
    own = {n for n in names if n.endswith(".py") and n.split("/")[0] in ("core", "adapters", "handlers")}
    assert own == expected, f"unexpected modules: {sorted(own - expected)}"
    # The rest is requirements/aws.txt less what the Lambda runtime provides (test_requirements.py).
    top = {n.split("/")[0] for n in names}
    assert not top & {"boto3", "botocore", "azure", "google", "tests", "node_modules", "emulators", "runtime", "tools"}
    assert packaged["aws"].zip_path.stat().st_size < 10 * 2**20


def test_the_zip_alone_serves_a_request(packaged: Any, tmp_path: Path) -> None:
    """Unzipped like /var/task, with only boto3's site-packages beside it (no repo on the path)."""
    with zipfile.ZipFile(packaged["aws"].zip_path) as archive:
        archive.extractall(tmp_path)
    site_packages = sysconfig.get_paths()["purelib"]
    event = json.dumps(load_event("aws", "apigw_v2_deep_health_named_stage") | {"rawPath": "/prod/health"})
    code = (
        "import json, sys, handlers.aws as h\n"
        f"assert h.__file__.startswith({str(tmp_path)!r}), h.__file__\n"
        f"r = h.http(json.loads({event!r}), None)\n"
        "print(json.dumps(r))"
    )
    # -S: no site processing, so the editable install's path hook cannot pull in the repo.
    env = {"PYTHONPATH": f"{tmp_path}:{site_packages}", "OVERCAST_DYNAMODB_TABLE": "t", "AWS_REGION": "us-east-1"}
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    response = json.loads(out.stdout.strip().splitlines()[-1])
    assert response["statusCode"] == 200 and json.loads(response["body"])["status"] == "ok"


def test_the_zip_ships_bytecode_the_runtimes_python_loads(packaged: Any, tmp_path: Path) -> None:
    """tools/sls/bytecode.js compiled every module for python3.12 (the functions' runtime): that
    interpreter loads ours and the vendored packages from it, and ignores it for a changed source."""
    result = packaged["aws"]
    record = result.json("bytecode.json")
    assert record["version"] == "3.12"
    names = set(result.names)
    if record["python"] is None:  # no Python 3.12 where this ran: sources only, and the reason recorded
        assert "no Python 3.12" in record["reason"]
        assert not [n for n in names if n.endswith(".pyc")]
        return
    assert result.bytecode_tag == "cpython-312"
    lacking = [n for n in names if n.endswith(".py") and cache_from(n, "cpython-312") not in names]
    assert not lacking, lacking[:10]
    with zipfile.ZipFile(result.zip_path) as archive:
        archive.extractall(tmp_path)
    (tmp_path / "core" / "errors.py").write_text((tmp_path / "core" / "errors.py").read_text() + "\nEDITED = True\n")
    code = (
        "import core.app, core.anti_entropy, handlers.kit, adapters.aws.events, jwt, core.errors as e; print(e.EDITED)"
    )
    env = {"PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [record["python"], "-S", "-v", "-c", code]
    out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-2000:]
    loaded = [line.split()[-1].strip("'") for line in out.stderr.splitlines() if line.startswith("# code object from")]
    ours = [Path(p).relative_to(tmp_path).as_posix() for p in loaded if p.startswith(str(tmp_path))]
    from_source = sorted(p for p in ours if "__pycache__" not in p)
    assert from_source == ["core/errors.py"], from_source  # the edited one only: checked against its source
    assert len(ours) > 40 and any(p.startswith("jwt/") for p in ours)


def cache_from(source: str, tag: str) -> str:
    folder, _, name = source.rpartition("/")
    return f"{folder}/__pycache__/{name[:-3]}.{tag}.pyc".lstrip("/")


def test_stage_region_and_params_drive_the_template(aws_prod: Any) -> None:
    """A production-style package: stage, region and params change names, the failover switch
    and the peers, and nothing else needs editing."""
    from .conftest import PROD_CERTIFICATE, PROD_PEERS

    template = aws_prod.json(TEMPLATE)
    assert table(template)["Properties"]["TableName"] == "overcast-prod-messages"
    assert template["Parameters"]["CertificateArn"]["Default"] == PROD_CERTIFICATE
    assert template["Conditions"]["ServesFailoverDomain"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "CertificateArn"}, ""]}]
    }
    http = template["Resources"]["HttpLambdaFunction"]["Properties"]
    assert json.loads(http["Environment"]["Variables"]["OVERCAST_PEERS"]) == json.loads(PROD_PEERS)
    assert http["Environment"]["Variables"]["OVERCAST_REPLICATION_SECRET_ID"] == "overcast/prod/replication"
    domain = template["Resources"]["PrimaryDomain"]["Properties"]["DomainNameConfigurations"][0]
    assert domain["CertificateArn"] == {"Ref": "CertificateArn"}
    state = aws_prod.json("serverless-state.json")
    assert state["service"]["provider"]["region"] == "eu-west-1"


def test_default_stage_deploys_no_dns(template: dict[str, Any]) -> None:
    """Without a certificate (dev stages), the custom domains and every Route 53 resource are
    conditioned off, so a stray deploy cannot change the production records."""
    parameters = template["Parameters"]
    assert parameters["CertificateArn"]["Default"] == "" and parameters["FailoverRecords"]["Default"] == "false"
    assert template["Conditions"]["ManagesFailoverRecords"] == {
        "Fn::Or": [{"Condition": "ServesFailoverDomain"}, {"Fn::Equals": [{"Ref": "FailoverRecords"}, "true"]}]
    }
    for kind in ("AWS::Route53::HealthCheck", "AWS::Route53::RecordSet", "AWS::ApiGatewayV2::DomainName"):
        for resource in of_type(template, kind).values():
            assert resource["Condition"] in ("ServesFailoverDomain", "ManagesFailoverRecords")
    # The alias to the API's own domain needs the domain; the failover pair only needs the switch.
    assert template["Resources"]["PrimaryDomainRecord"]["Condition"] == "ServesFailoverDomain"
    for name in ("PrimaryHealthCheck", "FailoverPrimaryRecord", "FailoverSecondaryRecord"):
        assert template["Resources"][name]["Condition"] == "ManagesFailoverRecords"

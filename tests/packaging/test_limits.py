"""limits.yml lands in every provider's generated package: API Gateway throttles and reserved
concurrency (AWS), host.json and the scale-out app setting (Azure), maxInstances (GCP), action
concurrency (OpenWhisk) — the same numbers everywhere, from the one file."""

from __future__ import annotations

import json
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
LIMITS: dict[str, Any] = yaml.safe_load((ROOT / "limits.yml").read_text())
WRITE_ROUTES = ("POST /channels/{channel}/messages", "DELETE /channels/{channel}/messages/{message_id}")


@cache
def printed(provider: str) -> dict[str, Any]:
    """The configuration as osls resolves it (`sls print`, offline)."""
    proc = subprocess.run(
        [
            str(ROOT / "node_modules" / ".bin" / "sls"),
            "print",
            "--config",
            f"serverless.{provider}.yml",
            "--format",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resolved: dict[str, Any] = json.loads(proc.stdout[proc.stdout.index("{") :])
    return resolved


def test_aws_reserved_concurrency_per_function(packaged: Any) -> None:
    template = packaged["aws"].json("cloudformation-template-update-stack.json")
    reserved = {
        r["Properties"]["Handler"].split(".")[-1]: r["Properties"].get("ReservedConcurrentExecutions")
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    concurrency = LIMITS["concurrency"]
    assert reserved == {
        "http": concurrency["http"],
        "changes": concurrency["changes"],
        "anti_entropy": concurrency["antiEntropy"],
    }


def test_aws_stage_and_write_route_throttles(packaged: Any) -> None:
    template = packaged["aws"].json("cloudformation-template-update-stack.json")
    stage = template["Resources"]["HttpApiStage"]["Properties"]
    api = LIMITS["api"]
    assert stage["DefaultRouteSettings"] == {"ThrottlingRateLimit": api["rate"], "ThrottlingBurstLimit": api["burst"]}
    routes = {
        r["Properties"]["RouteKey"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Route"
    }
    for key in WRITE_ROUTES:
        assert key in routes, f"{key} is not a route of the API, so its throttle would apply to nothing"
        assert stage["RouteSettings"][key] == {
            "ThrottlingRateLimit": api["writeRate"],
            "ThrottlingBurstLimit": api["writeBurst"],
        }
    assert api["writeRate"] <= api["rate"] and api["writeBurst"] <= api["burst"]


def test_azure_host_json_and_scale_out(packaged: Any) -> None:
    host = packaged["azure"].read_json("host.json")
    azure = LIMITS["azure"]
    assert host["extensions"]["http"]["maxConcurrentRequests"] == azure["maxConcurrentRequests"]
    assert host["extensions"]["http"]["maxOutstandingRequests"] == azure["maxOutstandingRequests"]
    settings = printed("azure")["provider"]["environment"]
    assert str(settings["WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT"]) == str(azure["instances"])
    # The app as a whole serves at most what one AWS function may.
    assert azure["instances"] * azure["maxConcurrentRequests"] <= LIMITS["concurrency"]["http"]


def test_gcp_max_instances_per_function(packaged: Any) -> None:
    template = yaml.safe_load(packaged["gcp"].file("configuration-template-update.yml").read_text())
    functions = {
        r["properties"]["entryPoint"]: r["properties"].get("maxInstances")
        for r in template["resources"]
        if r["type"] == "gcp-types/cloudfunctions-v1:projects.locations.functions"
    }
    concurrency = LIMITS["concurrency"]
    assert functions == {
        "http": concurrency["http"],
        "changes": concurrency["changes"],
        "anti_entropy": concurrency["antiEntropy"],
    }


def test_openwhisk_action_concurrency() -> None:
    functions = printed("openwhisk")["functions"]
    assert {name: f.get("concurrency") for name, f in functions.items()} == {
        name: LIMITS["openwhisk"]["concurrency"] for name in ("http", "changes", "anti_entropy")
    }

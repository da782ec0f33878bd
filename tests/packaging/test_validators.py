"""The vendors' validators on what `sls package` generates for AWS, dev and prod (with a
certificate and peers): cfn-lint (0 errors, warnings ignored only in .cfnlintrc.yaml) and checkov
on the templates and on serverless.aws.yml (0 failures, every skip named with its reason in
.checkov.yaml).

Both tools live in .venv-validators (scripts/setup.sh), away from the project's own pins, and run
offline: checkov with --skip-download (nothing fetched from its vendor's service).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.packaging import REPO_ROOT

from .conftest import PROD_REGION, LazyPackages, Packaged

VALIDATORS = REPO_ROOT / ".venv-validators" / "bin"
CFN_LINT_CONFIG = REPO_ROOT / ".cfnlintrc.yaml"
CHECKOV_CONFIG = REPO_ROOT / ".checkov.yaml"
TEMPLATES = ("cloudformation-template-create-stack.json", "cloudformation-template-update-stack.json")
REGIONS = {"dev": "us-east-1", "prod": PROD_REGION}


def tool(name: str) -> str:
    path = VALIDATORS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `bash scripts/setup.sh` (it creates {VALIDATORS.parent})", pytrace=False)
    return str(path)


@pytest.fixture(scope="module", params=sorted(REGIONS))
def stage(request: pytest.FixtureRequest, packaged: LazyPackages, aws_prod: Packaged) -> tuple[str, Packaged]:
    return request.param, aws_prod if request.param == "prod" else packaged["aws"]


def cfn_lint(template: Path, region: str) -> subprocess.CompletedProcess[str]:
    options = ["--config-file", str(CFN_LINT_CONFIG), "--regions", region, "--format", "parseable"]
    return subprocess.run(
        [tool("cfn-lint"), *options, "--", str(template)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def checkov(*args: str, config: Path | None = CHECKOV_CONFIG, cwd: Path = REPO_ROOT) -> list[dict[str, Any]]:
    """checkov's JSON report, one entry per framework it ran. Without config (and run where no
    .checkov.yaml is found), every check runs."""
    options = ["--config-file", str(config)] if config else []
    proc = subprocess.run(
        [tool("checkov"), *options, "--skip-download", "--output", "json", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]  # 1: some check failed
    report = json.loads(proc.stdout)
    reports: list[dict[str, Any]] = report if isinstance(report, list) else [report]
    assert reports and all("results" in r for r in reports), proc.stdout[:2000]
    return reports


def failures(reports: list[dict[str, Any]]) -> list[str]:
    return [
        f"{c['check_id']} {c['check_name']} ({c['resource']})" for r in reports for c in r["results"]["failed_checks"]
    ]


def test_cfn_lint_has_nothing_to_report(stage: tuple[str, Packaged]) -> None:
    name, result = stage
    for template in TEMPLATES:
        proc = cfn_lint(result.file(template), REGIONS[name])
        # Exit code 0: no error, and no warning or informational finding outside the config.
        assert proc.returncode == 0, f"{name} {template}:\n{proc.stdout}{proc.stderr}"


def test_cfn_lint_still_rejects_an_invalid_health_check_property(packaged: LazyPackages, tmp_path: Path) -> None:
    """The config ignores warnings only: the E3002 a `Disabled` key once caused is still an error."""
    template = packaged["aws"].json(TEMPLATES[1])
    config = template["Resources"]["PrimaryHealthCheck"]["Properties"]["HealthCheckConfig"]
    config["Disabled"] = False
    broken = tmp_path / "template.json"
    broken.write_text(json.dumps(template))
    proc = cfn_lint(broken, REGIONS["dev"])
    assert proc.returncode & 2, proc.stdout  # bit 2: errors
    assert "E3002" in proc.stdout and "Disabled" in proc.stdout


def test_checkov_passes_the_template(stage: tuple[str, Packaged]) -> None:
    name, result = stage
    reports = checkov("--framework", "cloudformation", "--file", str(result.file(TEMPLATES[1])))
    assert failures(reports) == [], name
    passed = sum(len(r["results"]["passed_checks"]) for r in reports)
    assert passed >= 20, f"{name}: only {passed} checks ran"


def serverless_dir(tmp_path: Path) -> Path:
    """serverless.aws.yml where checkov's serverless scanner finds it (it reads files named
    serverless.yml), with the files it includes."""
    directory = tmp_path / "service"
    directory.mkdir()
    shutil.copy(REPO_ROOT / "serverless.aws.yml", directory / "serverless.yml")
    for included in ("failover.yml", "limits.yml"):
        if (REPO_ROOT / included).exists():
            shutil.copy(REPO_ROOT / included, directory / included)
    return directory


def test_checkov_passes_serverless_aws_yml(tmp_path: Path) -> None:
    reports = checkov("--framework", "serverless", "--directory", str(serverless_dir(tmp_path)))
    assert failures(reports) == []
    assert sum(len(r["results"]["passed_checks"]) for r in reports) >= 5


def test_every_checkov_skip_has_a_reason_and_is_still_needed(
    packaged: LazyPackages, aws_prod: Packaged, tmp_path: Path
) -> None:
    """Each skip in .checkov.yaml has its reason above it, and is exactly what fails without the
    config (a check fixed since is not left skipped)."""
    text = CHECKOV_CONFIG.read_text()
    configured = yaml.safe_load(text)["skip-check"]
    for check in configured:
        before = text[: text.index(f"- {check}\n")].rstrip().splitlines()[-1].strip()
        assert before.startswith("#"), f"{check} is skipped without a reason comment above it"
    assert len(configured) == len(set(configured))
    unconfigured = tmp_path / "no-config"  # no .checkov.yaml here, so checkov runs every check
    unconfigured.mkdir()
    failing: set[str] = set()
    for result in (packaged["aws"], aws_prod):
        template = str(result.file(TEMPLATES[1]))
        reports = checkov("--framework", "cloudformation", "--file", template, config=None, cwd=unconfigured)
        failing |= {c["check_id"] for r in reports for c in r["results"]["failed_checks"]}
    reports = checkov(
        "--framework", "serverless", "--directory", str(serverless_dir(tmp_path)), config=None, cwd=unconfigured
    )
    failing |= {c["check_id"] for r in reports for c in r["results"]["failed_checks"]}
    assert failing == set(configured)


# -- Azure: checkov's ARM scanner on the template the Azure plugin would deploy ---------------------

# serverless-azure-functions 2.2.1 deploys a fixed ARM template (consumption plan);
# .serverless_plugins/azure-arm-hardening adds https only, TLS 1.2, HTTP/2 and no FTP to its Function
# App and https only / TLS 1.2 / no public blobs to its storage account. What checkov still reports
# is decided against, each for its reason (docs/azure.md, "Validators"). A finding outside this list
# fails the test, and so does one that is gone (a fixed check must leave the list).
AZURE_ARM_DECIDED_AGAINST = {
    "CKV_AZURE_17",  # Function App client certificates: a public API authenticated by bearer tokens
    "CKV_AZURE_35",  # storage network default Allow: the consumption plan's host reaches it from shared workers
    "CKV_AZURE_36",  # storage trusted-services bypass: follows from 35 (no network rules to bypass)
    "CKV_AZURE_43",  # storage name: a parameter the plugin fills with a valid name; the check cannot evaluate it
    "CKV_AZURE_206",  # storage Standard_LRS: the Functions host's own state, not the data (that is Cosmos DB)
    "CKV_AZURE_212",  # consumption plan: no minimum instances (Azure is the secondary; capacity is on AWS)
    "CKV_AZURE_213",  # App Service health check: Route 53 probes /health/deep; Azure is the secondary
    "CKV_AZURE_222",  # public network access: the API is public by design
}


def test_checkov_on_the_azure_arm_template(tmp_path: Path) -> None:
    sls = REPO_ROOT / "node_modules" / ".bin" / "sls"
    printed = subprocess.run(
        [str(sls), "print", "--config", "serverless.azure.yml", "--format", "json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert printed.returncode == 0, printed.stdout + printed.stderr
    (tmp_path / "config.json").write_text(printed.stdout[printed.stdout.index("{") :])
    built = subprocess.run(
        ["node", str(REPO_ROOT / "tools" / "azure_arm_template.js"), "config.json", "arm.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    template = json.loads((tmp_path / "arm.json").read_text())
    assert {r["type"] for r in template["resources"]} >= {"Microsoft.Web/sites", "Microsoft.Storage/storageAccounts"}
    # Every check runs (.checkov.yaml is AWS's and is not read here).
    reports = checkov("--framework", "arm", "--file", str(tmp_path / "arm.json"), config=None, cwd=tmp_path)
    failed = {c["check_id"] for r in reports for c in r["results"]["failed_checks"]}
    assert failed == AZURE_ARM_DECIDED_AGAINST
    site = next(r for r in template["resources"] if r["type"] == "Microsoft.Web/sites")
    assert site["properties"]["httpsOnly"] is True
    assert {k: site["properties"]["siteConfig"][k] for k in ("minTlsVersion", "http20Enabled", "ftpsState")} == {
        "minTlsVersion": "1.2",
        "http20Enabled": True,
        "ftpsState": "Disabled",
    }
    storage = next(r for r in template["resources"] if r["type"] == "Microsoft.Storage/storageAccounts")
    assert storage["properties"]["supportsHttpsTrafficOnly"] is True
    assert storage["properties"]["minimumTlsVersion"] == "TLS1_2"
    assert sum(len(r["results"]["passed_checks"]) for r in reports) >= 5

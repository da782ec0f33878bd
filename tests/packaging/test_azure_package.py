"""`sls package --config serverless.azure.yml` offline: what the deployment zip holds, each
function.json (bindings, route, change-feed trigger with its lease container, retry policy), and
the app settings (secrets only as Key Vault references)."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import typing
from typing import Any

import pytest
import yaml

import handlers.azure as entrypoints
from tools.packaging import REPO_ROOT

FUNCTIONS = {"http": "httpTrigger", "changes": "cosmosDBTrigger", "anti_entropy": "timerTrigger"}
KEY_VAULT_REFERENCE = re.compile(
    r"^@Microsoft\.KeyVault\(SecretUri=https://[a-z0-9-]+\.vault\.azure\.net/secrets/[a-z0-9-]+/\)$"
)
SECRET_SETTINGS = ("COSMOS_ENDPOINT", "COSMOS_KEY", "COSMOS_CONNECTION", "OVERCAST_SECRET_AWS")
DURATION = re.compile(r"^(\d+\.)?(\d{2}):(\d{2}):(\d{2})$")


@pytest.fixture(scope="module")
def azure(packaged: Any) -> Any:
    return packaged["azure"]


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The service configuration with variables resolved, as osls sees it (`sls print`, offline)."""
    sls = REPO_ROOT / "node_modules" / ".bin" / "sls"
    if not sls.exists():
        pytest.fail(f"the npm toolchain is not installed: run `npm ci` in {REPO_ROOT}", pytrace=False)
    proc = subprocess.run(
        [str(sls), "print", "--config", "serverless.azure.yml", "--format", "json"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    printed: dict[str, Any] = json.loads(proc.stdout[proc.stdout.index("{") :])
    return printed


def function_json(azure: Any, name: str) -> dict[str, Any]:
    document: dict[str, Any] = azure.read_json(f"{name}/function.json")
    return document


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_points_at_a_real_entrypoint_with_matching_parameter_names(azure: Any, name: str) -> None:
    document = function_json(azure, name)
    assert document["scriptFile"] == "../handlers/azure.py"  # relative to the function's folder
    assert "handlers/azure.py" in azure.names
    assert document["entryPoint"] == name and document["disabled"] is False
    trigger = document["bindings"][0]
    assert trigger["type"] == FUNCTIONS[name] and trigger["direction"] == "in"
    # The Python worker passes each input binding by name, and `context` by name.
    parameters = list(inspect.signature(getattr(entrypoints, name)).parameters)
    assert parameters == [trigger["name"], "context"]
    assert_worker_loads(getattr(entrypoints, name), document["bindings"])


def assert_worker_loads(function: Any, bindings: list[dict[str, Any]]) -> None:
    """The checks the Python worker makes when it loads a v1-model function (its Registry
    .add_function): annotations resolve; ``context``, if annotated, is exactly a class named
    Context; each binding's parameter annotation is accepted by that binding's converter; the
    ``$return`` annotation by the output binding's converter."""
    from azure.functions import meta

    hints = typing.get_type_hints(function)
    context = hints.get("context")
    assert context is None or (isinstance(context, type) and context.__name__ == "Context"), context
    for binding in bindings:
        converter = meta._ConverterMeta.get(binding["type"])
        assert converter is not None, f"no converter for {binding['type']}"
        if binding["name"] == "$return":
            assert converter.check_output_type_annotation(hints["return"]), hints["return"]
        else:
            annotation = hints[binding["name"]]
            assert isinstance(annotation, type) and converter.check_input_type_annotation(annotation), annotation


def test_http_function_catches_every_path_anonymously(azure: Any) -> None:
    trigger, output = function_json(azure, "http")["bindings"]
    assert trigger["route"] == "{*path}" and trigger["authLevel"] == "anonymous"
    assert {"GET", "POST", "DELETE"} <= {m.upper() for m in trigger["methods"]}
    assert output == {"type": "http", "direction": "out", "name": "$return"}


def test_change_feed_trigger_has_its_lease_container_and_a_bounded_retry_policy(
    azure: Any, config: dict[str, Any]
) -> None:
    document = function_json(azure, "changes")
    (trigger,) = document["bindings"]
    environment = config["provider"]["environment"]
    assert trigger["databaseName"] == environment["COSMOS_DATABASE"]
    assert trigger["containerName"] == environment["COSMOS_CONTAINER"]
    assert trigger["leaseContainerName"] == "leases" and trigger["createLeaseContainerIfNotExists"] is True
    assert trigger["connection"] == "COSMOS_CONNECTION" and "COSMOS_CONNECTION" in environment
    # Extension v4 names only: the v3 names the plugin's own table knows must not leak through.
    assert not {"collectionName", "leaseCollectionName", "connectionStringSetting"} & set(trigger)
    assert trigger["maxItemsPerInvocation"] <= 100  # one replication batch per invocation
    retry = document["retry"]
    assert retry["strategy"] == "exponentialBackoff"
    assert 1 <= retry["maxRetryCount"] <= 20  # bounded: anti-entropy takes over after the last one
    low, high = _seconds(retry["minimumInterval"]), _seconds(retry["maximumInterval"])
    assert 0 < low <= high
    horizon = sum(min(low * 2**i, high) for i in range(retry["maxRetryCount"]))
    window = int(environment["OVERCAST_ANTI_ENTROPY_WINDOW_S"])
    assert horizon + 300 < window, "anti-entropy must look further back than the retries reach"


def test_anti_entropy_runs_on_a_schedule(azure: Any) -> None:
    (trigger,) = function_json(azure, "anti_entropy")["bindings"]
    fields = trigger["schedule"].split()
    assert len(fields) == 6 and fields[1].startswith("*/")  # NCRONTAB with seconds: every N minutes


def test_host_json_runs_extension_bundle_4_and_serves_the_api_at_the_same_paths_as_aws(
    azure: Any, config: dict[str, Any]
) -> None:
    host = azure.read_json("host.json")
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["id"] == "Microsoft.Azure.Functions.ExtensionBundle"
    assert host["extensionBundle"]["version"].startswith("[4.")  # the Cosmos DB extension v4 names
    prefix = host["extensions"]["http"]["routePrefix"]
    assert prefix == config["provider"]["environment"]["OVERCAST_AZURE_ROUTE_PREFIX"] == ""


def test_package_holds_the_azure_code_and_sdks_and_nothing_of_other_clouds(azure: Any) -> None:
    names = azure.names
    for needed in ("core/app.py", "adapters/azure/store.py", "adapters/http_peer.py", "handlers/azure.py"):
        assert needed in names
    assert any(n.startswith("azure/cosmos/") for n in names) and any(n.startswith("azure/functions/") for n in names)
    forbidden = ("boto3/", "botocore/", "google/", "handlers/aws.py", "handlers/gcp.py", "adapters/aws/", "tests/")
    leaked = [n for n in names if n.startswith(forbidden) or "node_modules/" in n or "__pycache__" in n]
    assert not leaked, leaked[:10]


def test_python_runtime_is_one_azure_still_runs(config: dict[str, Any]) -> None:
    assert config["provider"]["runtime"] in {"python3.11", "python3.12"}
    assert config["provider"]["os"] == "linux" and config["provider"]["functionApp"]["extensionVersion"] == "~4"
    widened = subprocess.run(
        [
            "node",
            "-e",
            "const P = require('./.serverless_plugins/azure-python-runtimes');"
            "new P({serviceDir: process.cwd()});"
            "const r = require(require.resolve('serverless-azure-functions/lib/config/runtime', {paths: [process.cwd()]}));"
            "console.log(JSON.stringify({ok: r.supportedRuntimeSet.has(process.argv[1]), fx: r.dockerImages[process.argv[1]]}));",
            config["provider"]["runtime"],
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    version = config["provider"]["runtime"].removeprefix("python")
    assert json.loads(widened.stdout) == {"ok": True, "fx": f"PYTHON|{version}"}  # the deploy's linuxFxVersion


def test_secrets_are_key_vault_references_never_literals(config: dict[str, Any]) -> None:
    environment = config["provider"]["environment"]
    for name in SECRET_SETTINGS:
        assert KEY_VAULT_REFERENCE.match(environment[name]), f"{name} must be a Key Vault reference"
    assert config["provider"]["keyVault"]["name"] in environment["COSMOS_KEY"]  # the vault the app may read
    peers = json.loads(environment["OVERCAST_PEERS"])
    assert all(peer["secret_env"] in environment and "secret" not in peer for peer in peers)
    raw = yaml.safe_load((REPO_ROOT / "serverless.azure.yml").read_text())
    for name, value in raw["provider"]["environment"].items():
        text = str(value)
        assert "AccountKey=" not in text and not re.search(r"[A-Za-z0-9+/]{40,}={0,2}", text), name


def _seconds(duration: str) -> int:
    match = DURATION.match(duration)
    assert match, duration
    days = int(match[1][:-1]) if match[1] else 0
    return days * 86400 + int(match[2]) * 3600 + int(match[3]) * 60 + int(match[4])


@pytest.mark.parametrize(
    ("retry", "problem"),
    [
        ({"strategy": "exponentialBackoff", "maxRetryCount": 5, "minimumInterval": "5s"}, "minimumInterval"),
        ({"strategy": "fixedDelay", "maxRetryCount": 5}, "delayInterval"),
        ({"strategy": "forever", "maxRetryCount": 5}, "strategy"),
        ({"strategy": "fixedDelay", "maxRetryCount": -2, "delayInterval": "00:00:05"}, "maxRetryCount"),
    ],
)
def test_a_bad_retry_policy_fails_the_packaging_with_a_clear_message(retry: dict[str, Any], problem: str) -> None:
    script = (
        "const {validateRetry} = require('./.serverless_plugins/azure-function-extras.js');"
        "try { validateRetry('changes', JSON.parse(process.argv[1])); console.log('accepted'); }"
        "catch (e) { console.log(e.message); }"
    )
    out = subprocess.run(
        ["node", "-e", script, json.dumps(retry)], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("functions.changes.retry:") and problem in out, out


SMOKE = r"""
import importlib, importlib.machinery, importlib.util, json, sys
root, calls = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, root)  # the worker puts the app root (with the vendored requirements) on sys.path
# What the Python worker's loader does: an `__app__` namespace over the app root, then
# import `__app__.<scriptFile path>` and take the entryPoint.
spec = importlib.machinery.ModuleSpec("__app__", None)
spec.submodule_search_locations = [root]
sys.modules["__app__"] = importlib.util.module_from_spec(spec)
module = importlib.import_module("__app__.handlers.azure")
import azure.functions as func

class Context(func.Context):
    invocation_id = "smoke-1"
    thread_local_storage = function_name = function_directory = trace_context = retry_context = None

answers = []
for method, path, body in calls:  # "{id}" in a path is the id the previous answer carried
    path = path.replace("{id}", (answers[-1][1] or {}).get("id", "")) if answers else path
    request = func.HttpRequest(method, "https://func.example.net/" + path, route_params={"path": path},
                               headers={"content-type": "application/json"}, body=body.encode())
    response = module.http(request, Context())
    answers.append((response.status_code, json.loads(response.get_body() or b"null")))
module.changes(func.DocumentList(), Context())  # nothing to forward: returns without the store
outside = sorted({m.__file__ for m in sys.modules.values() if getattr(m, "__file__", None) and not m.__file__.startswith((root, sys.base_prefix))})
print(json.dumps({"answers": answers, "outside": outside}))
"""


def run_unzipped(azure: Any, tmp_path: Any, calls: list[tuple[str, str, str]], env: dict[str, str]) -> list[Any]:
    """Unzip the package and run HTTP calls through it the way the Python worker loads it, with
    no site-packages at all (`python -S`): everything it imports must come from the zip."""
    import sys
    import zipfile

    root = tmp_path / "wwwroot"
    with zipfile.ZipFile(azure.zip_path) as archive:
        archive.extractall(root)
    proc = subprocess.run(
        [sys.executable, "-S", "-c", SMOKE, str(root), json.dumps(calls)],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "OVERCAST_LOG_LEVEL": "ERROR", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["outside"] == [], result["outside"]  # nothing imported from outside the package
    answers: list[Any] = result["answers"]
    return answers


def test_the_package_runs_on_its_own_contents(azure: Any, tmp_path: Any) -> None:
    """Without Cosmos settings the HTTP function answers 503 `misconfigured` naming the setting."""
    ((status, body),) = run_unzipped(azure, tmp_path, [("GET", "health/deep", "")], {})
    assert status == 503
    assert body["error"]["code"] == "misconfigured" and "COSMOS_ENDPOINT" in body["error"]["message"]


@pytest.mark.emulator("cosmos")
def test_the_package_serves_from_cosmos_with_tls_verification_on(azure: Any, tmp_path: Any) -> None:
    """The unzipped package with the production client (TLS verified): the emulator serves a
    certificate made here and trusted through REQUESTS_CA_BUNDLE, so nothing is relaxed."""
    import shutil

    from adapters.azure.store import ensure_container
    from emulators.cosmos import KEY, CosmosEmulator

    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make a certificate"
    # Not 127.0.0.1: azure-cosmos itself skips TLS verification for localhost and 127.0.0.1
    # (emulator convenience), and this test is about the verifying client.
    host = "127.0.0.7"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={host}",
         "-addext", f"subjectAltName=IP:{host}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    emulator = CosmosEmulator(host=host, tls_cert=cert, tls_key=key).start()
    try:
        ensure_container(emulator.client(), "overcast", "messages")
        # Not a test of authentication: writes are open explicitly (unconfigured, they answer 503).
        env = {"COSMOS_ENDPOINT": emulator.endpoint, "COSMOS_KEY": KEY, "REQUESTS_CA_BUNDLE": str(cert)}
        env["OVERCAST_AUTH_DISABLED"] = "true"  # this test is about the store's TLS; auth: test_auth_every_provider
        calls = [
            ("POST", "channels/london/messages", '{"author": "ada", "text": "Hello London"}'),
            ("GET", "channels/london/messages/{id}", ""),
            ("GET", "health/deep", ""),
        ]
        (created_status, created), (fetched_status, fetched), (deep_status, deep) = run_unzipped(
            azure, tmp_path, calls, env
        )
        # And verification really is on: without trusting the certificate the store is unreachable.
        untrusted = {k: v for k, v in env.items() if k != "REQUESTS_CA_BUNDLE"}
        ((refused_status, refused),) = run_unzipped(
            azure, tmp_path / "untrusted", [("GET", "health/deep", "")], untrusted
        )
    finally:
        emulator.stop()
    assert created_status == 201 and created["served_by"]["provider"] == "azure"
    assert fetched_status == 200 and fetched["text"] == "Hello London"
    assert deep_status == 200 and deep["store"] == "cosmos"
    assert refused_status == 503 and refused["error"]["code"] == "store_unreachable"

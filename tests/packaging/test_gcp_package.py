"""`sls package --config serverless.gcp.yml`, offline: the Deployment Manager template and the zip.

The template is what `sls deploy` would hand Deployment Manager, so these assertions are the
deployment's review: runtimes, entry points that main.py really exports, triggers that match the
store's document layout, retries on the event function, secrets only as Secret Manager
references, an environment core accepts, and a zip with one vendor SDK.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest
import yaml

from core.settings import Settings

TEMPLATE = "configuration-template-update.yml"
FUNCTION_TYPE = "gcp-types/cloudfunctions-v1:projects.locations.functions"
SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|PRIVATE|CREDENTIAL|API_KEY", re.IGNORECASE)


@pytest.fixture(scope="module")
def template(packaged: Any) -> dict[str, Any]:
    return yaml.safe_load(packaged["gcp"].file(TEMPLATE).read_text())


@pytest.fixture(scope="module")
def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {
        r["properties"]["entryPoint"]: r["properties"] for r in template["resources"] if r["type"] == FUNCTION_TYPE
    }
    assert found, "no Cloud Functions in the template"
    return found


def test_three_functions_on_python312(functions: dict[str, dict[str, Any]]) -> None:
    assert set(functions) == {"http", "changes", "anti_entropy"}
    assert {f["runtime"] for f in functions.values()} == {"python312"}


def test_entry_points_are_what_main_py_exports(packaged: Any, functions: dict[str, dict[str, Any]]) -> None:
    tree = ast.parse(packaged["gcp"].read("main.py"))
    exported = {
        alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    assert set(functions) <= exported
    handlers_source = packaged["gcp"].read("handlers/gcp.py").decode()
    for entry_point in functions:
        assert f"def {entry_point}(" in handlers_source


def test_http_function_has_an_https_trigger(functions: dict[str, dict[str, Any]]) -> None:
    assert "httpsTrigger" in functions["http"]
    assert "eventTrigger" not in functions["http"]


def test_firestore_trigger_matches_the_store_layout_and_retries(functions: dict[str, dict[str, Any]]) -> None:
    replicate = functions["changes"]
    trigger = replicate["eventTrigger"]
    assert trigger["eventType"] == "providers/cloud.firestore/eventTypes/document.write"
    env = replicate["environmentVariables"]
    expected = (
        f"projects/{env['OVERCAST_FIRESTORE_PROJECT']}/databases/{env['OVERCAST_FIRESTORE_DATABASE']}/documents/"
        f"{env['OVERCAST_FIRESTORE_COLLECTION']}/{{channel}}/messages/{{messageId}}"
    )
    assert trigger["resource"] == expected
    # Without failurePolicy.retry a raised exception (a failed push) would be dropped, not retried.
    assert trigger["failurePolicy"] == {"retry": {}}


def test_anti_entropy_is_triggered_by_a_declared_topic(
    template: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    trigger = functions["anti_entropy"]["eventTrigger"]
    assert trigger["eventType"] == "providers/cloud.pubsub/eventTypes/topic.publish"
    topics = {r["properties"]["topic"] for r in template["resources"] if r["type"] == "pubsub.v1.topic"}
    assert trigger["resource"].rsplit("/topics/", 1)[1] in topics
    budget = float(functions["anti_entropy"]["environmentVariables"]["OVERCAST_ANTI_ENTROPY_BUDGET_S"])
    assert budget < float(functions["anti_entropy"]["timeout"].rstrip("s"))


def test_secrets_are_secret_manager_references_never_values(functions: dict[str, dict[str, Any]]) -> None:
    for name, function in functions.items():
        env = function.get("environmentVariables", {})
        assert not [key for key in env if SECRETISH.search(key)], f"{name}: a secret-looking variable holds a literal"
        references = {s["key"]: s for s in function.get("secretEnvironmentVariables", [])}
        peers = json.loads(env["OVERCAST_PEERS"])
        assert peers, f"{name}: no replication peers configured"
        for peer in peers:
            reference = references.get(peer["secret_env"])
            assert reference is not None, f"{name}: {peer['secret_env']} is not a Secret Manager reference"
            assert reference["secret"] and reference["version"] == "latest"
            assert set(reference) <= {"key", "secret", "version", "projectId"}


def test_environment_is_accepted_by_core(functions: dict[str, dict[str, Any]]) -> None:
    for function in functions.values():
        env = dict(function["environmentVariables"])
        env.update({s["key"]: "resolved-at-runtime" for s in function.get("secretEnvironmentVariables", [])})
        settings = Settings.from_env(env)
        assert settings.provider == "gcp" and settings.origin == "gcp"
        assert {peer.name for peer in settings.peers} == {"aws", "azure"}
        assert all(peer.url.startswith("https://") for peer in settings.peers)


def test_zip_carries_the_gcp_code_and_only_the_google_sdk(packaged: Any) -> None:
    names = set(packaged["gcp"].names)
    for required in (
        "main.py",
        "handlers/gcp.py",
        "adapters/gcp/store.py",
        "adapters/gcp/events.py",
        "adapters/gcp/events.py",
        "adapters/http_peer.py",
        "core/app.py",
        "core/anti_entropy.py",
    ):
        assert required in names, f"{required} missing from the zip"
    assert any(n.startswith("google/cloud/firestore_v1/") for n in names), "google-cloud-firestore is not vendored"
    forbidden = (
        "handlers/aws",
        "handlers/azure",
        "handlers/local",
        "adapters/aws/",
        "adapters/azure/",
        "adapters/local/",
        "boto3/",
        "botocore/",
        "azure/",
        "tests/",
        "runtime/",
        "emulators/",
        ".venv/",
        "node_modules/",
    )
    leaked = sorted(n for n in names if n.startswith(forbidden))
    assert not leaked, f"the GCP package carries {leaked[:5]}"


def test_vendored_binaries_are_for_cloud_functions_python312(packaged: Any) -> None:
    extensions = [n for n in packaged["gcp"].names if n.endswith(".so") and "cpython-" in n]
    assert extensions, "no compiled extensions (grpcio, protobuf) in the zip"
    assert all("cpython-312-x86_64-linux-gnu" in n for n in extensions), extensions[:3]

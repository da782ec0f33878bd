"""`sls package --config serverless.openwhisk.yml`, offline (osls + serverless-openwhisk): the zip,
the resolved configuration, and the zip loaded the way the platform loads a Python action.

serverless-openwhisk writes only the zip at package time (actions, triggers and rules are created
through the API at deploy), so the deployment's review is the resolved configuration
(`sls print`) plus the zip. The `packaged` fixture of this folder serves the released providers
only, so this module packages through tools.provider.packaging (the readiness check's packager).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.settings import Settings
from tests.events import load_event
from tools.provider.packaging import Packaged, PackageFailed, package_offline, sls_env

ROOT = Path(__file__).resolve().parents[2]
SECRET_PARAMS = ("CLOUDANT_APIKEY", "OVERCAST_PEER_SECRET_AWS", "OVERCAST_PEER_SECRET_AZURE")


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    if not (ROOT / "node_modules" / ".bin" / "sls").exists():
        pytest.fail("the npm toolchain is not installed: run `npm ci`", pytrace=False)
    try:
        return package_offline("openwhisk", tmp_path_factory.mktemp("sls-openwhisk") / "out")
    except PackageFailed as exc:
        pytest.fail(f"sls package failed: {exc}\n{exc.output}", pytrace=False)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The configuration as the CLI resolves it, with no deploy-time secrets in the environment."""
    env = {k: v for k, v in sls_env().items() if not k.startswith(("CLOUDANT_", "OVERCAST_"))}
    proc = subprocess.run(
        [str(ROOT / "node_modules" / ".bin" / "sls"), "print", "--config", "serverless.openwhisk.yml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resolved: dict[str, Any] = yaml.safe_load(proc.stdout[proc.stdout.index("service:") :])
    return resolved


@pytest.fixture(scope="module")
def names(packaged: Packaged) -> list[str]:
    assert len(packaged.zips) == 1
    with zipfile.ZipFile(packaged.zips[0]) as zf:
        return zf.namelist()


def test_zip_carries_the_openwhisk_code_and_nothing_else(names: list[str]) -> None:
    for required in (
        "handlers/openwhisk.py",
        "adapters/openwhisk/store.py",
        "adapters/openwhisk/events.py",
        "adapters/http_peer.py",
        "core/app.py",
        "core/anti_entropy.py",
    ):
        assert required in names, f"{required} missing from the zip"
    forbidden: tuple[str, ...] = ("handlers/aws", "handlers/azure", "handlers/gcp", "handlers/local", "adapters/aws/")
    forbidden += ("adapters/azure/", "adapters/gcp/", "adapters/local/", "tests/", "runtime/", "emulators/")
    forbidden += ("tools/", "node_modules/", ".venv/", "boto3/", "azure/", "google/")
    leaked = sorted(n for n in names if n.startswith(forbidden) or "__pycache__" in n or n.endswith(".pyc"))
    assert not leaked, leaked[:10]


def test_web_action_is_raw_http_and_final(config: dict[str, Any]) -> None:
    http = config["functions"]["http"]
    assert http["handler"] == "handlers/openwhisk.http" and http["name"] == "overcast/http"
    assert http["annotations"] == {"web-export": True, "raw-http": True, "final": True}
    assert config["provider"] == {**config["provider"], "name": "openwhisk", "runtime": "python:3.11"}


def test_changes_action_is_bound_to_a_cloudant_trigger_without_credentials(config: dict[str, Any]) -> None:
    changes = config["functions"]["changes"]
    assert changes["handler"] == "handlers/openwhisk.changes"
    (event,) = changes["events"]
    cloudant = event["cloudant"]
    assert cloudant["db"] == config["resources"]["packages"]["overcast"]["parameters"]["CLOUDANT_DB"]
    assert cloudant["package"]  # credentials come from a bound package
    assert not {"password", "iam_api_key", "username"} & set(cloudant)


def test_anti_entropy_runs_on_an_alarm(config: dict[str, Any]) -> None:
    anti_entropy = config["functions"]["anti_entropy"]
    (event,) = anti_entropy["events"]
    assert event["schedule"]["rate"].startswith("cron(")
    assert anti_entropy["timeout"] > 240  # the pass's budget fits in the action's timeout


def test_secrets_are_bound_at_deploy_never_literals(config: dict[str, Any]) -> None:
    parameters = config["resources"]["packages"]["overcast"]["parameters"]
    for name in SECRET_PARAMS:
        assert parameters[name] == "", f"{name} resolved to a value without the deployer's environment"
    text = (ROOT / "serverless.openwhisk.yml").read_text()
    for name in SECRET_PARAMS:
        assert f"{name}: ${{env:{name}, ''}}" in text


def test_bound_parameters_are_settings_core_accepts(config: dict[str, Any]) -> None:
    parameters = config["resources"]["packages"]["overcast"]["parameters"]
    env = {k: str(v) for k, v in parameters.items()} | {name: "bound-at-deploy" for name in SECRET_PARAMS}
    settings = Settings.from_env(env)
    assert (settings.provider, settings.origin) == ("openwhisk", "openwhisk")
    assert {peer.name for peer in settings.peers} == {"aws", "azure"}
    assert all(peer.url.startswith("https://") for peer in settings.peers)


@pytest.fixture
def action_dir(packaged: Packaged, tmp_path: Path) -> Iterator[Path]:
    """The zip laid out as serverless-openwhisk deploys a Python action: the handler file becomes
    __main__.py at the root (its processActionPackage), the rest as packaged."""
    target = tmp_path / "action"
    with zipfile.ZipFile(packaged.zips[0]) as zf:
        zf.extractall(target)
    shutil.move(target / "handlers" / "openwhisk.py", target / "__main__.py")
    yield target


def test_the_packaged_action_loads_and_answers_like_on_the_platform(action_dir: Path) -> None:
    # Only the action's own files and the SDK (which the runtime provides) are importable.
    code = f"""
import json, runpy, sys
sys.path[:] = [p for p in sys.path if p not in ("", {str(ROOT)!r})]  # site-packages stay
sys.path.insert(0, {str(action_dir)!r})
action = runpy.run_path({str(action_dir / "__main__.py")!r}, run_name="action")
params = json.loads(sys.stdin.read())
print(json.dumps(action["http"](params)))
"""
    params = {**load_event("openwhisk", "http_health_deep"), "__ow_path": "/health"}
    params |= {"CLOUDANT_URL": "http://127.0.0.1:9", "OVERCAST_PEERS": "[]"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=action_dir,
        input=json.dumps(params),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["statusCode"] == 200 and json.loads(result["body"])["status"] == "ok"


def test_the_handler_imports_from_the_zip_alone(packaged: Packaged, tmp_path: Path) -> None:
    """The action imports every module of this project from its own zip (the platform's python
    image supplies only the SDK): nothing the handler needs may be left out of the patterns."""
    import site

    root = tmp_path / "action"
    with zipfile.ZipFile(packaged.zips[0]) as zf:
        zf.extractall(root)
    vendor = [p for p in site.getsitepackages() if Path(p).is_dir()]
    # -S: no site, so no editable install maps these packages back to the repository.
    code = (
        "import json, sys; sys.path[:0] = [sys.argv[1]]; sys.path += json.loads(sys.argv[2]); "
        "import handlers.openwhisk; "
        "own = sorted({m.__file__ for n, m in sys.modules.items() if n.split('.')[0] in ('core', 'adapters', 'handlers')}); "
        "print(json.dumps(own))"
    )
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code, str(root), json.dumps(vendor)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    own = json.loads(proc.stdout.strip().splitlines()[-1])
    assert own and all(path.startswith(str(root)) for path in own), own

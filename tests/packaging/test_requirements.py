"""requirements/<provider>.txt: current with pyproject.toml, hashed for the deployment target,
and exactly what the packages carry (which also catches a stale cache on the packaging machine)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tools import requirements
from tools.packaging import REPO_ROOT

from .conftest import LazyPackages


@pytest.mark.parametrize("provider", sorted(requirements.TARGETS))
def test_requirements_are_current_with_pyproject(provider: str) -> None:
    assert requirements.problems(provider) == []


def _repo_copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "requirements").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    for provider in requirements.TARGETS:
        shutil.copy(requirements.path(provider), requirements.path(provider, root))
    return root


def test_the_check_notices_a_changed_extra(tmp_path: Path) -> None:
    root = _repo_copy(tmp_path)
    pyproject = (root / "pyproject.toml").read_text()
    pyproject = pyproject.replace('"boto3>=1.34"', '"boto3>=99", "httpx>=0.27"')
    pyproject = pyproject.replace('"azure-cosmos>=4.7"', '"azure-storage-blob>=12"')
    (root / "pyproject.toml").write_text(pyproject)
    aws = "\n".join(requirements.problems("aws", root))
    assert "does not satisfy boto3>=99" in aws and "httpx>=0.27 (pyproject.toml) is not pinned" in aws
    azure = "\n".join(requirements.problems("azure", root))
    assert "azure-cosmos is no longer in the [azure] extra" in azure
    assert "azure-storage-blob>=12 (pyproject.toml) is not pinned" in azure


def test_the_check_notices_a_hand_edited_file(tmp_path: Path) -> None:
    root = _repo_copy(tmp_path)
    gcp = requirements.path("gcp", root)
    text = gcp.read_text()
    # Drop every hash of one pin, and add a pin nothing requires.
    text = re.sub(r"(grpcio==[^\s\\]+)(?: \\\n\s+--hash=sha256:[0-9a-f]{64})+", r"\1", text)
    text += "left-pad==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n    # via nothing\n"
    gcp.write_text(text)
    found = "\n".join(requirements.problems("gcp", root))
    assert "grpcio==" in found and "has no hashes" in found
    assert "required by nothing in the extra: ['left-pad']" in found
    requirements.path("aws", root).write_text(requirements.path("aws", root).read_text().split("\n", 1)[1])
    assert any("first line is not" in p for p in requirements.problems("aws", root))


def test_aws_leaves_exactly_the_pinned_sdk_to_the_lambda_runtime(packaged: LazyPackages) -> None:
    state = packaged["aws"].json("serverless-state.json")  # the configuration as osls resolved it
    no_deploy = {requirements.normalize(n) for n in state["service"]["custom"]["pythonRequirements"]["noDeploy"]}
    pins = requirements.parse(requirements.path("aws").read_text())
    # boto3 and everything it needs, no more: a new dependency of boto3 must be decided on, not
    # bundled (or left out) silently, and nothing else may be left to the runtime.
    assert no_deploy == requirements.closure(pins, {"boto3"})


def test_aws_pins_install_in_hash_checking_mode_for_lambda(tmp_path: Path) -> None:
    """The AWS pins ship with no package, so pip proves them here: for Lambda's platform and
    Python, with every hash checked and nothing resolved beyond the file (--no-deps off: a
    missing dependency is an error in hash-checking mode)."""
    target = requirements.TARGETS["aws"]
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--require-hashes"]
    platform = ["--platform", "manylinux2014_x86_64", "--only-binary=:all:", "--python-version", target.python]
    output = ["--target", str(tmp_path / "target"), "--report", str(tmp_path / "report.json")]
    proc = subprocess.run(
        [*pip, *platform, *output, "-r", str(requirements.path("aws"))],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    installed = {requirements.normalize(i["metadata"]["name"]): i["metadata"]["version"] for i in report["install"]}
    pinned = {name: pin.version for name, pin in requirements.parse(requirements.path("aws").read_text()).items()}
    assert installed == pinned


def _vendored(names: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name in names:
        match = re.fullmatch(r"([^/]+)-([^-/]+)\.dist-info/METADATA", name)
        if match:
            found[requirements.normalize(match.group(1))] = match.group(2)
    return found


@pytest.mark.parametrize("provider", sorted(requirements.TARGETS))
def test_package_vendors_exactly_the_pinned_versions_and_no_stray_bytecode(
    packaged: LazyPackages, provider: str
) -> None:
    """What a stale serverless-python-requirements cache would break: an installed tree from an
    earlier requirements file or earlier pip flags (other versions, .pyc compiled here)."""
    result: Any = packaged[provider]
    pins = requirements.parse(requirements.path(provider).read_text())
    left_out = set()
    if result.file("serverless-state.json").exists():  # AWS writes the resolved configuration
        options = result.json("serverless-state.json")["service"]["custom"]["pythonRequirements"]
        left_out = {requirements.normalize(n) for n in options.get("noDeploy", [])}
    deployed = {name: pin.version for name, pin in pins.items() if name not in left_out}
    assert _vendored(result.names) == deployed
    assert not result.stray_bytecode()
    # The requirements.txt shipped beside them (Cloud Functions' build installs it) keeps the hashes.
    shipped = result.read("requirements.txt").decode()
    hashes = sum(len(pins[name].hashes) for name in deployed)
    assert shipped.count("--hash=sha256:") == hashes


def test_packaging_uses_the_sessions_fresh_cache_not_the_users(packaged: LazyPackages) -> None:
    assert packaged["gcp"].zip_path.exists()  # packages if no earlier test did
    downloads = list(packaged.cache.rglob("*"))
    assert downloads, f"nothing was downloaded into {packaged.cache}"
    # The plugin's static cache (installed trees, keyed by the requirements file only) is off.
    assert not list(packaged.cache.glob("*_slspyc"))

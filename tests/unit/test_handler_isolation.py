"""Importing one provider's handler must not import another vendor's SDK (one SDK per package)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENDOR_MODULES = {
    "aws": ("boto3", "botocore"),
    "azure": ("azure",),
    "gcp": ("google.cloud", "google.api_core", "functions_framework"),
    "openwhisk": ("ibmcloudant", "ibm_cloud_sdk_core"),
}
HANDLERS = sorted(p.stem for p in (ROOT / "handlers").glob("*.py") if p.stem != "__init__") + sorted(
    p.name for p in (ROOT / "handlers").iterdir() if p.is_dir() and (p / "__init__.py").exists()
)


def modules_added_by(module: str) -> set[str]:
    code = f"import json, sys; before = set(sys.modules); import {module}; print(json.dumps(sorted(set(sys.modules) - before)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("provider", HANDLERS)
def test_handler_imports_no_other_vendor(provider: str) -> None:
    loaded = modules_added_by(f"handlers.{provider}")
    for vendor, prefixes in VENDOR_MODULES.items():
        if vendor == provider:
            continue
        leaked = sorted(m for m in loaded if any(m == p or m.startswith(p + ".") for p in prefixes))
        assert not leaked, f"handlers.{provider} imports {vendor} modules: {leaked[:5]}"

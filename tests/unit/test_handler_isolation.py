"""Importing one provider's handler must not import another vendor's SDK (one SDK per package)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.registry import providers

ROOT = Path(__file__).resolve().parents[2]
#: provider → the top-level modules of its SDK, from each provider's spec (adapters/<name>/provider.py).
VENDOR_MODULES = {name: spec.vendor_modules for name, spec in providers().items() if spec.vendor_modules}
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

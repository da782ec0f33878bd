"""core/ must never import a vendor SDK, an adapter or a handler — checked two ways."""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = (
    "boto3",
    "botocore",
    "azure",
    "google",
    "functions_framework",
    "flask",
    "ibmcloudant",
    "adapters",
    "handlers",
    "emulators",
    "runtime",
    "failover",
    "tools",
)


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_core_source_imports_only_stdlib_and_core() -> None:
    offenders = {}
    for path in sorted((ROOT / "core").rglob("*.py")):
        for name in _imported_modules(path):
            top = name.split(".")[0]
            if top != "core" and top not in sys.stdlib_module_names:
                offenders.setdefault(str(path.relative_to(ROOT)), []).append(name)
    assert not offenders, f"core imports non-stdlib modules: {offenders}"


def test_importing_all_of_core_loads_no_vendor_module() -> None:
    code = (
        "import json, sys; before = set(sys.modules)\n"
        "import importlib, pkgutil, core\n"
        "for m in pkgutil.iter_modules(core.__path__): importlib.import_module('core.' + m.name)\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    # Only what importing core adds counts: site-packages .pth files may pre-load namespace
    # packages (``google``) into every interpreter.
    loaded = json.loads(
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    )
    bad = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert not bad, f"importing core loaded {bad}"

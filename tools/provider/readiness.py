"""``python -m tools.provider check NAME``: what is still missing before a provider is done.

Each check names the exact missing piece, in the order of docs/adding-a-provider.md:

1. files        every place the scaffold creates exists
2. todos        no ``TODO(scaffold)`` marker is left in the provider's files
3. extra        pyproject.toml has the provider's dependency extra (set-up installs every extra)
4. handler      ``import handlers.<name>`` works, exposes http/changes/anti_entropy, and imports no
                other vendor's SDK (checked in a fresh interpreter, like tests/unit/test_handler_isolation.py)
5. isolation    VENDOR_MODULES in tests/unit/test_handler_isolation.py lists the provider's SDK
6. events       every required event shape has recorded payloads under tests/events/<name>/ and
                maps: HTTP request in (``to_request``), response out (``to_response``), change
                records → Messages (``to_messages``)
7. conformance  the provider's conformance subclass passes; failing cases are listed by name
8. packaging    ``sls package --config serverless.<name>.yml`` succeeds offline
9. replication  the store is in the replication store registry (verify/repair/mesh open it from a
                spec) and a local stand-in runtime exists (runtime/<name>.py)

Imports of the provider's code run in subprocesses with the checked tree as working directory,
so ``--root`` can point at a copy of the repository and nothing leaks into this process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.provider.scaffold import MARKER, REPO_ROOT, planned_files

OK, FAIL = "\u2714", "\u2718"
ENTRYPOINTS = ("http", "changes", "anti_entropy")
EVENT_KINDS = {
    "http": "HTTP request in / response out (to_request, to_response)",
    "changes": "change-feed records -> Messages (to_messages)",
}
#: adapters.protocols.EventAdapter
EVENT_FUNCTIONS = ("to_request", "to_response", "to_changes", "to_messages")
ALL_CHECKS = ("files", "todos", "extra", "handler", "isolation", "events", "conformance", "packaging", "replication")
_COPY_IGNORED = {
    ".git",
    ".venv",
    "node_modules",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".hypothesis",
    ".run",
    ".bench",
}


@dataclass
class Check:
    name: str
    title: str
    ok: bool
    missing: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class ReadinessReport:
    provider: str
    root: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def missing(self) -> list[str]:
        return [item for check in self.checks for item in check.missing]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)

    def render(self) -> str:
        lines = [f"Readiness of provider {self.provider!r} ({self.root})"]
        for check in self.checks:
            mark = OK if check.ok else FAIL
            lines.append(f"{mark} {check.name:<12} {check.title}  [{check.seconds:.1f} s]")
            lines += [f"      - {item}" for item in check.missing]
        total = len(self.missing)
        lines.append(f"{'READY' if self.ok else 'NOT READY'}: {total} missing piece{'s' * (total != 1)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {"provider": self.provider, "root": self.root, "ok": self.ok, "checks": [asdict(c) for c in self.checks]}


def check_provider(
    name: str,
    root: Path = REPO_ROOT,
    *,
    skip: Sequence[str] = (),
    timeout_s: float = 900.0,
) -> ReadinessReport:
    root = Path(root).resolve()
    report = ReadinessReport(name, str(root))
    probe: dict[str, object] | None = None

    def probed() -> dict[str, object]:
        nonlocal probe
        if probe is None:
            probe = _probe(name, root)
        return probe

    runners = {
        "files": lambda: _check_files(name, root),
        "todos": lambda: _check_todos(name, root),
        "extra": lambda: _check_extra(name, root),
        "handler": lambda: _check_handler(name, probed()),
        "isolation": lambda: _check_isolation_table(name, probed()),
        "events": lambda: _check_events(name, root, probed()),
        "conformance": lambda: _check_conformance(name, root, timeout_s),
        "packaging": lambda: _check_packaging(name, root, timeout_s),
        "replication": lambda: _check_replication(name, root, probed()),
    }
    for check_name in ALL_CHECKS:
        if check_name in skip:
            continue
        started = time.monotonic()
        check = runners[check_name]()
        check.seconds = time.monotonic() - started
        report.checks.append(check)
    return report


# -- individual checks ----------------------------------------------------------------------------


def _provider_files(name: str, root: Path) -> list[Path]:
    paths: list[Path] = []
    for rel in planned_files(name):
        path = root / rel
        if path.is_file():
            paths.append(path)
    for folder in (root / "adapters" / name, root / "tests" / "events" / name):
        if folder.is_dir():
            paths += sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    runtime = root / "runtime" / f"{name}.py"
    if runtime.is_file():
        paths.append(runtime)
    return sorted(set(paths))


def _check_files(name: str, root: Path) -> Check:
    # A fixture module may be named after its emulator (tests/fixtures/pouchdb.py), so it is not
    # required under the provider's name: the conformance run proves a fixture is registered.
    # The same holds for the conformance module, named after the store (test_cloudant_store.py),
    # as long as one in tests/contract/ runs the provider's store.
    required = [rel for rel in planned_files(name) if not rel.startswith(("tests/fixtures/", "tests/contract/"))]
    missing = [
        f"{rel} does not exist (run `python -m tools.provider new {name}`)"
        for rel in required
        if not (root / rel).is_file()
    ]
    if not contract_modules(name, root):
        missing.append(
            f"no conformance module in tests/contract/ uses adapters.{name} (tests/contract/test_{name}_store.py)"
        )
    return Check("files", "every place a provider touches exists", not missing, missing)


def contract_modules(name: str, root: Path) -> list[Path]:
    """The conformance modules that run the provider's store (they import from adapters.<name>)."""
    found = []
    for path in sorted((root / "tests" / "contract").glob("test_*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if f"adapters.{name}." in text and "MessageStoreConformance" in text:
            found.append(path)
    return found


def _check_todos(name: str, root: Path) -> Check:
    missing = []
    for path in _provider_files(name, root):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if MARKER in line:
                detail = line.split(MARKER, 1)[1].lstrip(":) ").strip().strip("\"'")[:110]
                missing.append(f"{path.relative_to(root)}:{number}: {MARKER} {detail}")
    return Check("todos", f"no {MARKER} left in the provider's files", not missing, missing)


def _check_extra(name: str, root: Path) -> Check:
    missing = []
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        return Check("extra", "dependency extra", False, [f"pyproject.toml unreadable: {exc}"])
    extras = project.get("optional-dependencies", {})
    if not extras.get(name):
        missing.append(
            f'pyproject.toml [project.optional-dependencies] has no `{name}` extra (add `{name} = ["<sdk>==<version>"]`)'
        )
    # scripts/setup.sh installs every extra, so the extra line is all a provider adds here.
    return Check("extra", "pyproject extra exists", not missing, missing)


def _check_handler(name: str, probe: dict[str, object]) -> Check:
    missing: list[str] = []
    handler = probe.get("handler", {})
    assert isinstance(handler, dict)
    if handler.get("error"):
        missing.append(f"import handlers.{name} fails: {handler['error']}")
    else:
        for entry in ENTRYPOINTS:
            if entry not in handler.get("callables", []):
                missing.append(f"handlers/{name}.py defines no `{entry}` entrypoint")
        for vendor, modules in sorted(dict(handler.get("leaked", {})).items()):
            missing.append(f"import handlers.{name} imports {vendor}'s SDK: {', '.join(modules[:5])}")
    title = "handler imports, has http/changes/anti_entropy, imports no other vendor's SDK"
    return Check("handler", title, not missing, missing)


def _check_isolation_table(name: str, probe: dict[str, object]) -> Check:
    vendors = probe.get("vendor_modules", {})
    assert isinstance(vendors, dict)
    missing = []
    if not vendors.get(name):
        missing.append(
            f'tests/unit/test_handler_isolation.py VENDOR_MODULES has no "{name}" entry '
            f"(set vendor_modules in SPEC, adapters/{name}/provider.py: the SDK modules other handlers must never import)"
        )
    return Check("isolation", "the isolation test knows the provider's SDK modules", not missing, missing)


def _check_events(name: str, root: Path, probe: dict[str, object]) -> Check:
    missing: list[str] = []
    events = probe.get("events", {})
    assert isinstance(events, dict)
    if events.get("error"):
        missing.append(f"import adapters.{name}.events fails: {events['error']}")
    for function in EVENT_FUNCTIONS:
        if not events.get("error") and function not in events.get("functions", []):
            missing.append(f"adapters/{name}/events.py defines no `{function}`")
    globs = dict(events.get("globs") or {})
    for kind, shape in EVENT_KINDS.items():
        if not events.get(f"{kind}_files"):
            pattern = str(globs.get(kind, f"{kind}_*.json")).replace("*", "<case>")
            missing.append(f"no recorded {shape} event: add tests/events/{name}/{pattern}")
    for result in events.get("results", []):
        if result.get("error"):
            missing.append(f"{result['file']}: {result['function']} {result['error']}")
    return Check("events", "every event shape has recorded payloads that map", not missing, missing)


def _check_conformance(name: str, root: Path, timeout_s: float) -> Check:
    title = "conformance suite passes"
    modules = contract_modules(name, root)
    if not modules:
        return Check("conformance", title, False, [f"no conformance module in tests/contract/ uses adapters.{name}"])
    title += f" ({', '.join(p.name for p in modules)})"
    with tempfile.TemporaryDirectory(prefix="readiness-") as tmp:
        junit = Path(tmp) / "junit.xml"
        argv = [
            sys.executable,
            "-m",
            "pytest",
            *(str(p.relative_to(root)) for p in modules),
            "-q",
            "-p",
            "no:cacheprovider",
        ]
        argv += [f"--junitxml={junit}", "-o", "junit_family=xunit2", "--timeout=120"]
        try:
            proc = subprocess.run(
                argv, cwd=root, env=_child_env(root), capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired:
            return Check("conformance", title, False, [f"the conformance run did not finish in {timeout_s:.0f} s"])
        if not junit.is_file():
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            return Check("conformance", title, False, ["pytest produced no result: " + " | ".join(tail)])
        cases = _junit_cases(junit)
    passed = [c for c in cases if c[1] == "passed"]
    missing = [f"{outcome}: {case}" for case, outcome, _ in cases if outcome != "passed"]
    causes: dict[str, int] = {}
    for _, outcome, message in cases:
        if outcome != "passed":
            causes[message] = causes.get(message, 0) + 1
    for cause, count in causes.items():
        missing.append(f"cause ({count} case{'s' * (count != 1)}): {cause}")
        if "fixture '" in cause and "' not found" in cause:
            missing.append(
                f"hint: name the store's fixture module in SPEC.fixtures (adapters/{name}/provider.py), "
                "which tests/conftest.py pytest_plugins reads"
            )
    if not cases:
        missing.append("no conformance cases collected")
    return Check("conformance", f"{title}: {len(passed)}/{len(cases)} cases pass", not missing, missing)


def _junit_cases(junit: Path) -> list[tuple[str, str, str]]:
    cases = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("name", "?")
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = _cause(node.get("message") or "", node.text or "")
                break
        cases.append((name, outcome, message))
    return cases


def _cause(message: str, text: str) -> str:
    """The line that says why: pytest's "E   ..." lines beat a setup error's location line."""
    explained = [ln[1:].strip() for ln in text.splitlines() if ln.startswith("E ") and ln[1:].strip()]
    for line in explained:
        if "fixture '" in line and "not found" in line:
            return _short(line)
    if explained and (not message or message.startswith("failed on setup with") or len(explained) == 1):
        return _short(explained[-1])
    return _short(message.splitlines()[0] if message else (text.strip().splitlines() or ["?"])[-1])


def _short(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_packaging(name: str, root: Path, timeout_s: float) -> Check:
    from tools.provider.packaging import PackageFailed, package_offline

    title = f"sls package --config serverless.{name}.yml works offline"
    if not (root / f"serverless.{name}.yml").is_file():
        return Check("packaging", title, False, [f"serverless.{name}.yml does not exist"])
    with tempfile.TemporaryDirectory(prefix="readiness-package-") as tmp:
        try:
            result = package_offline(name, Path(tmp) / "out", repo_root=root, timeout_s=timeout_s)
        except PackageFailed as exc:
            lines = [
                ln.strip() for ln in exc.output.splitlines() if ln.strip().rstrip(":") not in ("", "Error", "Warning")
            ]
            errors = [ln for ln in lines if "error" in ln.lower() or "not " in ln.lower()] or lines[-3:]
            found = [f"sls package failed: {_short(e, 200)}" for e in errors[:3]]
            return Check("packaging", title, False, found or [f"sls package failed: {exc}"])
        size = sum(z.stat().st_size for z in result.zips)
    return Check("packaging", f"{title} ({len(result.zips)} zip, {size // 1024} KiB)", True)


def _check_replication(name: str, root: Path, probe: dict[str, object]) -> Check:
    missing = []
    spec = probe.get("spec") or {}
    assert isinstance(spec, dict)
    if spec.get("error"):
        missing.append(f"adapters/{name}/provider.py: {spec['error']}")
    schemes = list(probe.get("store_schemes") or [])  # type: ignore[call-overload]
    if not schemes:
        missing.append(
            f"tools/replication/stores.py registers no store of adapters.{name} (set store_scheme, store_opener "
            f"and store_class in SPEC, adapters/{name}/provider.py: verify, repair and the mesh open stores by spec)"
        )
    for problem in spec.get("unresolved", []):
        missing.append(f"adapters/{name}/provider.py SPEC: {problem}")
    cloud = str(spec.get("cloud") or "")
    runtime_module = cloud.partition(":")[0] or f"runtime.{name}"
    runtime_file = root / (runtime_module.replace(".", "/") + ".py")
    if not runtime_file.is_file():
        missing.append(
            f"{runtime_file.relative_to(root)} does not exist (a local stand-in for the platform, for e2e and the mesh)"
        )
    if not spec.get("error") and not (cloud and spec.get("address")):
        missing.append(
            f"adapters/{name}/provider.py SPEC names no cloud and address (the runtime.mesh.Cloud subclass "
            f'in {runtime_module} and its own 127.x address), so Mesh.start([..., "{name}"]) cannot run it'
        )
    title = "store spec registered for verify/repair; local runtime for the mesh"
    if schemes:
        title += f" ({', '.join(str(s) + '://' for s in schemes)})"
    return Check("replication", title, not missing, missing)


# -- the probe: imports in a fresh interpreter, in the checked tree ---------------------------------

_PROBE = r"""
import importlib, json, sys, traceback
from pathlib import Path
name, root = sys.argv[1], Path(sys.argv[2])
out = {}
before = set(sys.modules)
try:
    handler = importlib.import_module(f"handlers.{name}")
    loaded = set(sys.modules) - before
    out["handler"] = {"callables": [n for n in ("http", "changes", "anti_entropy") if callable(getattr(handler, n, None))],
                      "loaded": sorted(loaded)}
except BaseException as exc:
    out["handler"] = {"error": f"{type(exc).__name__}: {exc}"}
try:
    from tests.unit.test_handler_isolation import VENDOR_MODULES
    out["vendor_modules"] = {k: list(v) for k, v in VENDOR_MODULES.items()}
    if "loaded" in out["handler"]:
        leaked = {}
        for vendor, prefixes in VENDOR_MODULES.items():
            if vendor == name:
                continue
            hit = sorted(m for m in out["handler"]["loaded"] if any(m == p or m.startswith(p + ".") for p in prefixes))
            if hit:
                leaked[vendor] = hit
        out["handler"]["leaked"] = leaked
except BaseException as exc:
    out["vendor_modules"] = {}
out.get("handler", {}).pop("loaded", None)
events = {"results": []}
try:
    module = importlib.import_module(f"adapters.{name}.events")
    events["functions"] = [n for n in ("to_request", "to_response", "to_changes", "to_messages") if callable(getattr(module, n, None))]
    from core.http import Request, Response
    from core.model import Message
    folder = root / "tests" / "events" / name
    try:  # the folder's replay.py says which files are which and what the platform hands over
        replay = importlib.import_module(f"tests.events.{name}.replay").REPLAY
        http_files, change_files = replay.http_files(), replay.changes_files()
        http_event, change_args = replay.http_event, replay.changes_event
        events["globs"] = {"http": replay.http_glob, "changes": replay.changes_glob}
    except ModuleNotFoundError:
        http_files, change_files = sorted(folder.glob("http_*.json")), sorted(folder.glob("changes_*.json"))
        http_event, change_args = (lambda e: e), (lambda e: (e,))
    events["http_files"] = [str(p.relative_to(root)) for p in http_files]
    events["changes_files"] = [str(p.relative_to(root)) for p in change_files]
    def run(file, function, call, check):
        try:
            value = call()
            problem = check(value)
            events["results"].append({"file": file, "function": function, "error": problem})
        except NotImplementedError as exc:
            events["results"].append({"file": file, "function": function, "error": f"is not implemented: {exc}"})
        except BaseException as exc:
            events["results"].append({"file": file, "function": function, "error": f"raised {type(exc).__name__}: {exc}"[:300]})
    for path in http_files:
        event = json.loads(path.read_text())
        rel = str(path.relative_to(root))
        if "to_request" in events["functions"]:
            run(rel, "to_request", lambda: module.to_request(http_event(event)),
                lambda r: None if isinstance(r, Request) and r.method and r.path.startswith("/") else f"returned {r!r}, not a core Request with a method and a /path")
        if "to_response" in events["functions"]:
            run(rel, "to_response", lambda: module.to_response(Response.json(201, {"ok": True}, {"x-probe": "1"})),
                lambda r: None if r is not None else "returned None")
    for path in change_files:
        event = json.loads(path.read_text())
        rel = str(path.relative_to(root))
        if "to_changes" in events["functions"]:
            run(rel, "to_changes", lambda: module.to_changes(*change_args(event)),
                lambda r: None if isinstance(r, list) and r else f"returned {r!r}, not a non-empty list of ChangeRecords")
        if "to_messages" in events["functions"]:
            run(rel, "to_messages", lambda: module.to_messages(*change_args(event)),
                lambda r: None if isinstance(r, list) and all(isinstance(m, Message) for m in r) else f"returned {r!r}, not a list of Messages")
except BaseException as exc:
    events["error"] = f"{type(exc).__name__}: {exc}"
out["events"] = events
spec_out = {}
try:
    from adapters.registry import load, providers
    spec = providers().get(name)
    if spec is None:
        spec_out["error"] = f"no SPEC registered (adapters/{name}/provider.py exports a ProviderSpec as SPEC)"
    else:
        spec_out.update(cloud=spec.cloud, address=spec.address, unresolved=[])
        for field in ("handler", "events", "store_class", "store_opener", "cloud", "emulator"):
            dotted = getattr(spec, field)
            if dotted:
                try:
                    load(dotted)
                except BaseException as exc:
                    spec_out["unresolved"].append(f"{field}={dotted!r} does not resolve: {type(exc).__name__}: {exc}"[:200])
except BaseException as exc:
    spec_out["error"] = f"{type(exc).__name__}: {exc}"
out["spec"] = spec_out
try:
    from tools.replication.stores import STORE_CLASSES
    out["store_schemes"] = sorted(s for s, target in STORE_CLASSES.items() if target.startswith(f"adapters.{name}."))
except BaseException:
    out["store_schemes"] = []
print("PROBE" + json.dumps(out))
"""


def _probe(name: str, root: Path) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, name, str(root)],
        cwd=root,
        env=_child_env(root),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("PROBE"):
            result: dict[str, object] = json.loads(line[len("PROBE") :])
            return result
    error = _short((proc.stderr or proc.stdout).strip().splitlines()[-1] if (proc.stderr or proc.stdout) else "?")
    return {"handler": {"error": f"probe failed: {error}"}, "events": {"error": error}}


def _child_env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("PYTHONSAFEPATH", None)
    return env


# -- a disposable copy of the repository ------------------------------------------------------------


@contextlib.contextmanager
def repo_copy(source: Path = REPO_ROOT, *, keep: bool = False) -> Iterator[Path]:
    """A copy of the repository's sources in a temporary directory (node_modules linked), so a
    scaffold can be tried without touching the real tree. Removed afterwards unless ``keep``."""
    tmp = Path(tempfile.mkdtemp(prefix="overcast-provider-"))
    target = tmp / "repo"

    def ignore(_directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in _COPY_IGNORED or n.startswith(".serverless-") or n.endswith(".egg-info")}

    try:
        shutil.copytree(source, target, ignore=ignore, symlinks=True)
        if (source / "node_modules").is_dir():
            (target / "node_modules").symlink_to(source / "node_modules", target_is_directory=True)
        yield target
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)

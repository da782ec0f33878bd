"""Pinned, hashed requirements for what each cloud installs: requirements/<provider>.txt.

    python -m tools.requirements compile [PROVIDER ...]   # `make requirements`: regenerate (needs uv)
    python -m tools.requirements compile validators       # requirements/validators.txt from .in
    python -m tools.requirements check [PROVIDER ...]     # offline: are the files current?

Each file is compiled from pyproject.toml's extra of the same name by `uv pip compile`, for the
deployment target rather than this machine (the cloud's CPython version on manylinux2014 x86_64),
with a sha256 for every distribution of every pinned version, so pip installs them in
hash-checking mode and the Linux wheels are covered whatever machine packages them.

`check` needs no network and never flaps when an upstream release appears: it does not resolve
again, it checks that the file still answers pyproject.toml (every requirement of the extra is
pinned at a version its specifier accepts, nothing is pinned that no longer traces back to the
extra, every pin carries hashes, the target line matches TARGETS). That the pins form a complete
closure is what pip's hash-checking mode enforces when the files are installed (packaging tests).

requirements/validators.txt locks requirements/validators.in (cfn-lint, checkov, uv) for the
machine that runs them (any platform, the project's lowest Python): scripts/setup.sh installs it
into .venv-validators.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
UV_ENV = REPO_ROOT / ".venv-validators"  # scripts/setup.sh installs uv there, beside the validators
COMPILE_COMMAND = "make requirements"
PLATFORM = "x86_64-manylinux2014"
ROOT_VIA = "overcast (pyproject.toml)"


@dataclass(frozen=True)
class Target:
    """Where a provider's requirements are installed."""

    python: str  # the cloud runtime's CPython version
    runtime: str  # its name in serverless.<provider>.yml, for the file's first line


# OpenWhisk has none: its python:3.11 kind ships ibmcloudant, and serverless.openwhisk.yml
# vendors no requirements.
TARGETS = {
    "aws": Target("3.12", "AWS Lambda python3.12"),
    "azure": Target("3.11", "Azure Functions Python 3.11 (Linux)"),
    "gcp": Target("3.12", "Cloud Functions python312"),
}


def path(provider: str, repo_root: Path = REPO_ROOT) -> Path:
    return repo_root / "requirements" / f"{provider}.txt"


def target_line(provider: str) -> str:
    target = TARGETS[provider]
    return f"# Target: {target.runtime}: CPython {target.python}, {PLATFORM} (pyproject.toml extra [{provider}])."


def uv_bin() -> str:
    found = UV_ENV / "bin" / "uv"
    if found.exists():
        return str(found)
    on_path = shutil.which("uv")
    if on_path:
        return on_path
    raise SystemExit(f"uv is not installed: run `bash scripts/setup.sh` (it installs uv into {UV_ENV})")


def compile_requirements(provider: str, repo_root: Path = REPO_ROOT) -> Path:
    """Regenerate requirements/<provider>.txt from pyproject.toml (resolves against the index)."""
    target = TARGETS[provider]
    out = path(provider, repo_root)
    cmd = [uv_bin(), "pip", "compile", "pyproject.toml", "--extra", provider, "--generate-hashes"]
    cmd += ["--python-version", target.python, "--python-platform", PLATFORM]
    cmd += ["--custom-compile-command", COMPILE_COMMAND, "--no-progress"]  # the file is written to stdout
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"uv pip compile for {provider} failed:\n{proc.stderr}")
    out.write_text(target_line(provider) + "\n" + proc.stdout)
    return out


def compile_validators(repo_root: Path = REPO_ROOT) -> Path:
    """Regenerate requirements/validators.txt from requirements/validators.in."""
    source, out = repo_root / "requirements" / "validators.in", repo_root / "requirements" / "validators.txt"
    cmd = [uv_bin(), "pip", "compile", str(source.relative_to(repo_root)), "--universal", "--generate-hashes"]
    cmd += ["--python-version", "3.11", "--custom-compile-command", COMPILE_COMMAND, "--no-progress"]
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"uv pip compile for the validators failed:\n{proc.stderr}")
    out.write_text(proc.stdout)
    return out


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...]
    via: tuple[str, ...]


def parse(text: str) -> dict[str, Pin]:
    """The pins of a `uv pip compile --generate-hashes` file, keyed by normalized name."""
    pins: dict[str, Pin] = {}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.replace("\\\n", " "))
    for block in blocks:
        lines = block.splitlines()
        if not lines or lines[0].startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s+--hash=sha256:[0-9a-f]{64})*)\s*", lines[0])
        if not match:
            raise ValueError(f"not a hashed pin: {lines[0]!r}")
        comments = [line.strip().lstrip("#").strip() for line in lines[1:] if line.strip().startswith("#")]
        via = [c.removeprefix("via").strip() for c in comments]
        hashes = tuple(re.findall(r"sha256:([0-9a-f]{64})", match.group(3)))
        pins[normalize(match.group(1))] = Pin(
            normalize(match.group(1)), match.group(2), hashes, tuple(v for v in via if v)
        )
    return pins


def closure(pins: dict[str, Pin], roots: set[str]) -> set[str]:
    """roots and every pin they require, directly or not (following the `# via` annotations)."""
    reachable, frontier = set(), {normalize(r) for r in roots} & set(pins)
    while frontier:
        reachable |= frontier
        frontier = {p.name for p in pins.values() if {normalize(v) for v in p.via} & reachable} - reachable
    return reachable


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def extra_requirements(provider: str, repo_root: Path = REPO_ROOT) -> list[str]:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    requirements: list[str] = project["optional-dependencies"][provider]
    return requirements


def problems(provider: str, repo_root: Path = REPO_ROOT) -> list[str]:
    """Why requirements/<provider>.txt is not current with pyproject.toml (empty: it is)."""
    from packaging.requirements import Requirement

    file = path(provider, repo_root)
    if not file.is_file():
        return [f"{file} is missing: run `{COMPILE_COMMAND}`"]
    text = file.read_text()
    found: list[str] = []
    if text.splitlines()[0] != target_line(provider):
        found.append(f"first line is not {target_line(provider)!r}")
    if f"#    {COMPILE_COMMAND}\n" not in text:
        found.append(f"not generated by `{COMPILE_COMMAND}`")
    try:
        pins = parse(text)
    except ValueError as exc:
        return [*found, str(exc)]
    roots: set[str] = set()
    for line in extra_requirements(provider, repo_root):
        requirement = Requirement(line)
        name = normalize(requirement.name)
        roots.add(name)
        pin = pins.get(name)
        if pin is None:
            found.append(f"{requirement} (pyproject.toml) is not pinned")
        elif not requirement.specifier.contains(pin.version, prereleases=True):
            found.append(f"{name}=={pin.version} does not satisfy {requirement} (pyproject.toml)")
        elif ROOT_VIA not in pin.via:
            found.append(f"{name} is pinned but not as a requirement of the extra")
    for pin in pins.values():
        if not pin.hashes:
            found.append(f"{pin.name}=={pin.version} has no hashes")
        if ROOT_VIA in pin.via and pin.name not in roots:
            found.append(f"{pin.name} is no longer in the [{provider}] extra")
    # Everything pinned must trace back to the extra through the `# via` annotations.
    stale = sorted(set(pins) - closure(pins, roots))
    if stale:
        found.append(f"pinned but required by nothing in the extra: {stale}")
    return [f"{file.relative_to(repo_root)}: {p}" for p in found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.requirements", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("compile", "check"))
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"default: {', '.join(TARGETS)} and validators")
    args = parser.parse_args(argv)
    chosen = args.targets or [*TARGETS, "validators"]
    unknown = set(chosen) - {*TARGETS, "validators"}
    if unknown:
        parser.error(f"unknown {sorted(unknown)} (known: {', '.join(TARGETS)}, validators)")
    providers = [t for t in chosen if t in TARGETS]
    if args.action == "compile":
        written = [compile_requirements(p) for p in providers]
        if "validators" in chosen:
            written.append(compile_validators())
        for out in written:
            print(out.relative_to(REPO_ROOT))
        return 0
    failures = [problem for provider in providers for problem in problems(provider)]
    for failure in failures:
        print(failure, file=sys.stderr)
    if failures:
        print(f"run `{COMPILE_COMMAND}`", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""`sls package --config serverless.<name>.yml` offline for ANY provider name (one being added
included), in a private copy of the repository, like tools/packaging.py does for the released
providers (whose list is fixed): the Serverless CLI wipes and writes `.serverless/` in the service
directory, so each run packages its own copy and copies `.serverless/` out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.provider.scaffold import REPO_ROOT

_IGNORED = {
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


class PackageFailed(RuntimeError):
    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class Packaged:
    out_dir: Path
    zips: tuple[Path, ...]
    seconds: float


def sls_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SLS_TELEMETRY_DISABLED": "1",
            "SLS_NOTIFICATIONS_MODE": "off",
            "SLS_INTERACTIVE_SETUP_DISABLE": "1",
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
        }
    )
    return env


def package_offline(name: str, out_dir: Path, *, repo_root: Path = REPO_ROOT, timeout_s: float = 900.0) -> Packaged:
    """Package serverless.<name>.yml; out_dir receives what `.serverless/` held. Raises PackageFailed."""
    repo_root = Path(repo_root).resolve()
    config = f"serverless.{name}.yml"
    if not (repo_root / config).is_file():
        raise PackageFailed(f"{config} does not exist")
    # A copy of the repo may link node_modules; resolve the CLI through that link.
    sls = repo_root / "node_modules" / ".bin" / "sls"
    if not sls.exists():
        raise PackageFailed(f"{sls} is missing: run `npm ci` in {repo_root}")
    with tempfile.TemporaryDirectory(prefix=f"overcast-package-{name}-") as tmp:
        service = Path(tmp) / "service"

        def ignore(_directory: str, names: list[str]) -> set[str]:
            skipped = {
                n for n in names if n in _IGNORED or (n.startswith(".serverless") and n != ".serverless_plugins")
            }
            return skipped | {n for n in names if n.endswith((".pyc", ".egg-info"))}

        shutil.copytree(repo_root, service, ignore=ignore, symlinks=True)
        (service / "node_modules").symlink_to((repo_root / "node_modules").resolve(), target_is_directory=True)
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [str(sls), "package", "--config", config],
                cwd=service,
                env=sls_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise PackageFailed(f"sls package did not finish within {timeout_s:.0f} s") from exc
        output = (proc.stdout or "") + (proc.stderr or "")
        if proc.returncode != 0:
            raise PackageFailed(f"sls package --config {config} exited with {proc.returncode}", output)
        built = service / ".serverless"
        if not built.is_dir():
            raise PackageFailed("sls package wrote no .serverless/", output)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(built, out_dir, ignore=shutil.ignore_patterns("requirements"))
    zips = tuple(sorted(out_dir.rglob("*.zip")))
    if not zips:
        raise PackageFailed("sls package wrote no .zip", output)
    return Packaged(out_dir, zips, time.monotonic() - started)

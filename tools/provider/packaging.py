"""The readiness check's view of packaging: `tools.packaging.package` (which packages any
serverless.<name>.yml, a provider being added included) with the result the check reports — the
zips written and the time taken — and one error type whatever went wrong."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tools.packaging import PackagingError, package, sls_env
from tools.provider.scaffold import REPO_ROOT

__all__ = ["PackageFailed", "Packaged", "package_offline", "sls_env"]


class PackageFailed(RuntimeError):
    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class Packaged:
    out_dir: Path
    zips: tuple[Path, ...]
    seconds: float


def package_offline(name: str, out_dir: Path, *, repo_root: Path = REPO_ROOT, timeout_s: float = 900.0) -> Packaged:
    """Package serverless.<name>.yml into out_dir (what `.serverless/` held). Raises PackageFailed."""
    started = time.monotonic()
    try:
        package(name, out_dir, repo_root=repo_root, timeout=timeout_s)
    except PackagingError as exc:
        raise PackageFailed(str(exc).splitlines()[0], exc.output) from exc
    except (FileNotFoundError, ValueError) as exc:  # no zip written; a name that is no provider
        raise PackageFailed(str(exc)) from exc
    return Packaged(Path(out_dir), tuple(sorted(Path(out_dir).rglob("*.zip"))), time.monotonic() - started)

"""Package one provider's deployment offline with the Serverless CLI (osls, from node_modules).

    python -m tools.packaging aws|azure|gcp [--out DIR]

`sls package` writes into the service directory: every provider wipes `.serverless/` first, the
Azure plugin also writes `<function>/function.json` beside the sources, and only the AWS provider
honours `--package DIR`. So each run packages a private copy of the repository in a temporary
directory (node_modules linked, not copied), and the whole `.serverless/` output is then copied to
`out_dir`. Runs for different providers, or the same one, can go on at the same time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from adapters.registry import providers as registered_providers

#: The providers the project deploys (their specs, adapters/<name>/provider.py); any
#: serverless.<name>.yml packages.
PROVIDERS = tuple(name for name, spec in registered_providers().items() if spec.deployed)
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 900.0
# Written into out_dir beside the artifacts: provider, command, seconds, artifact name.
METADATA_FILE = ".overcast-package.json"
# serverless.<provider>.yml reads serverless-python-requirements' cacheLocation from this variable
# (unset: the plugin's default under ~/.cache). Only downloaded wheels live there: the plugin's
# static cache of installed trees is off in every config.
REQUIREMENTS_CACHE_ENV = "OVERCAST_PYTHON_REQUIREMENTS_CACHE"

# Never copied into the private service directory: VCS data, environments, caches, earlier
# packaging output. node_modules is linked instead.
_IGNORED_NAMES = {
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


class PackagingError(RuntimeError):
    """`sls package` could not run or failed; `output` holds everything it printed."""

    def __init__(self, message: str, *, provider: str, returncode: int | None = None, output: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.returncode = returncode
        self.output = output


def providers(repo_root: Path = REPO_ROOT) -> tuple[str, ...]:
    """Every provider with a serverless.<provider>.yml in the repo."""
    found = {p.name.split(".")[1] for p in Path(repo_root).glob("serverless.*.yml")}
    return tuple(sorted(found | set(PROVIDERS)))


def sls_bin(repo_root: Path = REPO_ROOT) -> Path:
    """The project's own Serverless CLI, or a PackagingError saying how to install it."""
    sls = repo_root / "node_modules" / ".bin" / "sls"
    if not sls.exists():
        raise PackagingError(
            f"{sls} is missing: the npm toolchain is not installed. Run `npm ci` in {repo_root}.",
            provider="-",
        )
    return sls


def sls_version(repo_root: Path = REPO_ROOT) -> str:
    """What `sls --version` prints (e.g. 'osls version: 3.77.1')."""
    proc = subprocess.run(
        [str(sls_bin(repo_root)), "--version"],
        cwd=repo_root,
        env=sls_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise PackagingError("`sls --version` failed", provider="-", returncode=proc.returncode, output=_output(proc))
    return proc.stdout.strip()


def artifact_path(out_dir: Path) -> Path:
    """The deployment zip inside a packaging output directory."""
    zips = sorted(Path(out_dir).glob("*.zip"))
    if len(zips) != 1:
        raise FileNotFoundError(f"expected one .zip in {out_dir}, found {[z.name for z in zips]}")
    return zips[0]


def package(
    provider: str,
    out_dir: Path,
    *,
    repo_root: Path = REPO_ROOT,
    extra_args: tuple[str, ...] = (),
    timeout: float = DEFAULT_TIMEOUT,
    requirements_cache: Path | None = None,
) -> Path:
    """Run `sls package --config serverless.<provider>.yml` offline and copy its output to out_dir.

    Returns out_dir, which then holds what `.serverless/` held (the zip, and per provider the
    CloudFormation or Deployment Manager templates) plus METADATA_FILE. out_dir must be absent,
    empty, or an earlier output of this function (which is replaced). requirements_cache, when
    given, is where serverless-python-requirements keeps downloaded wheels for this run instead
    of the user's cache. Raises PackagingError with the CLI's full output if packaging fails.
    """
    if not provider.isalnum():
        raise ValueError(f"invalid provider name {provider!r}")
    repo_root = Path(repo_root).resolve()
    out_dir = Path(out_dir).resolve()
    config = f"serverless.{provider}.yml"
    if not (repo_root / config).is_file():
        raise PackagingError(
            f"{repo_root / config} does not exist (known: {', '.join(providers(repo_root))})", provider=provider
        )
    sls = sls_bin(repo_root)
    _prepare_out_dir(out_dir)

    cmd = [str(sls), "package", "--config", config, *extra_args]
    env = sls_env()
    if requirements_cache is not None:
        env[REQUIREMENTS_CACHE_ENV] = str(Path(requirements_cache).resolve())
    with private_service(repo_root, prefix=f"overcast-package-{provider}-") as service_dir:
        started = time.monotonic()
        try:
            proc = subprocess.run(
                cmd,
                cwd=service_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            output = _text(exc.stdout) + _text(exc.stderr)
            raise PackagingError(
                f"`sls package --config {config}` did not finish within {timeout:.0f} s\n{output}",
                provider=provider,
                output=output,
            ) from exc
        seconds = time.monotonic() - started
        output = _output(proc)
        if proc.returncode != 0:
            raise PackagingError(
                f"`sls package --config {config}` failed with exit code {proc.returncode}:\n{output}",
                provider=provider,
                returncode=proc.returncode,
                output=output,
            )
        built = service_dir / ".serverless"
        if not built.is_dir():
            raise PackagingError(
                f"`sls package --config {config}` succeeded but wrote no .serverless/:\n{output}",
                provider=provider,
                returncode=proc.returncode,
                output=output,
            )
        # `requirements` is serverless-python-requirements' link to its download cache: not output.
        shutil.copytree(built, out_dir, ignore=shutil.ignore_patterns("requirements"), dirs_exist_ok=True)

    zip_name = artifact_path(out_dir).name
    metadata = {"provider": provider, "command": ["sls", *cmd[1:]], "seconds": round(seconds, 2), "artifact": zip_name}
    (out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return out_dir


def _prepare_out_dir(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise PackagingError(f"{out_dir} exists and is not a directory", provider="-")
        if (out_dir / METADATA_FILE).is_file():
            shutil.rmtree(out_dir)
        elif any(out_dir.iterdir()):
            raise PackagingError(
                f"{out_dir} is not empty and holds no earlier packaging output; refusing to write there",
                provider="-",
            )
    out_dir.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def private_service(repo_root: Path = REPO_ROOT, *, prefix: str = "overcast-service-") -> Iterator[Path]:
    """A private copy of the service directory (node_modules linked), removed afterwards: where
    `sls` may write `.serverless/` and function.json files without touching the repository."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        service_dir = Path(tmp) / "service"
        _copy_service(Path(repo_root).resolve(), service_dir)
        yield service_dir


def _copy_service(repo_root: Path, service_dir: Path) -> None:
    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = {
            n for n in names if n in _IGNORED_NAMES or (n.startswith(".serverless") and n != ".serverless_plugins")
        }
        skipped |= {n for n in names if n.endswith((".pyc", ".egg-info"))}
        return skipped

    shutil.copytree(repo_root, service_dir, ignore=ignore, symlinks=True)
    # Plugins are looked up from the service directory; a link keeps the one installed copy.
    (service_dir / "node_modules").symlink_to(repo_root / "node_modules", target_is_directory=True)


def sls_env() -> dict[str, str]:
    """The environment `sls` runs in: no telemetry, no prompts, no colour."""
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


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return (proc.stdout or "") + (proc.stderr or "")


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.packaging", description=__doc__.splitlines()[0])
    parser.add_argument("provider", choices=providers())
    parser.add_argument("--out", type=Path, help="output directory (default: .serverless-<provider> in the repo)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds before giving up")
    args = parser.parse_args(argv)
    out_dir = args.out or REPO_ROOT / f".serverless-{args.provider}"
    try:
        package(args.provider, out_dir, timeout=args.timeout)
    except PackagingError as exc:
        print(f"packaging {args.provider} failed: {exc}", file=sys.stderr)
        return 1
    zip_path = artifact_path(out_dir)
    seconds = json.loads((out_dir / METADATA_FILE).read_text())["seconds"]
    size = zip_path.stat().st_size
    print(f"{args.provider}: {zip_path} ({size} bytes, {size / 2**20:.1f} MiB) packaged in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

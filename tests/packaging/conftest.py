"""Offline `sls package` output, shared by every packaging test.

`packaged` is a session-wide, lazy mapping from provider (any serverless.<provider>.yml) to its
output: `packaged["aws"]` runs `sls package --config serverless.aws.yml` the first time any test
asks for it (through tools.packaging, in a private copy of the repo) and hands every later test
the same result. A provider's own assertions go in their own file in this folder, e.g.

    def test_stream_function(packaged):
        template = packaged["aws"].json("cloudformation-template-update-stack.json")
        ...

Every test collected from this folder is marked `packaging` (`-m "not packaging"` leaves them
out). If the npm toolchain is missing they fail, never skip: run `npm ci`.

Nothing the machine cached earlier reaches these packages: every run of the session downloads
its wheels into `packaged.cache`, a fresh directory, instead of serverless-python-requirements'
user cache (whose installed trees once kept .pyc after the config had dropped them).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from tools.packaging import REPO_ROOT, PackagingError, artifact_path, package, providers

HERE = Path(__file__).resolve().parent
NPM_HINT = f"the npm toolchain is not installed (no {REPO_ROOT / 'node_modules'}): run `npm ci` in {REPO_ROOT}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.packaging)


@dataclass
class Packaged:
    """One provider's packaging output: out_dir holds what `.serverless/` held."""

    provider: str
    out_dir: Path
    seconds: float
    zip_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.zip_path = artifact_path(self.out_dir)

    def file(self, name: str) -> Path:
        """A file beside the zip (e.g. a CloudFormation or Deployment Manager template)."""
        return self.out_dir / name

    def json(self, name: str) -> Any:
        return json.loads(self.file(name).read_text())

    @property
    def names(self) -> list[str]:
        """Every entry in the deployment zip."""
        with zipfile.ZipFile(self.zip_path) as zf:
            return zf.namelist()

    def read(self, name: str) -> bytes:
        """One entry of the deployment zip."""
        with zipfile.ZipFile(self.zip_path) as zf:
            return zf.read(name)

    def read_json(self, name: str) -> Any:
        return json.loads(self.read(name))

    @property
    def bytecode_tag(self) -> str | None:
        """The cache tag (``cpython-312``) of the bytecode tools/sls/bytecode.js put in the zip,
        or None when it put none (no such plugin, or no interpreter of the runtime's version)."""
        record = self.file("bytecode.json")
        if not record.exists() or json.loads(record.read_text())["python"] is None:
            return None
        return "cpython-" + json.loads(record.read_text())["version"].replace(".", "")

    def stray_bytecode(self) -> list[str]:
        """Bytecode in the zip other than the runtime's own for a source shipped beside it: what
        a stale installed tree, or an interpreter other than the cloud's, would have left."""
        names = self.names
        sources = {n for n in names if n.endswith(".py")}
        suffix = f".{self.bytecode_tag}.pyc" if self.bytecode_tag else None

        def runtimes_own(name: str) -> bool:
            entry = PurePosixPath(name)
            if suffix is None or entry.parent.name != "__pycache__" or not entry.name.endswith(suffix):
                return False
            return str(entry.parent.parent / (entry.name.removesuffix(suffix) + ".py")) in sources

        compiled = [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__/" in n]
        return [n for n in compiled if not runtimes_own(n)]


class LazyPackages(Mapping[str, Packaged]):
    """Packages each provider on first access, once per session; a failure is kept and re-raised
    (with sls's whole output) for every test that asks for that provider."""

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self._factory = factory
        self._done: dict[str, Packaged | PackagingError] = {}
        #: serverless-python-requirements' cacheLocation for every package built this session.
        self.cache = factory.mktemp("python-requirements-cache")

    def __getitem__(self, provider: str) -> Packaged:
        if provider not in providers():
            raise KeyError(f"{provider!r}: no serverless.{provider}.yml in {REPO_ROOT}")
        return self.variant(provider, provider)

    def variant(self, key: str, provider: str, extra_args: tuple[str, ...] = ()) -> Packaged:
        """Another package of a provider (e.g. stage, region and params of a production
        deploy), built once per session under `key` and shared like the default ones."""
        if key not in self._done:
            require_node_modules()
            out_dir = self._factory.mktemp(f"sls-package-{key}")
            try:
                package(provider, out_dir, extra_args=extra_args, requirements_cache=self.cache)
                seconds = json.loads((out_dir / ".overcast-package.json").read_text())["seconds"]
                self._done[key] = Packaged(provider, out_dir, seconds)
            except PackagingError as exc:
                self._done[key] = exc
        result = self._done[key]
        if isinstance(result, PackagingError):
            pytest.fail(f"sls package failed for {key}:\n{result}", pytrace=False)
        return result

    def __iter__(self) -> Iterator[str]:
        return iter(providers())

    def __len__(self) -> int:
        return len(providers())


def require_node_modules() -> None:
    """Fail (not skip) the calling test when `npm ci` has not been run."""
    if not (REPO_ROOT / "node_modules" / ".bin" / "sls").exists():
        pytest.fail(NPM_HINT, pytrace=False)


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> LazyPackages:
    return LazyPackages(tmp_path_factory)


# What a production deploy passes (docs/aws.md): stage, region, a certificate (so the custom
# domains and the Route 53 failover pair are in the template) and the replication peers.
PROD_CERTIFICATE = "arn:aws:acm:eu-west-1:111122223333:certificate/00000000-0000-4000-8000-000000000000"
PROD_PEERS = '[{"name": "azure", "url": "https://azure.api.example.com/api"}]'
PROD_REGION = "eu-west-1"
AWS_PROD_ARGS = (
    "--stage",
    "prod",
    "--region",
    PROD_REGION,
    "--param",
    f"certificateArn={PROD_CERTIFICATE}",
    "--param",
    f"peers={PROD_PEERS}",
)


@pytest.fixture(scope="session")
def aws_prod(packaged: LazyPackages) -> Packaged:
    """`sls package --config serverless.aws.yml` as a production deploy runs it."""
    return packaged.variant("aws-prod", "aws", AWS_PROD_ARGS)


@pytest.fixture(scope="session")
def node_modules() -> Path:
    require_node_modules()
    return REPO_ROOT / "node_modules"

"""``python -m tools.provider new NAME``: write every place a new provider touches, with TODOs.

Nothing under core/ is touched, no existing file is overwritten (the command refuses and writes
nothing if any target exists), and the shared files that need a one-line registration
(pyproject.toml, tests/conftest.py, ...) are printed as manual steps instead of being edited.
Every gap is marked ``TODO(scaffold)``; ``python -m tools.provider check NAME`` counts them.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER = "TODO(scaffold)"
NAME_RE = re.compile(r"^[a-z][a-z0-9]{1,19}$")
# Names that would shadow a package, a stdlib/vendor module a handler imports, or an existing role.
RESERVED = frozenset(
    {
        "core",
        "adapters",
        "handlers",
        "tests",
        "tools",
        "runtime",
        "emulators",
        "bench",
        "failover",
        "docs",
        "scripts",
        "main",
        "local",
        "http",
        "json",
        "logging",
        "test",
        "store",
        "events",
        "provider",
        "mesh",
        "replication",
        "kit",
        "registry",
        "protocols",
        "replay",
    }
)


class ScaffoldError(ValueError):
    pass


@dataclass(frozen=True)
class Scaffolded:
    name: str
    root: Path
    files: tuple[Path, ...]
    manual_steps: tuple[str, ...]

    def summary(self) -> str:
        lines = [f"scaffolded provider {self.name!r} in {self.root}:"]
        lines += [f"  + {path.relative_to(self.root)}" for path in self.files]
        lines.append("")
        lines.append("Manual steps (shared files: one small additive edit each):")
        lines += [f"  {n}. {step}" for n, step in enumerate(self.manual_steps, 1)]
        lines.append("")
        lines.append(f"Then: python -m tools.provider check {self.name}   (lists everything still missing)")
        return "\n".join(lines)


def validate_name(name: str, root: Path = REPO_ROOT) -> str:
    """A provider name is a lowercase identifier (it becomes a package, a module, a file name and an
    OVERCAST_PROVIDER value); it must not shadow a package or an existing provider."""
    if not NAME_RE.match(name or ""):
        raise ScaffoldError(f"invalid provider name {name!r}: use 2-20 of [a-z0-9], starting with a letter")
    if keyword.iskeyword(name) or name in RESERVED:
        raise ScaffoldError(f"invalid provider name {name!r}: it is reserved (a keyword or a package of this repo)")
    if (root / "adapters" / name).exists() or (root / "handlers" / f"{name}.py").exists():
        raise ScaffoldError(f"provider {name!r} already exists in {root}")
    return name


def pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def planned_files(name: str) -> dict[str, str]:
    """Relative path → content, in the order of docs/adding-a-provider.md."""
    return {
        f"adapters/{name}/__init__.py": ADAPTER_INIT,
        f"adapters/{name}/provider.py": PROVIDER,
        f"adapters/{name}/store.py": STORE,
        f"adapters/{name}/events.py": EVENTS,
        f"handlers/{name}.py": HANDLER,
        f"serverless.{name}.yml": SERVERLESS,
        f"tests/events/{name}/README.md": EVENTS_README,
        f"tests/events/{name}/replay.py": REPLAY,
        f"tests/contract/test_{name}_store.py": CONTRACT,  # may be renamed after the store
        f"tests/fixtures/{name}.py": FIXTURE,
        f"docs/{name}.md": DOC,
    }


def manual_steps(name: str) -> tuple[str, ...]:
    return (
        f'pyproject.toml: add `{name} = ["<vendor-sdk>==<version>"]` to [project.optional-dependencies], '
        f'and `{name} = "adapters.{name}.provider:SPEC"` '
        'under [project.entry-points."overcast.providers"]; then run `bash scripts/setup.sh`',
        "package.json: add the Serverless provider plugin pinned "
        "(`npm install --save-dev --save-exact <plugin>@<version>`) and commit package-lock.json",
        f"adapters/{name}/provider.py: fill in SPEC (vendor modules, store scheme and opener, the "
        f"runtime.mesh.Cloud subclass and its 127.x address, the emulator and its fixture module, a colour): "
        "every central list (store openers, mesh kinds, isolation test, pytest plugins, packaging, the "
        "drill's colours) is derived from it",
        f"runtime/{name}.py: a local stand-in for the platform (runtime.frontdoor + runtime.pump → "
        f"handlers.{name}), for e2e and the mesh (see runtime/openwhisk.py)",
        f"record real payloads into tests/events/{name}/ (see its README.md) and say in its replay.py "
        "how they reach the entrypoints: tests/events/test_conformance.py then runs them",
    )


def scaffold(name: str, root: Path = REPO_ROOT) -> Scaffolded:
    """Create the provider's files under ``root``. Refuses (writing nothing) if any exists."""
    root = Path(root).resolve()
    validate_name(name, root)
    files = planned_files(name)
    existing = [rel for rel in files if (root / rel).exists()]
    if existing:
        raise ScaffoldError(f"refusing to overwrite existing files: {', '.join(existing)}")
    written = []
    for rel, template in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template, name), encoding="utf-8")
        written.append(path)
    return Scaffolded(name, root, tuple(written), manual_steps(name))


def render(template: str, name: str) -> str:
    # The handler's adapter imports, in the order the import sorter wants for this name.
    imports = sorted(
        [
            "from adapters.http_peer import UrllibPeerTransport",
            "from adapters.jwt_auth import authorizer_for",
            "from adapters.{{name}}.events import to_changes, to_request, to_response",
            "from adapters.{{name}}.store import {{Name}}MessageStore",
        ],
        key=lambda line: line.replace("{{name}}", name).split(" import ")[0],
    )
    template = template.replace("{{ADAPTER_IMPORTS}}", "\n".join(imports))
    return template.replace("{{name}}", name).replace("{{Name}}", pascal(name)).replace("{{TODO}}", MARKER)


# -- templates ----------------------------------------------------------------------------------
# {{name}} → the provider name, {{Name}} → its capitalised form, {{TODO}} → the marker.

ADAPTER_INIT = '''"""{{Name}}: the {{name}} message store and the platform's event shapes.
Only this package and handlers/{{name}}.py import the vendor SDK (see docs/adding-a-provider.md)."""
'''

PROVIDER = '''"""The {{name}} provider's registration (see ``adapters.registry``); importing it imports no SDK."""

from adapters.registry import ProviderSpec

SPEC = ProviderSpec(
    name="{{name}}",
    vendor_modules=(),  # {{TODO}}: the SDK's top-level modules, e.g. ("vendorsdk",)
    handler="handlers.{{name}}",
    events="adapters.{{name}}.events",
    store_class="adapters.{{name}}.store:{{Name}}MessageStore",
    store_scheme="",  # {{TODO}}: the scheme of its store spec (tools.replication: verify, repair, the mesh)
    store_opener="",  # {{TODO}}: "module:function" building the store from (target, query)
    cloud="",  # {{TODO}}: "runtime.{{name}}:{{Name}}Cloud", the runtime.mesh.Cloud subclass
    address="",  # {{TODO}}: its own loopback address in the mesh, 127.0.0.7 and up
    emulator="",  # {{TODO}}: "emulators.<x>:<Launcher>"
    fixtures=(),  # {{TODO}}: ("tests.fixtures.{{name}}",), the emulator's session fixtures
)
'''

REPLAY = '''"""How the recorded {{name}} events reach the entrypoints (tests/events/replay.py)."""

from __future__ import annotations

from typing import Any

from tests.events.replay import Replay


class {{Name}}Replay(Replay):
    provider = "{{name}}"

    def retried(self, outcome: Any) -> bool:
        # {{TODO}}: how the platform reads a failed change delivery (a raise, an error result, ...)
        return isinstance(outcome, BaseException)

    def poison_delivery(self) -> tuple[Any, int]:
        raise NotImplementedError("{{TODO}}: a recorded change delivery with one unreadable record added")


REPLAY = {{Name}}Replay()
'''

STORE = '''"""{{Name}}MessageStore: the message store on {{TODO}} <service>, via {{TODO}} <SDK package>.

{{TODO}}: document the data layout (one record per (channel, id): Message.to_record()), the native
conditional write put_if_newer uses (a condition, an etag, a revision, a transaction), the indexes
listing and changes_since need, and the error translation table.

Every vendor exception is translated at this boundary (``raise ... from exc``): conditional
failure → AlreadyExists / retry; throttling, outages, timeouts → Unavailable(retry_after=...);
missing database/table or bad credentials → ConfigurationError.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from core.model import Message
from core.ports import MessageStore


class {{Name}}MessageStore(MessageStore):
    """MessageStore on <service>. ``client`` is a prebuilt SDK client: tests point it at an emulator,
    a handler builds one per process and reuses it on warm invocations."""

    kind = "{{name}}"

    def __init__(self, client: Any, *, timeout_s: float = 5.0, ping_timeout_s: float = 1.5) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.ping_timeout_s = ping_timeout_s

    def _create(self, message: Message) -> None:
        raise NotImplementedError(
            "{{TODO}}: insert message.to_record() only if (channel, id) is absent (tombstones count); "
            "the service's 'already exists' answer -> raise AlreadyExists"
        )

    def _put_if_newer(self, message: Message) -> bool:
        raise NotImplementedError(
            "{{TODO}}: write only if no record exists or the stored version string < str(message.version), "
            "atomically (native condition/etag/revision, bounded retry); return whether it wrote"
        )

    def _get(self, channel: str, message_id: str) -> Message | None:
        raise NotImplementedError("{{TODO}}: point read; Message.from_record(record), None when missing")

    def _scan_newest_first(self, channel: str, before: str | None, page_hint: int) -> Iterator[Message]:
        raise NotImplementedError(
            "{{TODO}}: the channel's records (tombstones too) with sort_key < before, sort_key descending, "
            "fetched lazily in batches of about page_hint"
        )

    def _changes_since(self, since: str | None, limit: int) -> list[Message]:
        raise NotImplementedError("{{TODO}}: up to limit records with version > since, ascending by version")

    def _ping(self) -> None:
        raise NotImplementedError("{{TODO}}: one real round trip within ping_timeout_s; Unavailable otherwise")
'''

EVENTS = '''"""{{Name}} event shapes <-> core.

    to_request(event)    the platform's HTTP event -> core Request
    to_response(resp)    core Response -> what the platform expects back from an HTTP function
    to_changes(event)    a change-feed / stream payload -> one ChangeRecord per record
    to_messages(event)   the Messages those records carry

Record real payloads under tests/events/{{name}}/ (see its README.md): the readiness check
(``python -m tools.provider check {{name}}``) runs every recorded event through these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.protocols import ChangeRecord, messages_of
from core.http import Request, Response
from core.model import Message


def to_request(event: Mapping[str, Any]) -> Request:
    raise NotImplementedError(
        "{{TODO}}: map the HTTP event: method, path (without any platform prefix), query (first value), "
        "headers (lower-case names), body bytes (decode base64 if the platform encodes it), request id"
    )


def to_response(response: Response) -> Any:
    raise NotImplementedError("{{TODO}}: status, headers and body in the platform's response shape")


def to_changes(event: Mapping[str, Any]) -> list[ChangeRecord]:
    raise NotImplementedError(
        "{{TODO}}: one ChangeRecord(identity, read) per record, in delivery order: read returns "
        "Message.from_record(...) (ValidationError: poison, acknowledged), None for a hard delete"
    )


def to_messages(event: Mapping[str, Any]) -> list[Message]:
    return messages_of(to_changes(event))
'''

HANDLER = '''"""Composition root of the {{name}} provider: ``build()`` and three thin entrypoints.

    http(event)          HTTP function: platform event -> core app -> platform response (never raises)
    changes(event)       change feed / stream trigger -> forward locally-originated changes to peers;
                         reports failure when a push failed, so the platform retries
    anti_entropy(event)  scheduled trigger -> one anti-entropy pass against every peer

handlers.kit builds the app once per process on the first invocation (never at import), answers
every failure of the HTTP function as JSON, and acknowledges poison records in a change batch.

Environment (besides core's OVERCAST_* settings, see ``python -m core.settings``; docs/{{name}}.md):

    {{TODO}}: the provider's own variables (endpoint, database, credentials by reference)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

{{ADAPTER_IMPORTS}}
from core.bootstrap import Overcast, bootstrap
from core.errors import Unavailable
from core.http import Request
from core.logs import get_logger
from core.settings import Settings
from handlers.kit import LazyApp, deliver_changes, serve_http

logger = get_logger("{{name}}")


def make_client(env: Mapping[str, str]) -> Any:
    raise NotImplementedError("{{TODO}}: build the SDK client from env; ConfigurationError naming a bad variable")


def build(environ: Mapping[str, str] | None = None, client: Any = None) -> Overcast:
    env = dict(os.environ if environ is None else environ)
    env.setdefault("OVERCAST_PROVIDER", "{{name}}")
    settings = Settings.from_env(env)
    store = {{Name}}MessageStore(client if client is not None else make_client(env))
    return bootstrap(settings, store, UrllibPeerTransport(), authorizer=authorizer_for(settings.auth))


overcast = LazyApp(build)
install = overcast.install


def http(event: Mapping[str, Any]) -> Any:
    def parse() -> tuple[Request, Any]:
        return to_request(event), to_response

    return serve_http(logger, parse, to_response, overcast)


def changes(event: Mapping[str, Any]) -> dict[str, Any]:
    report = deliver_changes(logger, to_changes(event), overcast)
    if not report.ok:
        # {{TODO}}: report the failure the way this platform retries (raise, an error result, ...)
        raise Unavailable(report.summary(), retry_after=5, code="replication_failed")
    return {"forwarded": report.sent}


def anti_entropy(event: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from core import anti_entropy as anti_entropy_pass

    report = anti_entropy_pass.run(overcast(), window_s=int(os.environ.get("OVERCAST_ANTI_ENTROPY_WINDOW_S", "900")))
    report.raise_for_errors()
    return report.to_dict()
'''

SERVERLESS = """# Deploys the {{name}} provider: `sls deploy --config serverless.{{name}}.yml`.
# Package offline: `python -m tools.packaging {{name}}` (no credentials needed).
# {{TODO}}: the provider plugin (npm, pinned in package.json), runtime, triggers (HTTP, change feed,
# schedule), secrets by reference (never literals here), and package.patterns.
service: overcast-{{name}}
frameworkVersion: '3'

provider:
  name: {{name}}  # {{TODO}}: the provider name the plugin registers
  runtime: python3.11  # {{TODO}}: the platform's Python runtime id

plugins:
  - serverless-{{name}}  # {{TODO}}: the provider plugin (package.json devDependencies)

package:
  patterns:  # only this provider's code: one vendor SDK per package
    - '!**'
    - 'core/**'
    - 'adapters/__init__.py'
    - 'adapters/http_peer.py'
    - 'adapters/jwt_auth.py'
    - 'adapters/protocols.py'
    - 'adapters/{{name}}/**'
    - 'handlers/__init__.py'
    - 'handlers/kit.py'
    - 'handlers/{{name}}.py'
    - '!**/__pycache__/**'

functions:
  http:
    handler: handlers/{{name}}.http  # {{TODO}}: HTTP trigger
  changes:
    handler: handlers/{{name}}.changes  # {{TODO}}: change-feed trigger, with retries
  anti_entropy:
    handler: handlers/{{name}}.anti_entropy  # {{TODO}}: schedule
"""

EVENTS_README = """# Recorded {{name}} events

{{TODO}}: record real payloads, exactly as the platform delivers them, one JSON file each:

- `http_*.json` — HTTP function invocations (at least: a POST with a JSON body and an
  `Idempotency-Key` header, a GET with a query string, `/health/deep`). The readiness check runs
  each through `adapters.{{name}}.events.to_request` and a response back through `to_response`.
- `changes_*.json` — change-feed / stream deliveries carrying message records (a create, a
  tombstone). The readiness check runs each through `to_messages` and expects Messages.

Load them in tests with `tests.events.load_event("{{name}}", "<file name without .json>")`.
"""

CONTRACT = '''"""The conformance suite on {{Name}}MessageStore, against a local {{name}} emulator over a real socket."""

from typing import Any

import pytest

from adapters.{{name}}.store import {{Name}}MessageStore
from tests.contract.store_suite import MessageStoreConformance

pytestmark = pytest.mark.emulator("{{name}}")


class Test{{Name}}Store(MessageStoreConformance):
    @pytest.fixture
    def store(self, {{name}}_client: Any) -> {{Name}}MessageStore:
        return {{Name}}MessageStore({{name}}_client)
'''

FIXTURE = '''"""The {{name}} emulator for tests: one server per session on 127.0.0.1, an empty store per test.

Register this module in tests/conftest.py pytest_plugins. Where the emulator is missing, tests
fail under CI (CI=true) with the install hint and skip loudly elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def {{name}}_server() -> Iterator[Any]:
    pytest.fail(
        "{{TODO}}: start the emulator with emulators.base.ServerProcess (bound to 127.0.0.1), "
        "yield it, stop it in a finally",
        pytrace=False,
    )
    yield None


@pytest.fixture
def {{name}}_client({{name}}_server: Any) -> Any:
    raise NotImplementedError("{{TODO}}: an SDK client on an empty database/table for one test")
'''

DOC = """# {{Name}} provider

{{TODO}}: fill in each section (see docs/aws.md, docs/azure.md, docs/gcp.md).

## Entry points
`handlers/{{name}}.py`: `http`, `changes`, `anti_entropy`.

## Environment
The provider's own variables, besides core's OVERCAST_* settings.

## Data layout and indexes

## Local runs and tests
`python -m tools.provider check {{name}}` lists what is still missing.

## Deploy
`sls deploy --config serverless.{{name}}.yml`; secrets by reference.

## Replication
Peers are configuration: `OVERCAST_PEERS` plus one secret per pair.
"""
